"""The embedded knowledge store, read side: a folder of manifest.json, store.sqlite, chunks.faiss, sentences.npy and
bm25/, loaded whole into memory. `knowledge.index_writer` writes it; `knowledge.build` is the build pipeline.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from knowledge.documents import page_at
from knowledge.index_errors import (
    FORMAT_VERSION,
    MANIFEST,
    REBUILD_HINT,
    BuildLockedError,
    IndexError_,
    IndexMismatchError,
    IndexNotFoundError,
)
from knowledge.index_folder import _recover_for_reader
from knowledge.lexical import LexicalIndex
from knowledge.question_key_vectors import QuestionKey, QuestionKeyVectors, section_questions
from knowledge.store import Hit
from knowledge.vectors import load_vector_index, reconstruct, search_vectors

__all__ = [
    "FORMAT_VERSION", "MANIFEST", "QUESTION_KEY_ROWS", "QUESTION_KEY_VECTORS", "REBUILD_HINT", "BuildLockedError",
    "IndexError_", "IndexMismatchError", "IndexNotFoundError", "KnowledgeIndex", "StoredChunk", "document_meta",
]

# The question keys' vectors (.npy) and, row for row, their document, heading and text (JSON); an index built
# before keys were embedded has neither file and reads as having no key vectors.
QUESTION_KEY_VECTORS = "question_keys.npy"
QUESTION_KEY_ROWS = "question_keys.json"


@dataclass(frozen=True)
class StoredChunk:
    """A chunk as the answer side sees it: text, offsets and everything needed to cite it."""

    chunk_id: int
    doc_id: str
    article: str
    title: str
    url: str
    source_path: str
    heading_path: tuple[str, ...]
    text: str
    sentences: tuple[tuple[int, int], ...]
    page_start: int | None
    page_end: int | None
    page_breaks: tuple[tuple[int, int], ...]
    sentence_row: int
    position: int  # order of the chunk within its document

    def page_at(self, offset: int) -> int | None:
        """The PDF page of the character at `offset`, so a quote cites the page it is on."""
        return page_at(offset, self.page_breaks, self.page_start)

    @property
    def section(self) -> str:
        """The innermost heading, or the title for text before the first heading."""
        return self.heading_path[-1] if self.heading_path else self.title

    def sentence_texts(self) -> list[str]:
        return [self.text[s:e] for s, e in self.sentences]



# ---------------------------------------------------------------- loading and searching


class KnowledgeIndex:
    """The embedded `KnowledgeStore`: dense and BM25 search over chunks, chunk text and sentence vectors for quoting.

    Its attributes (`chunks`, `vectors`, `lexical`, ...) are the embedded store's own; `qa` reads only the Protocol.
    """

    def __init__(self, directory: Path, manifest: dict, vectors, lexical: LexicalIndex,
                 sentence_matrix: np.ndarray, chunks: dict[int, StoredChunk],
                 question_keys: QuestionKeyVectors | None = None) -> None:
        self.directory = directory
        self.key_vectors = question_keys or QuestionKeyVectors.empty(int(vectors.d))
        self.manifest = manifest
        self.vectors = vectors
        self.lexical = lexical
        self.sentence_matrix = sentence_matrix
        self.chunks = chunks
        self.doc_chunk_ids: dict[str, list[int]] = {}
        self.section_starts: set[int] = set()  # chunks whose first sentence opens a section
        self.docs_with_headings: set[str] = {c.doc_id for c in chunks.values() if c.heading_path}
        self._question_keys: dict[str, dict[str, tuple[str, ...]]] | None = None
        previous: StoredChunk | None = None
        for chunk in sorted(chunks.values(), key=lambda c: (c.doc_id, c.position)):
            self.doc_chunk_ids.setdefault(chunk.doc_id, []).append(chunk.chunk_id)
            if previous is None or previous.doc_id != chunk.doc_id or previous.heading_path != chunk.heading_path:
                self.section_starts.add(chunk.chunk_id)
            previous = chunk

    @property
    def model(self) -> str:
        return str(self.manifest["model"])

    @property
    def location(self) -> str:
        return str(self.directory)

    @property
    def dimension(self) -> int:
        return int(self.vectors.d)

    @property
    def version(self) -> str:
        """The build's own stamp; an index from before stamps gets its build time and a digest of its manifest."""
        stamp = self.manifest.get("version")
        if isinstance(stamp, str) and stamp:
            return stamp
        digest = hashlib.sha256(json.dumps(self.manifest, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return f"{self.manifest.get('built_at')}+{digest}"

    @classmethod
    def load(cls, directory: Path, model: str | None = None, dimension: int | None = None) -> KnowledgeIndex:
        """Load an index; a different model, dimension or format is an `IndexMismatchError` that says how to rebuild."""
        directory = Path(directory).expanduser()
        _recover_for_reader(directory)
        manifest_path = directory / MANIFEST
        if not manifest_path.exists():
            raise IndexNotFoundError(f"no index at {directory}; run 'patient-qa index build' to create it")
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            raise IndexMismatchError(f"the index manifest at {manifest_path} is damaged; {REBUILD_HINT}") from None
        if not isinstance(manifest, dict):
            raise IndexMismatchError(
                f"the index manifest at {manifest_path} is not a JSON object, so it is damaged; {REBUILD_HINT}"
            )
        version = manifest.get("format_version")
        if version != FORMAT_VERSION:
            raise IndexMismatchError(
                f"index at {directory} has format version {version}, this patient-qa reads {FORMAT_VERSION}; {REBUILD_HINT}"
            )
        if model is not None and manifest.get("model") != model:
            raise IndexMismatchError(
                f"index at {directory} was built with model '{manifest.get('model')}', not '{model}'; "
                f"{REBUILD_HINT} with --model {model}"
            )
        if dimension is not None and manifest.get("dimension") != dimension:
            raise IndexMismatchError(
                f"index at {directory} holds {manifest.get('dimension')}-dimensional vectors, the model makes "
                f"{dimension}; {REBUILD_HINT}"
            )
        try:
            vectors = load_vector_index(directory / "chunks.faiss")
            lexical = LexicalIndex.load(directory / "bm25")
            sentence_matrix = np.load(directory / "sentences.npy", allow_pickle=False)
            chunks = _read_chunks(directory / "store.sqlite")
            question_keys = _read_question_keys(directory)
        except (OSError, RuntimeError, ValueError, sqlite3.DatabaseError) as err:
            raise IndexMismatchError(f"index at {directory} is incomplete or damaged ({err}); {REBUILD_HINT}") from None
        _check_consistent(directory, manifest, vectors, sentence_matrix, chunks)
        if len(question_keys) and question_keys.vectors.shape[1] != vectors.d:
            raise IndexMismatchError(f"index at {directory} is incomplete or damaged (its question key vectors do not "
                                     f"match its chunk vectors); {REBUILD_HINT}")
        return cls(directory, manifest, vectors, lexical, sentence_matrix, chunks, question_keys)

    def chunk(self, chunk_id: int) -> StoredChunk:
        return self.chunks[chunk_id]

    def chunk_count(self) -> int:
        return len(self.chunks)

    def all_chunks(self) -> list[StoredChunk]:
        """Every chunk, in the order the build wrote them (documents in build order, chunks in reading order)."""
        return list(self.chunks.values())

    def chunk_vectors(self, chunk_ids: Sequence[int]) -> np.ndarray:
        return reconstruct(self.vectors, list(chunk_ids))

    def is_section_start(self, chunk_id: int) -> bool:
        return chunk_id in self.section_starts

    def has_headings(self, doc_id: str) -> bool:
        return doc_id in self.docs_with_headings

    def idf(self, token: str) -> float:
        return self.lexical.idf(token)

    def vocabulary(self) -> frozenset[str]:
        return self.lexical.vocabulary()

    def document_meta(self, doc_id: str) -> dict:
        return document_meta(self, doc_id)

    def query_encoder_file(self) -> Path | None:
        """The verified ONNX export saved in the folder at build time (None when the build made none)."""
        record = self.manifest.get("query_encoder")
        if not isinstance(record, dict) or not record.get("file"):
            return None
        return self.directory / str(record["file"])

    def sentence_vectors(self, chunk: StoredChunk) -> np.ndarray:
        """Vectors of the chunk's sentences, precomputed at build time."""
        return self.sentence_matrix[chunk.sentence_row : chunk.sentence_row + len(chunk.sentences)]

    def dense_search(self, query_vector: np.ndarray, k: int) -> list[Hit]:
        """Nearest chunks; a query of another length means the model changed since the build (FAISS would assert)."""
        if query_vector.shape[-1] != self.vectors.d:
            raise IndexMismatchError(
                f"index at {self.directory} holds {self.vectors.d}-dimensional vectors, the model "
                f"'{self.model}' makes {query_vector.shape[-1]}; {REBUILD_HINT}"
            )
        return [Hit(chunk_id, score) for chunk_id, score in search_vectors(self.vectors, query_vector, k)]

    def lexical_search(self, query: str, k: int) -> list[Hit]:
        return [Hit(chunk_id, score) for chunk_id, score in self.lexical.search(query, k)]

    def question_keys(self) -> dict[str, dict[str, tuple[str, ...]]]:
        """Each document's question keys by '##' heading: the ways patients ask what a section says."""
        if self._question_keys is None:
            db = sqlite3.connect(f"file:{self.directory / 'store.sqlite'}?mode=ro", uri=True)
            try:
                rows = db.execute("SELECT doc_id, meta FROM documents").fetchall()
            finally:
                db.close()
            parsed = ((doc_id, json.loads(meta or "{}") or {}) for doc_id, meta in rows)
            self._question_keys = {doc_id: section_questions(meta) for doc_id, meta in parsed
                                   if isinstance(meta.get("questions"), dict)}
        return self._question_keys

    def question_key_vectors(self) -> QuestionKeyVectors:
        """The question keys' vectors the build stored beside the index (loaded with it)."""
        return self.key_vectors

    def document_chunks(self, doc_id: str) -> list[StoredChunk]:
        return [self.chunks[c] for c in self.doc_chunk_ids.get(doc_id, [])]

    def info(self) -> dict:
        """What `patient-qa index info` shows."""
        from knowledge.onnx_embedder import export_summary

        m = self.manifest
        size = sum(f.stat().st_size for f in self.directory.rglob("*") if f.is_file())
        return {
            "index_dir": str(self.directory),
            "format_version": m.get("format_version"),
            "model": m.get("model"),
            "dimension": m.get("dimension"),
            "built_at": m.get("built_at"),
            "version": self.version,
            "build_seconds": m.get("build_seconds"),
            "chunking": m.get("chunking"),
            **m.get("counts", {}),
            "size_bytes": size,
            "documents_list": [
                {"title": d["title"], "source_path": d["source_path"], "chunks": d["chunks"], "kind": d.get("kind")}
                for d in m.get("documents", {}).values()
            ],
            "skipped": m.get("skipped", []),
            "query_encoder": export_summary(m.get("query_encoder")),
        }


def _check_consistent(directory: Path, manifest: dict, vectors, sentence_matrix: np.ndarray,
                      chunks: dict[int, StoredChunk]) -> None:
    """The store, the vectors and the manifest must describe the same chunks, or a search finds ids with no text."""
    counts = manifest.get("counts")
    counts = counts if isinstance(counts, dict) else {}
    expected = counts.get("chunks", vectors.ntotal)
    problem = ""
    if len(chunks) != vectors.ntotal or len(chunks) != expected:
        problem = f"the store has {len(chunks)} chunks, the vectors {vectors.ntotal}, the manifest {expected}"
    elif not chunks:
        problem = "it holds no chunks"
    elif sentence_matrix.ndim != 2 or sentence_matrix.shape[1] != vectors.d:
        problem = "its sentence vectors do not match its chunk vectors"
    elif max(c.sentence_row + len(c.sentences) for c in chunks.values()) > sentence_matrix.shape[0]:
        problem = "its sentence vectors are shorter than its chunks need"
    if problem:
        raise IndexMismatchError(f"index at {directory} is incomplete or damaged ({problem}); {REBUILD_HINT}")


def _read_question_keys(directory: Path) -> QuestionKeyVectors:
    """The stored question keys and their vectors; none for an index built before they were stored."""
    vectors_path, rows_path = directory / QUESTION_KEY_VECTORS, directory / QUESTION_KEY_ROWS
    if not vectors_path.exists() and not rows_path.exists():
        return QuestionKeyVectors.empty()
    vectors = np.load(vectors_path, allow_pickle=False)
    rows = json.loads(rows_path.read_text(encoding="utf-8"))
    if not isinstance(rows, list) or vectors.ndim != 2 or len(rows) != len(vectors):
        raise ValueError(f"{QUESTION_KEY_ROWS} does not describe {QUESTION_KEY_VECTORS} row for row")
    keys = tuple(QuestionKey(str(doc_id), str(heading), str(text)) for doc_id, heading, text in rows)
    return QuestionKeyVectors(keys, vectors.astype(np.float32))


def _read_chunks(path: Path) -> dict[int, StoredChunk]:
    """All chunk rows joined with their document, kept in memory for microsecond look-ups."""
    if not path.exists():
        raise OSError(f"missing {path.name}")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT c.chunk_id, c.doc_id, d.source_path, d.title, d.url, c.heading_path, c.text, c.sentences,"
            " c.page_start, c.page_end, c.page_breaks, c.sentence_row, c.position"
            " FROM chunks c JOIN documents d USING (doc_id)"
        ).fetchall()
    finally:
        db.close()
    chunks = {}
    for cid, doc_id, source_path, title, url, heading, text, sentences, p0, p1, breaks, row, position in rows:
        chunks[cid] = StoredChunk(
            chunk_id=cid, doc_id=doc_id, article=Path(source_path).stem, title=title, url=url or "",
            source_path=source_path, heading_path=tuple(json.loads(heading)), text=text,
            sentences=tuple(tuple(s) for s in json.loads(sentences)), page_start=p0, page_end=p1,
            page_breaks=tuple(tuple(b) for b in json.loads(breaks or "[]")),
            sentence_row=row, position=position,
        )
    return chunks


def document_meta(index: KnowledgeIndex, doc_id: str) -> dict:
    """Front matter and other metadata of one document, read on demand from the store."""
    db = sqlite3.connect(f"file:{index.directory / 'store.sqlite'}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT meta, reviewed, summary FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
    finally:
        db.close()
    if not row:
        return {}
    meta = json.loads(row[0] or "{}")
    meta.setdefault("reviewed", row[1])
    meta.setdefault("summary", row[2])
    return meta
