"""Match a question against the ways patients ask each section (the front matter's question keys).

A section's keys say what it answers in the patient's own words ("do i have to drive the patient everywhere"),
which the section's sentences often do not. The best key cosine per section is a prior that `qa.answer` adds to
the score of that section's sentences, and the ranking of sections by it is a retrieval channel fused by RRF.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from knowledge.index import StoredChunk
from knowledge.question_key_vectors import QuestionKeyVectors

SectionId = tuple[str, str]  # (doc_id, '##' heading)


def section_of(chunk: StoredChunk) -> SectionId | None:
    """The '##' section a chunk belongs to (question keys are written per '##' heading); None before any heading."""
    return (chunk.doc_id, chunk.heading_path[0]) if chunk.heading_path else None


@dataclass(frozen=True)
class SectionKeys:
    """Every question key as a normalised vector, with the section it belongs to and that section's chunks."""

    sections: tuple[SectionId, ...]
    owner: np.ndarray  # per key row, the index of its section in `sections`
    vectors: np.ndarray  # one normalised row per key
    chunk_ids: Mapping[SectionId, tuple[int, ...]]  # each section's chunks in document order

    @property
    def empty(self) -> bool:
        return not len(self.owner)

    def section_scores(self, query_vector: np.ndarray) -> dict[SectionId, float]:
        """Each section's best key cosine to the question (sections with no keys are absent)."""
        if self.empty or self.vectors.shape[1] != query_vector.shape[-1]:
            return {}
        cosines = self.vectors @ query_vector
        best = np.full(len(self.sections), -1.0, dtype=np.float32)
        np.maximum.at(best, self.owner, cosines)
        return {section: float(score) for section, score in zip(self.sections, best, strict=True)}

    def ranked_chunks(self, scores: Mapping[SectionId, float], depth: int) -> list[tuple[int, float]]:
        """The chunks of the best-matching sections, best section first, at most `depth` chunks (a search channel)."""
        hits: list[tuple[int, float]] = []
        for section in sorted(scores, key=lambda s: scores[s], reverse=True):
            for chunk_id in self.chunk_ids.get(section, ()):
                hits.append((chunk_id, scores[section]))
                if len(hits) >= depth:
                    return hits
        return hits


def section_keys(keys: QuestionKeyVectors, chunks: Iterable[StoredChunk]) -> SectionKeys:
    """The stored key vectors grouped by section; keys of a heading no chunk carries are dropped."""
    chunk_ids: dict[SectionId, list[int]] = {}
    for chunk in sorted(chunks, key=lambda c: (c.doc_id, c.position)):
        section = section_of(chunk)
        if section is not None:
            chunk_ids.setdefault(section, []).append(chunk.chunk_id)
    number: dict[SectionId, int] = {}
    owner: list[int] = []
    kept: list[int] = []
    for row, key in enumerate(keys.keys):
        section = (key.doc_id, key.heading)
        if section in chunk_ids:
            owner.append(number.setdefault(section, len(number)))
            kept.append(row)
    vectors = keys.vectors[kept] if kept else np.zeros((0, 1), dtype=np.float32)
    return SectionKeys(tuple(number), np.asarray(owner, dtype=np.int64), vectors,
                       {s: tuple(ids) for s, ids in chunk_ids.items()})
