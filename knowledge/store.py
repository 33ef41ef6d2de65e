"""The knowledge store seam: what `qa` reads from a library, and what a build writes to one.

Two stores implement it: the embedded one (FAISS + bm25s + SQLite files in a folder, `knowledge.index`) and the
PostgreSQL + pgvector one (`knowledge.pg_store`). `qa` depends on these Protocols and nothing else of the index.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np

    from knowledge.documents import Chunk, Document
    from knowledge.index import StoredChunk


class Hit(NamedTuple):
    """One search result: the chunk's id and its score (cosine for dense search, BM25 for lexical search)."""

    chunk_id: int
    score: float


@runtime_checkable
class KnowledgeStore(Protocol):
    """Read side: search, chunk and document reads, vectors and word statistics for composing answers."""

    @property
    def location(self) -> str:
        """Where the library lives (a folder or a postgresql:// URL without its password), for messages."""
        ...

    @property
    def model(self) -> str:
        """The embedding model the library was built with."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every stored vector; a query vector of another length means the model changed."""
        ...

    @property
    def version(self) -> str:
        """Changes whenever a build changes the library, so a long-running reader knows to reload."""
        ...

    @property
    def manifest(self) -> Mapping[str, object]:
        """Build facts: model, dimension, counts, chunking, documents, skipped files, export of the query model."""
        ...

    def dense_search(self, query_vector: np.ndarray, k: int) -> list[Hit]:
        """The k chunks nearest the (normalised) query vector, best first."""
        ...

    def lexical_search(self, query: str, k: int) -> list[Hit]:
        """The k best BM25 chunks for the query, with the tokenizer of `knowledge.lexical.tokenize`."""
        ...

    def chunk(self, chunk_id: int) -> StoredChunk:
        """One chunk with everything needed to quote and cite it."""
        ...

    def chunk_count(self) -> int:
        """How many chunks the library holds."""
        ...

    def all_chunks(self) -> Iterable[StoredChunk]:
        """Every chunk, in document order (the speller's word counts are built from them once)."""
        ...

    def chunk_vectors(self, chunk_ids: Sequence[int]) -> np.ndarray:
        """The stored vectors of these chunks, one row each, in the order asked."""
        ...

    def sentence_vectors(self, chunk: StoredChunk) -> np.ndarray:
        """The stored vectors of one chunk's sentences, one row per sentence."""
        ...

    def document_chunks(self, doc_id: str) -> list[StoredChunk]:
        """A document's chunks in order."""
        ...

    def is_section_start(self, chunk_id: int) -> bool:
        """Whether the chunk's first sentence opens a section (or its document)."""
        ...

    def has_headings(self, doc_id: str) -> bool:
        """Whether the document has any headings (its untitled opening is then an introduction)."""
        ...

    def idf(self, token: str) -> float:
        """Inverse document frequency of one lexical token (0 for a token no chunk has)."""
        ...

    def vocabulary(self) -> frozenset[str]:
        """Every lexical token the library holds."""
        ...

    def question_keys(self) -> dict[str, dict[str, tuple[str, ...]]]:
        """Each document's question keys by '##' heading: the ways patients ask what a section says."""
        ...

    def document_meta(self, doc_id: str) -> dict:
        """Front matter and other metadata of one document."""
        ...

    def info(self) -> dict:
        """What `patient-qa index info` shows."""
        ...


@dataclass(frozen=True)
class BuiltDocument:
    """One new or changed document as a build hands it to a store: chunks, vectors and the text BM25 indexes."""

    doc_id: str  # the document's content hash
    doc: Document
    paths: tuple[str, ...]  # every file with this content; the first is the one cited
    chunks: tuple[Chunk, ...]
    chunk_vectors: np.ndarray  # one normalised row per chunk
    sentence_vectors: tuple[np.ndarray, ...]  # per chunk, one normalised row per sentence
    lexical_texts: tuple[str, ...]  # per chunk: title, headings, text and question keys, for BM25


class StoreWriter(Protocol):
    """Write side: what an incremental, atomic build needs from a store."""

    def stored(self, model: str, chunking: Mapping[str, object]) -> frozenset[str]:
        """Ids of documents stored with this model and chunking, which a build keeps without re-embedding."""
        ...

    def replace(self, new: Sequence[BuiltDocument], keep: Collection[str], manifest: Mapping[str, object]) -> None:
        """Make the library hold exactly `keep` plus `new`, atomically: readers see the old library or the new one."""
        ...
