"""The embedded knowledge store, write side: `EmbeddedWriter` writes a whole new index folder beside the old one
(kept documents copied from it, new ones from the build) and renames it into place, so readers see either.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import shutil
import sqlite3
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from knowledge.chunking import lexical_text
from knowledge.index import QUESTION_KEY_ROWS, QUESTION_KEY_VECTORS, KnowledgeIndex, StoredChunk
from knowledge.index_errors import FORMAT_VERSION, MANIFEST, IndexError_
from knowledge.index_folder import (
    _make_parent,
    _recover_interrupted_swap,
    _refuse_foreign_directory,
    _remove_leftovers,
    _swap_into_place,
    build_lock,
)
from knowledge.lexical import LexicalIndex
from knowledge.question_key_vectors import QuestionKey, QuestionKeyVectors, question_pairs
from knowledge.settings import IndexSettings
from knowledge.store import BuiltDocument, json_default
from knowledge.vectors import build_vector_index, reconstruct, save_vector_index

_SCHEMA = """
CREATE TABLE documents (
    doc_id TEXT PRIMARY KEY, title TEXT, url TEXT, source_path TEXT, paths TEXT,
    reviewed TEXT, summary TEXT, kind TEXT, meta TEXT
);
CREATE TABLE chunks (
    chunk_id INTEGER PRIMARY KEY, doc_id TEXT, position INTEGER, heading_path TEXT, text TEXT,
    sentences TEXT, page_start INTEGER, page_end INTEGER, page_breaks TEXT, sentence_row INTEGER
);
CREATE INDEX chunks_doc ON chunks(doc_id);
"""

# Document fields a build may refresh on a kept document (same content hash, new front matter or file path).
RECORD_FIELDS = ("title", "url", "source_path", "paths", "reviewed", "summary", "kind", "meta")
# Of those, what manifest.json keeps per document (the rest lives in store.sqlite).
MANIFEST_FIELDS = ("title", "source_path", "paths", "chunks", "kind")


@dataclass(frozen=True)
class ChunkRow:
    """One chunk as written: where it sits and what it says."""

    chunk_id: int
    heading_path: tuple[str, ...]
    text: str
    sentences: tuple[tuple[int, int], ...]
    page_start: int | None
    page_end: int | None
    page_breaks: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class DocRow:
    """One document as written, with its chunks, their vectors and their BM25 texts."""

    doc_id: str
    record: dict  # RECORD_FIELDS
    chunks: tuple[ChunkRow, ...]
    chunk_vectors: np.ndarray
    sentence_vectors: tuple[np.ndarray, ...]
    lexical_texts: tuple[str, ...]
    question_keys: QuestionKeyVectors


def _write_question_keys(directory: Path, docs: Sequence[DocRow], dimension: int) -> None:
    """Write question_keys.npy (one vector per key) and question_keys.json (its document, heading and text)."""
    keys = QuestionKeyVectors.joined([d.question_keys for d in docs])
    vectors = keys.vectors if len(keys) else np.zeros((0, dimension), dtype=np.float32)
    np.save(directory / QUESTION_KEY_VECTORS, vectors.astype(np.float32), allow_pickle=False)
    rows = [[k.doc_id, k.heading, k.text] for k in keys.keys]
    (directory / QUESTION_KEY_ROWS).write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")


def _write_store(directory: Path, docs: Sequence[DocRow]) -> int:
    """Write store.sqlite and sentences.npy; returns the number of sentence rows."""
    db = sqlite3.connect(directory / "store.sqlite")
    db.executescript(_SCHEMA)
    row = 0
    blocks: list[np.ndarray] = []
    for doc in docs:
        r = doc.record
        db.execute(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?)",
            (doc.doc_id, r["title"], r["url"], r["source_path"], json.dumps(list(r["paths"])), r["reviewed"],
             r["summary"], r["kind"], json.dumps(r["meta"], default=json_default)),
        )
        for position, (chunk, sent_vecs) in enumerate(zip(doc.chunks, doc.sentence_vectors, strict=True)):
            db.execute(
                "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?)",
                (chunk.chunk_id, doc.doc_id, position, json.dumps(chunk.heading_path), chunk.text,
                 json.dumps(chunk.sentences), chunk.page_start, chunk.page_end, json.dumps(chunk.page_breaks), row),
            )
            blocks.append(sent_vecs)
            row += len(sent_vecs)
    db.commit()
    db.close()
    dim = blocks[0].shape[1] if blocks else 0
    matrix = np.vstack(blocks).astype(np.float32) if blocks else np.zeros((0, dim), dtype=np.float32)
    np.save(directory / "sentences.npy", matrix, allow_pickle=False)
    return row


def _read_manifest(index_dir: Path) -> dict:
    """The folder's manifest as a dict, or {} when there is none or it is damaged."""
    try:
        manifest = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


class EmbeddedWriter:
    """The embedded store's `StoreWriter`: a new folder beside the old one, renamed into place when complete."""

    def __init__(self, index_dir: Path, lock_wait_seconds: float = 10.0,
                 settings: IndexSettings = IndexSettings()) -> None:
        self.index_dir = Path(index_dir).expanduser()
        self.lock_wait_seconds = lock_wait_seconds
        self.settings = settings  # the vector index's exact/HNSW switch and parameters
        self._old: KnowledgeIndex | None = None

    @property
    def location(self) -> str:
        return str(self.index_dir)

    @contextlib.contextmanager
    def building(self) -> Iterator[None]:
        """Hold the folder's build lock; first put back an index whose build died mid-swap and clear leftovers."""
        if self.index_dir.exists() and not self.index_dir.is_dir():
            _refuse_foreign_directory(self.index_dir)  # before the lock file is placed beside it
        _make_parent(self.index_dir)  # before embedding: an unwritable place must not cost an hour of work first
        with build_lock(self.index_dir, self.lock_wait_seconds):
            _recover_interrupted_swap(self.index_dir)  # else the previous index is neither reused nor cleaned up
            _remove_leftovers(self.index_dir)
            _refuse_foreign_directory(self.index_dir)
            try:
                yield
            finally:
                self._old = None

    def files(self) -> dict[str, str]:
        """The file -> document map of the current index, even one whose vectors cannot be reused."""
        files = _read_manifest(self.index_dir).get("files")
        return files if isinstance(files, dict) else {}

    def _compatible(self, model: str, chunking: Mapping[str, object]) -> KnowledgeIndex | None:
        """The existing index, if its vectors can be reused for this build (same model and chunking)."""
        if not (self.index_dir / MANIFEST).exists():
            return None
        try:
            old = KnowledgeIndex.load(self.index_dir, model=model)
        except IndexError_:
            return None
        return old if old.manifest.get("chunking") == dict(chunking) else None

    def stored(self, model: str, chunking: Mapping[str, object]) -> frozenset[str]:
        """Documents the old index holds with all they need; one with question keys but no key vectors (an index
        built before keys were embedded) is left out, so the build embeds it again."""
        self._old = old = self._compatible(model, chunking)
        if old is None:
            return frozenset()
        with_keys = {k.doc_id for k in old.question_key_vectors().keys}
        asked = old.question_keys()
        return frozenset(doc_id for doc_id in old.doc_chunk_ids
                         if doc_id in with_keys or not question_pairs(asked.get(doc_id, {})))

    def replace(self, new: Sequence[BuiltDocument], keep: Collection[str], manifest: Mapping[str, object],
                query_encoder: Path | None = None) -> None:
        old = self._old
        if old is None and keep:
            old = self._compatible(str(manifest.get("model")), _mapping(manifest.get("chunking")))
        missing = [doc_id for doc_id in keep if old is None or doc_id not in old.doc_chunk_ids]
        if missing:
            raise IndexError_(f"the index at {self.index_dir} no longer holds {len(missing)} of the documents this "
                              "build keeps; run the build again")
        documents = _mapping(manifest.get("documents"))
        lexical = _mapping(manifest.get("lexical"))
        question_keys = bool(lexical.get("question_keys", True))
        new_by_id = {d.doc_id: d for d in new}
        order = list(dict.fromkeys([*(i for i in documents if i in new_by_id or i in keep), *keep, *new_by_id]))
        next_id = int(old.manifest.get("next_chunk_id", 1)) if old is not None else 1
        rows: list[DocRow] = []
        old_keys = old.question_key_vectors().by_document() if old is not None else {}
        for doc_id in order:
            entry = _mapping(documents.get(doc_id))
            if doc_id in new_by_id:
                row = _new_row(new_by_id[doc_id], next_id)
                next_id += len(row.chunks)
            else:
                assert old is not None  # checked above
                row = _kept_row(old, doc_id, entry, question_keys, old_keys)
            rows.append(row)
        if not rows or not any(r.chunks for r in rows):
            raise IndexError_(f"a build gave the index at {self.index_dir} no chunks; the previous index is kept")

        tmp = _make_parent(self.index_dir, building=True)
        try:
            sentences = _write_store(tmp, rows)
            all_ids = np.asarray([c.chunk_id for r in rows for c in r.chunks], dtype=np.int64)
            all_vectors = np.vstack([r.chunk_vectors for r in rows])
            _write_question_keys(tmp, rows, int(all_vectors.shape[1]))
            if len(all_vectors) != len(all_ids):  # every document was embedded or kept; a gap is a bug
                raise RuntimeError(f"{len(all_ids)} chunks but {len(all_vectors)} vectors; the build is not saved")
            save_vector_index(build_vector_index(all_vectors, all_ids, self.settings), tmp / "chunks.faiss")
            record = manifest.get("query_encoder")
            if query_encoder is not None and isinstance(record, dict) and record.get("file"):
                from knowledge.onnx_embedder import place_export

                place_export(query_encoder, tmp / str(record["file"]))
            LexicalIndex.build([t for r in rows for t in r.lexical_texts], all_ids.tolist()).save(tmp / "bm25")
            written = self._manifest(manifest, rows, all_vectors, sentences, next_id)
            (tmp / MANIFEST).write_text(json.dumps(written, indent=1, default=json_default), encoding="utf-8")
            _swap_into_place(tmp, self.index_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @staticmethod
    def _manifest(given: Mapping[str, object], rows: Sequence[DocRow], vectors: np.ndarray, sentences: int,
                  next_id: int) -> dict:
        """The build's manifest plus what only the store knows: format, counts, ids, build time and version."""
        documents = {key: {k: v for k, v in value.items() if k in MANIFEST_FIELDS}
                     for key, value in _mapping(given.get("documents")).items() if isinstance(value, Mapping)}
        for row in rows:  # the chunks actually stored, kept documents included
            documents.setdefault(row.doc_id, {"title": row.record["title"], "source_path": row.record["source_path"],
                                              "paths": list(row.record["paths"]), "kind": row.record["kind"]})
            documents[row.doc_id]["chunks"] = len(row.chunks)
        manifest = {
            "format_version": FORMAT_VERSION,
            **given,
            "dimension": int(vectors.shape[1]),
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "counts": {"documents": len(rows), "chunks": sum(len(r.chunks) for r in rows), "sentences": sentences},
            "next_chunk_id": next_id,
            "documents": {row.doc_id: documents[row.doc_id] for row in rows},
        }
        content = json.dumps([manifest.get("model"), manifest.get("chunking"), manifest.get("lexical"),
                              [(r.doc_id, [c.chunk_id for c in r.chunks]) for r in rows]], default=json_default)
        manifest["version"] = f"{manifest['built_at']}+{hashlib.sha256(content.encode()).hexdigest()[:16]}"
        return manifest


def _mapping(value: object) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _new_row(doc: BuiltDocument, first_id: int) -> DocRow:
    """A freshly embedded document, its chunks numbered from `first_id`."""
    d = doc.doc
    record = {"title": d.title, "url": d.url, "source_path": doc.paths[0], "paths": list(doc.paths),
              "reviewed": d.reviewed, "summary": d.summary, "kind": d.kind, "meta": d.meta}
    chunks = tuple(ChunkRow(first_id + i, tuple(c.heading_path), c.text, tuple(c.sentences), c.page_start,
                            c.page_end, tuple(c.page_breaks)) for i, c in enumerate(doc.chunks))
    return DocRow(doc.doc_id, record, chunks, doc.chunk_vectors, tuple(doc.sentence_vectors), tuple(doc.lexical_texts),
                  _built_keys(doc))


def _built_keys(doc: BuiltDocument) -> QuestionKeyVectors:
    """A new document's question keys with the vectors the build embedded for them."""
    if not doc.question_keys:
        return QuestionKeyVectors.empty()
    vectors = np.asarray(doc.question_key_vectors, dtype=np.float32)  # as many as keys (BuiltDocument checks)
    return QuestionKeyVectors(tuple(QuestionKey(doc.doc_id, h, t) for h, t in doc.question_keys), vectors)


def _kept_row(old: KnowledgeIndex, doc_id: str, entry: Mapping, question_keys: bool,
              old_keys: Mapping[str, QuestionKeyVectors]) -> DocRow:
    """A document copied from the old index with its chunk ids and vectors; `entry` refreshes its record."""
    record = _stored_record(old, doc_id)
    record.update({key: entry[key] for key in RECORD_FIELDS if key in entry})
    if "paths" in entry and "source_path" not in entry and entry["paths"]:
        record["source_path"] = entry["paths"][0]
    chunk_ids = old.doc_chunk_ids[doc_id]
    stored: list[StoredChunk] = [old.chunk(cid) for cid in chunk_ids]
    chunks = tuple(ChunkRow(c.chunk_id, c.heading_path, c.text, c.sentences, c.page_start, c.page_end,
                            c.page_breaks) for c in stored)
    texts = tuple(lexical_text(str(record["title"]), c.heading_path, c.text, record["meta"], question_keys)
                  for c in stored)
    return DocRow(doc_id, record, chunks, reconstruct(old.vectors, chunk_ids),
                  tuple(np.asarray(old.sentence_vectors(c)) for c in stored), texts,
                  old_keys.get(doc_id, QuestionKeyVectors.empty()))


def _stored_record(old: KnowledgeIndex, doc_id: str) -> dict:
    """A document's row in the old store.sqlite, as RECORD_FIELDS."""
    db = sqlite3.connect(f"file:{old.directory / 'store.sqlite'}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT title, url, source_path, paths, reviewed, summary, kind, meta FROM documents"
                         " WHERE doc_id = ?", (doc_id,)).fetchone()
    finally:
        db.close()
    title, url, source_path, paths, reviewed, summary, kind, meta = row
    return {"title": title, "url": url, "source_path": source_path, "paths": json.loads(paths or "[]"),
            "reviewed": reviewed, "summary": summary, "kind": kind, "meta": json.loads(meta or "{}")}
