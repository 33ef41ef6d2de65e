"""The question keys' vectors: each section's front-matter `questions:` embedded at build time, stored by every store.

A key says what its section answers in the patient's own words ("do i have to drive the patient everywhere"), which
the section's sentences often do not; `qa.question_keys` matches a question against them. Embedding 2,000 keys takes
too long for every start of `patient-qa ask`, so a build embeds the keys of new or changed documents only (a key
change changes the document's content hash) and a store carries kept documents' key vectors over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class QuestionKey:
    """One question key: the document and '##' heading it belongs to, and how a patient asks it."""

    doc_id: str
    heading: str
    text: str


@dataclass(frozen=True)
class QuestionKeyVectors:
    """Every stored question key with its normalised vector (row i of `vectors` is `keys[i]`)."""

    keys: tuple[QuestionKey, ...]
    vectors: np.ndarray

    @classmethod
    def empty(cls, dimension: int = 0) -> QuestionKeyVectors:
        """No keys: a library built before keys were embedded, or articles without `questions:`."""
        return cls((), np.zeros((0, dimension), dtype=np.float32))

    def __len__(self) -> int:
        return len(self.keys)

    def by_document(self) -> dict[str, QuestionKeyVectors]:
        """Each document's keys, in order (a store carrying kept documents' keys into a new build)."""
        rows: dict[str, list[int]] = {}
        for i, key in enumerate(self.keys):
            rows.setdefault(key.doc_id, []).append(i)
        return {doc_id: QuestionKeyVectors(tuple(self.keys[i] for i in ids), self.vectors[ids].astype(np.float32))
                for doc_id, ids in rows.items()}

    @classmethod
    def joined(cls, parts: Sequence[QuestionKeyVectors]) -> QuestionKeyVectors:
        """Several documents' keys as one, in order."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        return cls(tuple(k for p in parts for k in p.keys), np.vstack([p.vectors for p in parts]).astype(np.float32))


def section_questions(meta: object) -> dict[str, tuple[str, ...]]:
    """A document's front matter `questions:` (heading -> list of questions) as text; any other shape is no keys."""
    asked = meta.get("questions") if isinstance(meta, Mapping) else None
    if not isinstance(asked, Mapping):
        return {}
    return {str(heading): tuple(str(q) for q in questions) for heading, questions in asked.items()
            if isinstance(questions, list)}


def question_pairs(questions: Mapping[str, Sequence[str]]) -> tuple[tuple[str, str], ...]:
    """(heading, key) of each question of `section_questions`, blanks dropped: the keys a build embeds."""
    return tuple((heading, q.strip()) for heading, asked in questions.items() for q in asked if q.strip())


def document_question_keys(meta: object) -> tuple[tuple[str, str], ...]:
    """(heading, key) of each of a document's front matter `questions:`, blanks dropped."""
    return question_pairs(section_questions(meta))


def embed_question_keys(documents: Sequence[Sequence[tuple[str, str]]], embedder,
                        batch_size: int) -> list[np.ndarray]:
    """Per document, one normalised vector per (heading, key): every distinct key text embedded once, in one call."""
    texts = list(dict.fromkeys(text for keys in documents for _, text in keys))
    if not texts:
        return [np.zeros((0, 0), dtype=np.float32) for _ in documents]
    matrix = np.asarray(embedder.encode(texts, batch_size=batch_size), dtype=np.float32)
    row = {text: i for i, text in enumerate(texts)}
    return [matrix[[row[text] for _, text in keys]] if keys else np.zeros((0, matrix.shape[1]), dtype=np.float32)
            for keys in documents]
