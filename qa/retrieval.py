"""Hybrid retrieval: BM25 and dense search over chunks, glossary expansion, weighted reciprocal-rank fusion."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from knowledge.index import StoredChunk
from knowledge.settings import RETRIEVAL_MODES, RetrievalSettings
from knowledge.store import KnowledgeStore
from knowledge.text import squash_whitespace
from qa.question_keys import SectionId, SectionKeys, section_keys


@dataclass(frozen=True)
class RetrievedChunk:
    """A chunk with its fused score, its cosine to the question and its place in the ranking."""

    chunk: StoredChunk
    score: float
    dense: float
    lexical: float
    rank: int


@dataclass(frozen=True)
class RetrievalResult:
    """Ranked chunks plus the query vector, reused when choosing sentences."""

    chunks: tuple[RetrievedChunk, ...]
    query_vector: np.ndarray
    expansions: tuple[str, ...]
    query: str = ""  # the query as searched, typos repaired
    # Each section's best question-key cosine to the question (empty without keys): a prior for its sentences.
    key_scores: Mapping[SectionId, float] = field(default_factory=dict)


def library_keys(index: KnowledgeStore) -> SectionKeys:
    """The library's question-key vectors grouped by the section they belong to."""
    return section_keys(index.question_key_vectors(), index.all_chunks())


def library_speller(index: KnowledgeStore, min_length: int):
    """A speller that knows every word of the library's titles, headings and text."""
    from knowledge.spelling import Speller

    return Speller((f"{c.title} {' '.join(c.heading_path)} {c.text}" for c in index.all_chunks()), min_length)


class Retriever:
    """Finds the chunks most likely to answer a question."""

    def __init__(self, index: KnowledgeStore, embedder, glossary=None,
                 settings: RetrievalSettings = RetrievalSettings(), mode: str | None = None,
                 depth: int | None = None, speller=None, keys: SectionKeys | None = None) -> None:
        mode = mode or settings.mode
        if mode not in RETRIEVAL_MODES:
            raise ValueError(f"retrieval mode must be one of {', '.join(RETRIEVAL_MODES)}, not '{mode}'")
        self.index = index
        self.embedder = embedder
        self.glossary = glossary
        self.settings = settings
        self.mode = mode
        self.depth = depth or settings.search_depth
        self.dense_weight = settings.dense_weight
        self.lexical_weight = settings.lexical_weight
        self.speller = speller if speller is not None else library_speller(index, settings.spelling_min_length)
        self.keys = keys if keys is not None else library_keys(index)

    def expansions(self, query: str) -> list[str]:
        """Other names of the glossary concepts in the query (brand <-> generic, abbreviation <-> words)."""
        return self.glossary.expansions(query, limit=self.settings.glossary_expansions) if self.glossary else []

    def retrieve(self, query: str, k: int = 8) -> RetrievalResult:
        """Top-k chunks for a query; near-duplicate chunks (same passage in two documents) collapsed."""
        fixes = self.speller.corrections(query) if self.speller else []
        if fixes:  # "mantel cell" also searches "mantle"; the typo stays, it may be a name we don't know
            query = f"{query} ({' '.join(fixes)})"
        extra = self.expansions(query)
        expanded = f"{query} ({'; '.join(extra)})" if extra else query
        # Glossary names go to BM25 only: added to the dense query they cost 3 points of fact hit.
        qvec = self.embedder.encode_query(query)
        dense_hits = self.index.dense_search(qvec, self.depth) if self.mode != "bm25" else []
        lexical_hits = self.index.lexical_search(expanded, self.depth) if self.mode != "dense" else []
        key_scores = self.keys.section_scores(qvec) if self.mode != "bm25" else {}
        key_weight = self.settings.key_weight
        asked_so = {s: v for s, v in key_scores.items() if v >= self.settings.key_floor}  # sections asked this way
        key_hits = self.keys.ranked_chunks(asked_so, self.depth) if key_weight else []
        dense_scores = dict(dense_hits)
        lexical_scores = dict(lexical_hits)
        fused: dict[int, float] = {}
        channels = ((self.dense_weight, dense_hits), (self.lexical_weight, lexical_hits), (key_weight, key_hits))
        for weight, hits in channels:
            for rank, (chunk_id, _) in enumerate(hits):
                fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (self.settings.rrf_k + rank + 1)
        ordered = sorted(fused, key=lambda cid: fused[cid], reverse=True)
        missing = [cid for cid in ordered[: k * 2] if cid not in dense_scores]
        if missing:
            vectors = self.index.chunk_vectors(missing)
            dense_scores.update(zip(missing, (vectors @ qvec).tolist()))
        results: list[RetrievedChunk] = []
        seen_texts: set[str] = set()
        for chunk_id in ordered:
            chunk = self.index.chunk(chunk_id)
            key = squash_whitespace(chunk.text)[:300]
            if key in seen_texts:
                continue
            seen_texts.add(key)
            results.append(RetrievedChunk(chunk, fused[chunk_id], float(dense_scores.get(chunk_id, 0.0)),
                                          float(lexical_scores.get(chunk_id, 0.0)), len(results)))
            if len(results) >= k:
                break
        if self.settings.key_added:
            results += self._key_added(results, asked_so, qvec, lexical_scores, seen_texts)
        return RetrievalResult(tuple(results), qvec, tuple(extra), query, key_scores)

    def _key_added(self, found: list[RetrievedChunk], asked_so: Mapping[SectionId, float], qvec: np.ndarray,
                   lexical_scores: Mapping[int, float], seen_texts: set[str]) -> list[RetrievedChunk]:
        """Chunks of the sections patients ask this way (`asked_so`: key cosine at least key_floor) that neither
        search found, ranked after the found ones (so they keep their ranks): a section whose words differ from the
        question's still competes."""
        taken = {hit.chunk.chunk_id for hit in found}
        ranked = self.keys.ranked_chunks(asked_so, len(taken) + self.depth)
        chunks = []
        for chunk_id, _ in ranked:
            chunk = self.index.chunk(chunk_id)
            text = squash_whitespace(chunk.text)[:300]
            if chunk_id in taken or text in seen_texts:
                continue
            seen_texts.add(text)
            chunks.append(chunk)
            if len(chunks) >= self.settings.key_added:
                break
        if not chunks:
            return []
        cosines = self.index.chunk_vectors([c.chunk_id for c in chunks]) @ qvec
        return [RetrievedChunk(chunk, 0.0, float(cosine), float(lexical_scores.get(chunk.chunk_id, 0.0)), len(found) + i)
                for i, (chunk, cosine) in enumerate(zip(chunks, cosines, strict=True))]
