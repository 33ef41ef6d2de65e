"""A tiny in-memory store for `qa.answer`: chunks whose sentence cosines to the question are set by hand.

No model and no index build: each sentence vector is `cos * e0 + sqrt(1 - cos^2) * e_k`, with the query vector
e0 and a dimension k of its own, so a test says exactly how close each sentence is to the question (and two
sentences sharing k make the same point).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from knowledge.index import StoredChunk
from knowledge.lexical import tokenize
from knowledge.question_key_vectors import QuestionKeyVectors
from knowledge.store import Hit, KnowledgeStore
from qa.retrieval import RetrievalResult, RetrievedChunk

DIMENSION = 64
QUERY_VECTOR = np.eye(DIMENSION, dtype=np.float32)[0]


@dataclass(frozen=True)
class S:
    """A sentence of a fake chunk: its text, its cosine to the question and (optionally) the point it makes."""

    text: str
    cosine: float
    point: int | None = None  # sentences with the same point get the same vector


@dataclass
class FakeStore:
    """A `KnowledgeStore` held in a few dicts: chunks added by hand, sentence vectors set by their cosines.

    Every word weighs 1 for `idf`, except those in `idf_weights` (e.g. a word found in every chunk weighs little).
    """

    idf_weights: dict[str, float] = field(default_factory=dict)
    chunks: dict[int, StoredChunk] = field(default_factory=dict)
    section_starts: set[int] = field(default_factory=set)
    docs_with_headings: set[str] = field(default_factory=set)
    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    keys: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    key_vectors: QuestionKeyVectors = field(default_factory=lambda: QuestionKeyVectors.empty(DIMENSION))
    meta: dict[str, dict] = field(default_factory=dict)
    location: str = "memory://fake"
    model: str = "fake-model"
    dimension: int = DIMENSION
    version: str = "1"
    manifest: dict[str, object] = field(default_factory=lambda: {"model": "fake-model", "dimension": DIMENSION})
    _next_point: int = 1

    def add(self, doc: str, heading: Sequence[str], sentences: Sequence[S], *, position: int = 0,
            section_start: bool = False, url: str = "", page_start: int | None = None,
            source_path: str | None = None, page_breaks: tuple[tuple[int, int], ...] = ()) -> StoredChunk:
        """Store one chunk of `doc` made of these sentences (joined by one space) and return it."""
        text, offsets = "", []
        for sentence in sentences:
            start = len(text) + (1 if text else 0)
            text = f"{text} {sentence.text}" if text else sentence.text
            offsets.append((start, len(text)))
        chunk_id = len(self.chunks) + 1
        chunk = StoredChunk(
            chunk_id=chunk_id, doc_id=doc, article=doc, title=doc.replace("-", " ").title(), url=url,
            source_path=source_path or f"/articles/{doc}.md", heading_path=tuple(heading), text=text,
            sentences=tuple(offsets), page_start=page_start, page_end=page_breaks[-1][1] if page_breaks else page_start,
            page_breaks=page_breaks,
            sentence_row=0, position=position,
        )
        self.chunks[chunk_id] = chunk
        self.vectors[chunk_id] = np.vstack([self._vector(s) for s in sentences]).astype(np.float32)
        if heading:
            self.docs_with_headings.add(doc)
        if section_start:
            self.section_starts.add(chunk_id)
        return chunk

    def _vector(self, sentence: S) -> np.ndarray:
        if sentence.point is None:
            self._next_point += 1
            point = self._next_point
        else:
            point = sentence.point
        vector = np.zeros(DIMENSION, dtype=np.float32)
        vector[0] = sentence.cosine
        vector[point % (DIMENSION - 1) + 1] = math.sqrt(max(0.0, 1 - sentence.cosine ** 2))
        return vector

    def sentence_vectors(self, chunk: StoredChunk) -> np.ndarray:
        return self.vectors[chunk.chunk_id]

    def document_chunks(self, doc_id: str) -> list[StoredChunk]:
        return sorted((c for c in self.chunks.values() if c.doc_id == doc_id), key=lambda c: c.position)

    # The rest of the KnowledgeStore Protocol: a chunk's vector is the mean of its sentences', BM25 is word overlap.

    def chunk_vectors(self, chunk_ids: Sequence[int]) -> np.ndarray:
        rows = [self.vectors[c].mean(axis=0) for c in chunk_ids]
        return np.vstack(rows).astype(np.float32) if rows else np.zeros((0, DIMENSION), dtype=np.float32)

    def dense_search(self, query_vector: np.ndarray, k: int) -> list[Hit]:
        ids = list(self.chunks)
        scores = self.chunk_vectors(ids) @ query_vector if ids else np.zeros(0)
        order = sorted(range(len(ids)), key=lambda i: -float(scores[i]))[:k]
        return [Hit(ids[i], float(scores[i])) for i in order]

    def lexical_search(self, query: str, k: int) -> list[Hit]:
        asked = set(tokenize(query))
        scored = [(sum(self.idf(t) for t in asked & set(tokenize(c.text))), c.chunk_id) for c in self.chunks.values()]
        return [Hit(cid, score) for score, cid in sorted(scored, key=lambda x: -x[0])[:k] if score > 0]

    def chunk(self, chunk_id: int) -> StoredChunk:
        return self.chunks[chunk_id]

    def chunk_count(self) -> int:
        return len(self.chunks)

    def all_chunks(self) -> list[StoredChunk]:
        return list(self.chunks.values())

    def is_section_start(self, chunk_id: int) -> bool:
        return chunk_id in self.section_starts

    def has_headings(self, doc_id: str) -> bool:
        return doc_id in self.docs_with_headings

    def idf(self, token: str) -> float:
        return self.idf_weights.get(token, 1.0)

    def vocabulary(self) -> frozenset[str]:
        return frozenset(t for c in self.chunks.values() for t in tokenize(c.text))

    def question_keys(self) -> dict[str, dict[str, tuple[str, ...]]]:
        return self.keys

    def question_key_vectors(self) -> QuestionKeyVectors:
        return self.key_vectors

    def document_meta(self, doc_id: str) -> dict:
        return self.meta.get(doc_id, {})

    def query_encoder_file(self) -> Path | None:
        return None

    def info(self) -> dict:
        return {"index_dir": self.location, "chunks": len(self.chunks)}


if TYPE_CHECKING:  # mypy checks here that the fake is a KnowledgeStore wherever one is expected
    _store: KnowledgeStore = FakeStore()


def retrieved(*chunks: StoredChunk, dense: float | Sequence[float] = 0.5, query: str = "") -> RetrievalResult:
    """The chunks as retrieval would return them, best first, each with its chunk-level cosine `dense`."""
    denses = [dense] * len(chunks) if isinstance(dense, (int, float)) else list(dense)
    hits = tuple(RetrievedChunk(chunk, 1.0 / (rank + 1), d, 0.0, rank)
                 for rank, (chunk, d) in enumerate(zip(chunks, denses, strict=True)))
    return RetrievalResult(hits, QUERY_VECTOR, (), query)
