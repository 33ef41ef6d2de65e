"""The knowledge store seam: what `qa` reads from a library, and what a build writes to one.

Two stores implement it: the embedded one (FAISS + bm25s + SQLite files in a folder, `knowledge.index`) and the
PostgreSQL + pgvector one (`knowledge.pg_store`). `qa` depends on these Protocols and nothing else of the index.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

from knowledge.index_errors import IndexError_

if TYPE_CHECKING:
    import numpy as np

    from knowledge.documents import Chunk, Document
    from knowledge.index import StoredChunk
    from knowledge.question_key_vectors import QuestionKeyVectors
    from knowledge.settings import Settings


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
        """BM25 inverse document frequency of one lexical token; a token no chunk has gets the highest weight,
        log(1 + (N + 0.5) / 0.5) for N chunks, as bm25s's Lucene formula gives a document frequency of 0."""
        ...

    def vocabulary(self) -> frozenset[str]:
        """Every lexical token the library holds."""
        ...

    def question_keys(self) -> dict[str, dict[str, tuple[str, ...]]]:
        """Each document's question keys by '##' heading: the ways patients ask what a section says."""
        ...

    def question_key_vectors(self) -> QuestionKeyVectors:
        """Every question key with its section and the vector the build embedded it as (empty for a library built
        before keys were embedded), so a question can be matched against the ways patients ask each section."""
        ...

    def document_meta(self, doc_id: str) -> dict:
        """Front matter and other metadata of one document."""
        ...

    def query_encoder_file(self) -> Path | None:
        """The verified ONNX export of the model that questions are embedded with (None: use sentence-transformers).

        The manifest's `query_encoder` entry says which export it is; a folder keeps the file inside itself, a
        server store may keep it in the user cache by model hash.
        """
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
    question_keys: tuple[tuple[str, str], ...] = ()  # (heading, key) of each front-matter question key
    question_key_vectors: np.ndarray | None = None  # one normalised row per question key (None: no keys)

    def __post_init__(self) -> None:
        """Every question key comes with its vector, so each store can write them row for row."""
        rows = 0 if self.question_key_vectors is None else len(self.question_key_vectors)
        if self.question_keys and rows != len(self.question_keys):
            raise ValueError(f"{self.paths[0] if self.paths else self.doc_id}: {len(self.question_keys)} question "
                             f"keys but {rows} vectors; the build is not saved")


class StoreWriter(Protocol):
    """Write side: what an incremental, atomic build needs from a store.

    A build runs `with writer.building():` around `stored`, `files` and one `replace`, so two builds never interleave.
    """

    @property
    def location(self) -> str:
        """Where the library lives (a folder or a postgresql:// URL without its password), for messages."""
        ...

    def building(self) -> AbstractContextManager[None]:
        """Hold the store's build lock for one whole build; on entry, recover from a build that died."""
        ...

    def files(self) -> Mapping[str, str]:
        """The file -> document id map of the current library ({} when none), so a build reports what changed."""
        ...

    def stored(self, model: str, chunking: Mapping[str, object]) -> frozenset[str]:
        """Ids of documents stored with this model and chunking, which a build keeps without re-embedding."""
        ...

    def replace(self, new: Sequence[BuiltDocument], keep: Collection[str], manifest: Mapping[str, object],
                query_encoder: Path | None = None) -> None:
        """Make the library hold exactly `keep` plus `new`, atomically: readers see the old library or the new one.

        The store numbers new chunks and keeps the chunk ids of kept documents. `manifest` is the build's record:
        model, chunking, `lexical` (`question_keys`: BM25 texts of kept chunks include their section's question
        keys), files, skipped, query_encoder, and `documents` in library order, each with its record fields
        (title, url, source_path, paths, reviewed, summary, kind, meta), which refresh a kept document. The store
        adds format_version, dimension, counts, built_at and `version`. `query_encoder` is the ONNX file the
        manifest's `query_encoder` entry describes, for `KnowledgeStore.query_encoder_file`. New documents bring their
        question keys' vectors; kept documents keep the ones stored (`stored` leaves out a document whose keys the
        store lacks, so the build embeds it again).
        """
        ...


SERVER_SCHEMES = ("postgresql://", "postgres://")


def is_server_url(store: str) -> bool:
    """Whether a `store` setting names a PostgreSQL server rather than a folder."""
    return store.startswith(SERVER_SCHEMES)


def json_default(value: object) -> str:
    """How every store writes front-matter values JSON has no type for: dates and times as ISO text, else str."""
    isoformat = getattr(value, "isoformat", None)
    return isoformat() if callable(isoformat) else str(value)


def shown_location(store: str) -> str:
    """A store URL without its password (in the user part or a `password=` parameter), fit for messages and logs."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    parts = urlsplit(store)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{host}" if user else host
    query = urlencode([(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"],
                      safe="/")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class StoreUnavailableError(IndexError_):
    """The configured store cannot be opened with what is installed."""


def _pg_store():
    """`knowledge.pg_store`, or a one-line error saying which extra to install."""
    try:
        import knowledge.pg_store as pg_store  # type: ignore[import-not-found,unused-ignore]
    except ImportError as err:
        raise StoreUnavailableError(f"a PostgreSQL store needs the postgres extra ({err.name or err} is missing); "
                                    "install it with: pip install '.[postgres]'") from None
    return pg_store


def where(index: object = None, store: object = None) -> dict[str, object]:
    """Settings overrides for the --index and --store flags: an explicit --index reads that folder even when
    PATIENT_QA_STORE names a server; --store wins over both."""
    if store:
        return {"store": str(store)}
    if index:
        return {"index_dir": index, "store": ""}
    return {}


def open_store(settings: Settings) -> KnowledgeStore:
    """The library `settings.index.store` names: a postgresql:// URL, else the index folder (the default)."""
    store = settings.index.store.strip()
    if is_server_url(store):
        return _pg_store().open_store(settings)
    from knowledge.index import KnowledgeIndex

    return KnowledgeIndex.load(Path(store).expanduser() if store else settings.index.index_dir)


def open_writer(settings: Settings) -> StoreWriter:
    """The writer for the library `open_store` would read."""
    store = settings.index.store.strip()
    if is_server_url(store):
        return _pg_store().open_writer(settings)
    from knowledge.index_writer import EmbeddedWriter

    return EmbeddedWriter(Path(store).expanduser() if store else settings.index.index_dir,
                          settings.limits.build_lock_wait_seconds, settings.index)
