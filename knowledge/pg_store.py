"""The PostgreSQL + pgvector knowledge store: one library shared by many chat processes, updated without restarts.

Dense search is pgvector HNSW (inner product on unit vectors); lexical search is BM25 with bm25s's own weights
stored per chunk as a `sparsevec`, so a query's token counts scored by inner product give the embedded store's
BM25 scores. A build replaces the library in one transaction and bumps the version row; every reader polls that
row (`pg_poll_seconds`) and reloads its in-memory chunk rows when it changed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import threading
import time
import weakref
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from knowledge.chunking import lexical_text
from knowledge.errors import PatientQAError
from knowledge.index import StoredChunk
from knowledge.pg_schema import (
    SCHEMA_VERSION,
    SPARSE_DIMENSIONS,
    EmptyStoreError,
    StoreError,
    StoreUnavailableError,
    VectorExtensionMissingError,
    check_schema,
    create_extension,
    has_vector_extension,
    migrate,
    set_dimension,
)
from knowledge.question_key_vectors import QuestionKey, QuestionKeyVectors, document_question_keys, section_questions
from knowledge.settings import PostgresSettings
from knowledge.store import BuiltDocument, Hit, json_default, shown_location

_BUILD_LOCK = "patient-qa replace"  # one transaction writes at a time
_SESSION_LOCK = "patient-qa build"  # one build at a time, held from reading the files to the commit
_VECTOR_CACHE = 50_000  # chunks whose vectors (chunk and sentences) are kept in memory


def _scrub(message: str, url: str) -> str:
    """A driver message on one line, with the URL's password removed should the driver have echoed it."""
    line = " ".join(message.split())
    password = urlsplit(url).password
    return line.replace(password, "***") if password else line


def _array(value: object) -> np.ndarray:
    """A vector as pgvector's loader returns it (an array, or a `Vector` in binary results) as float32."""
    to_numpy = getattr(value, "to_numpy", None)
    return np.asarray(to_numpy() if to_numpy else value, dtype=np.float32)


def _jsonb(value: object):
    from psycopg.types.json import Jsonb

    return Jsonb(value, dumps=lambda v: json.dumps(v, default=json_default))


def _configure(conn, ef_search: int) -> None:
    """Every pooled connection: pgvector's types, and the HNSW search depth."""
    from pgvector.psycopg import register_vector

    register_vector(conn)
    conn.execute(f"SET hnsw.ef_search = {int(ef_search)}")


@dataclass(frozen=True)
class _Library:
    """One version of the library as a reader holds it in memory: chunk rows, word statistics, document meta."""

    version: int
    manifest: dict
    dimension: int
    chunks: dict[int, StoredChunk]
    doc_chunk_ids: dict[str, list[int]]
    section_starts: frozenset[int]
    docs_with_headings: frozenset[str]
    meta: dict[str, dict]
    idf: dict[str, float]
    dims: dict[str, int]  # token -> its dimension in the chunks' BM25 sparsevecs
    idf_max: float
    words: frozenset[str]  # the vocabulary
    question_keys: QuestionKeyVectors


class PgStore:
    """A library in PostgreSQL: the `KnowledgeStore` read side and the `StoreWriter` write side."""

    def __init__(self, url: str, settings: PostgresSettings | None = None, *, for_build: bool = False,
                 lock_wait_seconds: float = 10.0) -> None:
        self._url = url
        self._lock_wait_seconds = lock_wait_seconds
        self._location = shown_location(url)
        self._settings = settings or PostgresSettings()
        self._prepare(for_build)
        from psycopg_pool import ConnectionPool

        self._pool = ConnectionPool(
            url, min_size=1, max_size=self._settings.pg_pool_size, open=True,
            configure=functools.partial(_configure, ef_search=self._settings.pg_ef_search),  # no reference to self
            kwargs={"autocommit": True, "connect_timeout": max(1, math.ceil(self._settings.pg_connect_timeout))},
            timeout=self._settings.pg_connect_timeout, name="patient-qa",
        )
        # A store nobody holds any more (a build's writer, a test's reader) gives its connections back.
        weakref.finalize(self, self._pool.close)
        self._lock = threading.Lock()
        self._library: _Library | None = None
        self._previous: _Library | None = None
        self._checked = 0.0
        self._vector_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        if not for_build:
            self._reload()

    # ---------------------------------------------------------------- connections

    def _connect(self):
        """One direct connection, or a one-line error saying the server is down or the URL is wrong."""
        import psycopg

        try:
            return psycopg.connect(self._url, autocommit=True,
                                   connect_timeout=max(1, math.ceil(self._settings.pg_connect_timeout)))
        except psycopg.OperationalError as err:
            raise StoreUnavailableError(
                f"cannot reach PostgreSQL at {self._location} ({_scrub(str(err), self._url)}); start the server "
                "or fix --store / PATIENT_QA_STORE") from None
        except psycopg.ProgrammingError as err:
            raise StoreError(f"'{self._location}' is not a usable PostgreSQL URL ({_scrub(str(err), self._url)}); "
                             "fix --store / PATIENT_QA_STORE") from None

    def _prepare(self, for_build: bool) -> None:
        """Check (a reader) or create and migrate (a build) the schema before the pool's connections need it."""
        with self._connect() as conn:
            if for_build:
                create_extension(conn, self._location)
                with conn.transaction():
                    migrate(conn, self._location)
            else:
                if not has_vector_extension(conn):
                    if conn.execute("SELECT to_regclass('schema_version') IS NULL").fetchone()[0]:
                        raise EmptyStoreError(f"no library in the store at {self._location}; run 'patient-qa "
                                              f"index build --store {self._location}' to create it")
                    raise VectorExtensionMissingError(
                        f"the database at {self._location} has no 'vector' extension; install pgvector on the "
                        "server and run 'CREATE EXTENSION vector;' in that database")
                check_schema(conn, self._location)

    def _query(self, sql: str, params: Sequence[object] | Mapping[str, object] = ()) -> list[tuple]:
        """Rows of one read, with a lost server turned into a one-line error."""
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            with self._pool.connection() as conn:
                return conn.execute(sql, params).fetchall()
        except (psycopg.OperationalError, PoolTimeout) as err:
            raise StoreUnavailableError(f"lost the PostgreSQL store at {self._location} "
                                        f"({_scrub(str(err), self._url)}); check that the server is running") from None

    def close(self) -> None:
        """Close the pool's connections (a process that exits closes them anyway)."""
        self._pool.close()

    def __enter__(self) -> PgStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- the library in memory

    def _reload(self) -> _Library:
        """Read one consistent version of the library (one snapshot) into memory."""
        import psycopg

        try:
            with self._pool.connection() as conn:
                conn.autocommit = False
                try:
                    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                    with conn.transaction():
                        library = _read_library(conn, self._location)
                finally:
                    conn.isolation_level = None
                    conn.autocommit = True
        except psycopg.OperationalError as err:
            raise StoreUnavailableError(f"lost the PostgreSQL store at {self._location} "
                                        f"({_scrub(str(err), self._url)}); check that the server is running") from None
        if self._library is not None and self._library.version != library.version:
            self._previous = self._library
        self._library = library
        self._checked = time.monotonic()
        return library

    def _current(self, poll: bool = True) -> _Library:
        """The library in memory, reloaded first when the version row moved (checked every `pg_poll_seconds`)."""
        library = self._library
        if library is None:
            with self._lock:
                return self._library or self._reload()
        if poll and time.monotonic() - self._checked >= self._settings.pg_poll_seconds:
            with self._lock:
                if time.monotonic() - self._checked >= self._settings.pg_poll_seconds:
                    row = self._query("SELECT version FROM library")
                    self._checked = time.monotonic()
                    if row and int(row[0][0]) != self._library.version:  # type: ignore[union-attr]
                        return self._reload()
                return self._library  # type: ignore[return-value]
        return library

    def refresh(self) -> bool:
        """Check the version row now; True when a newer library was loaded."""
        before = self._current(poll=False).version
        self._checked = 0.0
        return self._current().version != before

    # ---------------------------------------------------------------- KnowledgeStore: facts

    @property
    def location(self) -> str:
        return self._location

    @property
    def model(self) -> str:
        return str(self._current(poll=False).manifest.get("model"))

    @property
    def dimension(self) -> int:
        return self._current(poll=False).dimension

    @property
    def version(self) -> str:
        return str(self._current().version)

    @property
    def manifest(self) -> Mapping[str, object]:
        return self._current(poll=False).manifest

    # ---------------------------------------------------------------- search

    def dense_search(self, query_vector: np.ndarray, k: int) -> list[Hit]:
        """The k nearest chunks by pgvector HNSW (inner product of unit vectors: cosine), best first."""
        library = self._current()
        vector = np.asarray(query_vector, dtype=np.float32).reshape(-1)
        if vector.shape[0] != library.dimension:
            raise StoreError(f"the store at {self._location} holds {library.dimension}-dimensional vectors, the model "
                             f"makes {vector.shape[0]}; run 'patient-qa index build --store {self._location}' with "
                             "this model")
        rows = self._query("SELECT chunk_id, (embedding <#> %s) FROM chunks ORDER BY embedding <#> %s LIMIT %s",
                           (vector, vector, int(k)))
        return [Hit(int(cid), -float(distance)) for cid, distance in rows]

    def lexical_search(self, query: str, k: int) -> list[Hit]:
        """The k best BM25 chunks: the query's token counts against each chunk's stored bm25s weights."""
        from knowledge.lexical import tokenize

        library = self._current()
        counts = Counter(library.dims[t] for t in tokenize(query) if t in library.dims)
        if not counts or k <= 0:
            return []
        from pgvector import SparseVector

        vector = SparseVector({dim: float(n) for dim, n in counts.items()}, SPARSE_DIMENSIONS)
        rows = self._query("SELECT chunk_id, (lexical <#> %s) AS d FROM chunks ORDER BY d, chunk_id LIMIT %s",
                           (vector, int(k)))
        return [Hit(int(cid), -float(d)) for cid, d in rows if d is not None and -float(d) > 0]

    # ---------------------------------------------------------------- chunks and documents

    def chunk(self, chunk_id: int) -> StoredChunk:
        library = self._current(poll=False)
        found = library.chunks.get(chunk_id)
        if found is None and self._previous is not None:  # a hit from just before a reload
            found = self._previous.chunks.get(chunk_id)
        if found is None:
            raise KeyError(chunk_id)
        return found

    def chunk_count(self) -> int:
        return len(self._current(poll=False).chunks)

    def all_chunks(self) -> Iterable[StoredChunk]:
        library = self._current(poll=False)
        return [library.chunks[c] for ids in library.doc_chunk_ids.values() for c in ids]

    def document_chunks(self, doc_id: str) -> list[StoredChunk]:
        library = self._current(poll=False)
        return [library.chunks[c] for c in library.doc_chunk_ids.get(doc_id, [])]

    def is_section_start(self, chunk_id: int) -> bool:
        return chunk_id in self._current(poll=False).section_starts

    def has_headings(self, doc_id: str) -> bool:
        return doc_id in self._current(poll=False).docs_with_headings

    def document_meta(self, doc_id: str) -> dict:
        return dict(self._current(poll=False).meta.get(doc_id, {}))

    def question_key_vectors(self) -> QuestionKeyVectors:
        return self._current(poll=False).question_keys

    def question_keys(self) -> dict[str, dict[str, tuple[str, ...]]]:
        return {doc_id: section_questions(meta) for doc_id, meta in self._current(poll=False).meta.items()
                if isinstance(meta.get("questions"), dict)}

    # ---------------------------------------------------------------- vectors and word statistics

    def _vectors(self, chunk_ids: Sequence[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """(chunk vector, sentence vectors) of each chunk, from the cache or in two queries for those not in it
        (the answer side asks for both); a chunk id always names the same vectors, so the cache needs no version."""
        cache = self._vector_cache
        found = {int(c): cache[int(c)] for c in chunk_ids if int(c) in cache}
        missing = [int(c) for c in dict.fromkeys(chunk_ids) if int(c) not in found]
        if not missing:
            return found
        chunk_rows = self._query("SELECT chunk_id, embedding FROM chunks WHERE chunk_id = ANY(%s)", (missing,))
        sentence_rows = self._query("SELECT chunk_id, embedding FROM sentences WHERE chunk_id = ANY(%s) "
                                    "ORDER BY chunk_id, position", (missing,))
        blocks: dict[int, list[np.ndarray]] = {}
        for cid, vector in sentence_rows:
            blocks.setdefault(int(cid), []).append(_array(vector))
        dimension = self._current(poll=False).dimension
        if len(cache) + len(missing) > _VECTOR_CACHE:
            self._vector_cache = cache = {}  # a new dict: a reader holding the old one is not disturbed
        for cid, vector in chunk_rows:
            rows = blocks.get(int(cid), [])
            sentences = np.vstack(rows).astype(np.float32) if rows else np.zeros((0, dimension), dtype=np.float32)
            found[int(cid)] = cache[int(cid)] = (_array(vector), sentences)
        return found

    def chunk_vectors(self, chunk_ids: Sequence[int]) -> np.ndarray:
        if not len(chunk_ids):
            return np.zeros((0, self.dimension), dtype=np.float32)
        found = self._vectors(chunk_ids)
        return np.vstack([found[int(c)][0] for c in chunk_ids])  # a KeyError names an id the library lacks

    def sentence_vectors(self, chunk: StoredChunk) -> np.ndarray:
        return self._vectors([chunk.chunk_id])[chunk.chunk_id][1]

    def idf(self, token: str) -> float:
        """BM25 idf as bm25s computes it; a token no chunk has weighs most, as in the embedded store."""
        library = self._current(poll=False)
        return library.idf.get(token, library.idf_max)

    def vocabulary(self) -> frozenset[str]:
        return self._current(poll=False).words

    def info(self) -> dict:
        """What `patient-qa index info` shows: the manifest's facts, plus where the store is and its size."""
        library = self._current()
        m = library.manifest
        size = self._query("SELECT sum(pg_total_relation_size(c)) FROM unnest(ARRAY['documents', 'chunks', "
                           "'sentences', 'vocabulary', 'library', 'question_keys']::regclass[]) AS c")[0][0]
        counts = m.get("counts")
        return {
            "index_dir": self._location,
            "store": "postgresql",
            "library_version": library.version,
            "format_version": m.get("format_version"),
            "model": m.get("model"),
            "dimension": library.dimension,
            "built_at": m.get("built_at"),
            "build_seconds": m.get("build_seconds"),
            "chunking": m.get("chunking"),
            **(counts if isinstance(counts, dict) else {}),
            "size_bytes": int(size or 0),
            "documents_list": [
                {"title": d["title"], "source_path": d["source_path"], "chunks": d["chunks"], "kind": d.get("kind")}
                for d in (m.get("documents") or {}).values()
            ],
            "skipped": m.get("skipped", []),
        }

    # ---------------------------------------------------------------- StoreWriter

    @contextlib.contextmanager
    def building(self) -> Iterator[None]:
        """Hold the store's build lock (a session advisory lock) for a whole build; another build waits, then fails."""
        with self._connect() as conn:
            deadline = time.monotonic() + self._lock_wait_seconds
            while not conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (_SESSION_LOCK,)).fetchone()[0]:
                if time.monotonic() >= deadline:
                    raise StoreError(f"another build is running on {self._location}; wait for it to finish, "
                                     "then try again")
                time.sleep(0.1)
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (_SESSION_LOCK,))

    def files(self) -> dict[str, str]:
        """The file -> document map of the current library ({} before the first build)."""
        rows = self._query("SELECT manifest -> 'files' FROM library")
        files = rows[0][0] if rows else None
        return dict(files) if isinstance(files, dict) else {}

    def query_encoder_file(self) -> Path | None:
        """The verified ONNX export the manifest names, from the user cache (by model hash), never from the server:
        None when this machine has no such export (questions are then embedded with sentence-transformers)."""
        from knowledge.onnx_embedder import OnnxRecord, cache_root, export_folder

        record = OnnxRecord.from_json(self.manifest.get("query_encoder"))
        if record is None:
            return None
        folder = export_folder(cache_root(), record.model_sha256)
        path = (folder if record.weights_file else cache_root() / record.model_sha256[:32]) / record.file
        return path if path.is_file() else None

    def stored(self, model: str, chunking: Mapping[str, object]) -> frozenset[str]:
        """Documents embedded with this model and cut with this chunking: a build keeps them as they are. One with
        question keys but no key vectors (stored before schema version 2) is left out, so the build embeds it again."""
        rows = self._query("SELECT doc_id, meta, EXISTS (SELECT 1 FROM question_keys q WHERE q.doc_id = d.doc_id) "
                           "FROM documents d WHERE model = %s AND chunking = %s", (model, _jsonb(dict(chunking))))
        return frozenset(doc_id for doc_id, meta, has_keys in rows if has_keys or not document_question_keys(meta))

    def replace(self, new: Sequence[BuiltDocument], keep: Collection[str], manifest: Mapping[str, object],
                query_encoder: Path | None = None) -> None:
        """One transaction: drop what is neither kept nor new, add the new, refresh the kept documents' records,
        recompute BM25, bump the version. The ONNX `query_encoder` stays in the user cache, where builds put it."""
        import psycopg

        dimension = _dimension(new, manifest)
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_BUILD_LOCK,))
                new_ids = {d.doc_id for d in new}
                kept = [d for d in keep if d not in new_ids]
                conn.execute("DELETE FROM documents WHERE NOT (doc_id = ANY(%s))", (kept,))
                if dimension is not None:
                    left = conn.execute("SELECT count(*) FROM chunks WHERE vector_dims(embedding) <> %s",
                                        (dimension,)).fetchone()[0]
                    if left:
                        raise StoreError(f"the kept documents in {self._location} have vectors of another length "
                                         f"than {dimension}; rebuild every document with one model")
                    set_dimension(conn, dimension, self._settings.pg_hnsw_m, self._settings.pg_hnsw_ef_construction)
                _insert_documents(conn, new, str(manifest.get("model", "")), manifest.get("chunking") or {})
                _refresh_kept(conn, kept, manifest)
                _write_lexical(conn)
                conn.execute("UPDATE library SET version = version + 1, manifest = %s, built_at = now()",
                              (_jsonb(_completed(conn, manifest)),))
        except psycopg.OperationalError as err:
            raise StoreUnavailableError(f"lost the PostgreSQL store at {self._location} during the build "
                                        f"({_scrub(str(err), self._url)}); the previous library is unchanged") from None
        self._checked = 0.0  # this process sees its own build at once


def _dimension(new: Sequence[BuiltDocument], manifest: Mapping[str, object]) -> int | None:
    """The vectors' length: the manifest's, else the first new vector's; None for a build that adds nothing."""
    value = manifest.get("dimension")
    if isinstance(value, int) and value > 0:
        return value
    for doc in new:
        if len(doc.chunk_vectors):
            return int(np.asarray(doc.chunk_vectors).shape[1])
    return None


def _completed(conn, manifest: Mapping[str, object]) -> dict:
    """The build's manifest plus what the store knows: schema version, dimension, counts, build time, version."""
    import datetime as dt

    documents, chunks, sentences = conn.execute(
        "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM chunks), (SELECT count(*) FROM sentences)"
    ).fetchone()
    version, dimension = conn.execute("SELECT version + 1, dimension FROM library").fetchone()
    return {**dict(manifest), "format_version": SCHEMA_VERSION, "dimension": dimension,
            "counts": {"documents": documents, "chunks": chunks, "sentences": sentences},
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "version": str(version)}


def _refresh_kept(conn, kept: Sequence[str], manifest: Mapping[str, object]) -> None:
    """Kept documents take the build's record (new front matter or path, same content) and BM25 texts made with
    the build's `question_keys` choice."""
    documents = manifest.get("documents")
    documents = documents if isinstance(documents, dict) else {}
    lexical = manifest.get("lexical")
    question_keys = bool(lexical.get("question_keys", True)) if isinstance(lexical, dict) else True
    fields = ("title", "url", "source_path", "reviewed", "summary", "kind")
    for doc_id in kept:
        record = documents.get(doc_id)
        if not isinstance(record, dict):
            continue
        values = {f: str(record[f] or "") for f in fields if f in record}
        sets = [f"{f} = %({f})s" for f in values]
        if "paths" in record:
            values["paths"] = _jsonb(list(record["paths"]))
            sets.append("paths = %(paths)s")
        if "meta" in record:
            values["meta"] = _jsonb(record["meta"] if isinstance(record["meta"], dict) else {})
            sets.append("meta = %(meta)s")
        if sets:
            conn.execute(f"UPDATE documents SET {', '.join(sets)} WHERE doc_id = %(doc_id)s", {**values, "doc_id": doc_id})
    rows = conn.execute("SELECT c.chunk_id, d.title, c.heading_path, c.text, d.meta, c.lexical_text FROM chunks c "
                        "JOIN documents d USING (doc_id) WHERE c.doc_id = ANY(%s)", (list(kept),)).fetchall()
    changed = [(cid, text) for cid, title, heading, body, meta, old in rows
               if (text := lexical_text(title, tuple(heading), body, meta, question_keys)) != old]
    if changed:
        with conn.cursor() as cur:
            cur.executemany("UPDATE chunks SET lexical_text = %s WHERE chunk_id = %s", [(t, c) for c, t in changed])


def _insert_documents(conn, new: Sequence[BuiltDocument], model: str, chunking: object) -> None:
    """New documents, their chunks (fresh ids) and sentence vectors, by binary COPY."""
    if not new:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO documents (doc_id, title, url, source_path, paths, reviewed, summary, kind, meta, model, "
            "chunking) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(d.doc_id, d.doc.title, d.doc.url or "", d.paths[0], _jsonb(list(d.paths)), str(d.doc.reviewed or ""),
              d.doc.summary or "", d.doc.kind or "", _jsonb(d.doc.meta if isinstance(d.doc.meta, dict) else {}),
              model, _jsonb(chunking)) for d in new],
        )
    total = sum(len(d.chunks) for d in new)
    ids = [r[0] for r in conn.execute("SELECT nextval('chunk_ids') FROM generate_series(1, %s)", (total,)).fetchall()]
    from pgvector.psycopg import register_vector

    register_vector(conn)  # the COPY below dumps numpy arrays as vectors
    position_ids = iter(ids)
    sentence_rows: list[tuple[int, int, np.ndarray]] = []
    with conn.cursor() as cur:
        with cur.copy("COPY chunks (chunk_id, doc_id, position, heading_path, text, sentences, page_start, page_end, "
                      "page_breaks, lexical_text, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "text", "int4", "jsonb", "text", "jsonb", "int4", "int4", "jsonb", "text",
                            "vector"])
            for d in new:
                vectors = np.asarray(d.chunk_vectors, dtype=np.float32)
                if len(vectors) != len(d.chunks) or len(d.sentence_vectors) != len(d.chunks):
                    raise StoreError(f"{d.paths[0]}: {len(d.chunks)} chunks but {len(vectors)} vectors; "
                                     "the build is not saved")
                for position, chunk in enumerate(d.chunks):
                    chunk_id = next(position_ids)
                    copy.write_row((chunk_id, d.doc_id, position, _jsonb(list(chunk.heading_path)), chunk.text,
                                    _jsonb([list(s) for s in chunk.sentences]), chunk.page_start, chunk.page_end,
                                    _jsonb([list(b) for b in chunk.page_breaks]), d.lexical_texts[position],
                                    vectors[position]))
                    block = np.asarray(d.sentence_vectors[position], dtype=np.float32)
                    sentence_rows.extend((chunk_id, i, block[i]) for i in range(len(block)))
        with cur.copy("COPY sentences (chunk_id, position, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "int4", "vector"])
            for row in sentence_rows:
                copy.write_row(row)
        with cur.copy("COPY question_keys (doc_id, position, heading, text, embedding) FROM STDIN "
                      "WITH (FORMAT BINARY)") as copy:
            copy.set_types(["text", "int4", "text", "text", "vector"])
            for d in new:
                if not d.question_keys:
                    continue
                vectors = np.asarray(d.question_key_vectors, dtype=np.float32)  # one per key (BuiltDocument checks)
                for position, (heading, text) in enumerate(d.question_keys):
                    copy.write_row((d.doc_id, position, heading, text, vectors[position]))


def _write_lexical(conn) -> None:
    """Recompute every chunk's BM25 weights with bm25s (N and the mean length changed) and store them as sparsevecs.

    Tokens keep their vocabulary dimension from build to build; tokens no chunk has any more stay with df 0.
    """
    from pgvector.psycopg import register_vector

    from knowledge.lexical import LexicalIndex

    register_vector(conn)
    rows = conn.execute("SELECT chunk_id, lexical_text FROM chunks ORDER BY chunk_id").fetchall()
    dims = dict(conn.execute("SELECT token, dim FROM vocabulary").fetchall())
    conn.execute("UPDATE vocabulary SET df = 0, idf = 0")
    if not rows:
        return
    from pgvector import SparseVector

    lexical = LexicalIndex.build([text for _, text in rows], [cid for cid, _ in rows])
    next_dim = max(dims.values(), default=-1) + 1
    weights: list[dict[int, float]] = [{} for _ in rows]
    vocabulary: list[tuple[str, int, int, float]] = []
    for token, doc_rows, values in lexical.term_weights():
        if token not in dims:
            dims[token] = next_dim
            next_dim += 1
        dim = dims[token]
        vocabulary.append((token, dim, len(doc_rows), lexical.idf(token)))
        for row, value in zip(doc_rows.tolist(), values.tolist()):
            weights[row][dim] = value
    if next_dim >= SPARSE_DIMENSIONS:
        raise StoreError(f"the library has {next_dim} distinct words, more than the store's {SPARSE_DIMENSIONS}")
    conn.execute("CREATE TEMP TABLE new_vocabulary (token text, dim integer, df integer, idf double precision) ON COMMIT DROP")
    conn.execute("CREATE TEMP TABLE new_lexical (chunk_id bigint, lexical sparsevec) ON COMMIT DROP")
    with conn.cursor() as cur:
        with cur.copy("COPY new_vocabulary FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["text", "int4", "int4", "float8"])
            for entry in vocabulary:
                copy.write_row(entry)
        with cur.copy("COPY new_lexical FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "sparsevec"])
            for (cid, _), row_weights in zip(rows, weights):
                copy.write_row((cid, SparseVector(row_weights, SPARSE_DIMENSIONS)))
    conn.execute("INSERT INTO vocabulary SELECT * FROM new_vocabulary ON CONFLICT (token) DO UPDATE "
                 "SET df = EXCLUDED.df, idf = EXCLUDED.idf")
    conn.execute("UPDATE chunks c SET lexical = n.lexical FROM new_lexical n WHERE c.chunk_id = n.chunk_id")


def _read_library(conn, location: str) -> _Library:
    """Everything a reader keeps in memory, read inside the caller's snapshot."""
    version, dimension, manifest = conn.execute("SELECT version, dimension, manifest FROM library").fetchone()
    if not version:
        raise EmptyStoreError(f"no library in the store at {location} yet; "
                              f"run 'patient-qa index build --store {location}' to create it")
    meta: dict[str, dict] = {}
    for doc_id, doc_meta, reviewed, summary in conn.execute(
            "SELECT doc_id, meta, reviewed, summary FROM documents").fetchall():
        doc_meta = dict(doc_meta or {})
        doc_meta.setdefault("reviewed", reviewed)
        doc_meta.setdefault("summary", summary)
        meta[doc_id] = doc_meta
    rows = conn.execute(
        "SELECT c.chunk_id, c.doc_id, d.source_path, d.title, d.url, c.heading_path, c.text, c.sentences,"
        " c.page_start, c.page_end, c.page_breaks, c.position"
        " FROM chunks c JOIN documents d USING (doc_id) ORDER BY c.doc_id, c.position").fetchall()
    chunks: dict[int, StoredChunk] = {}
    doc_chunk_ids: dict[str, list[int]] = {}
    section_starts: set[int] = set()
    previous: StoredChunk | None = None
    for cid, doc_id, source_path, title, url, heading, text, sentences, p0, p1, breaks, position in rows:
        chunk = StoredChunk(
            chunk_id=int(cid), doc_id=doc_id, article=Path(source_path).stem, title=title, url=url or "",
            source_path=source_path, heading_path=tuple(heading), text=text,
            sentences=tuple((int(s), int(e)) for s, e in sentences), page_start=p0, page_end=p1,
            page_breaks=tuple((int(o), int(n)) for o, n in breaks), sentence_row=0, position=int(position),
        )
        chunks[chunk.chunk_id] = chunk
        doc_chunk_ids.setdefault(doc_id, []).append(chunk.chunk_id)
        if previous is None or previous.doc_id != doc_id or previous.heading_path != chunk.heading_path:
            section_starts.add(chunk.chunk_id)
        previous = chunk
    idf: dict[str, float] = {}
    dims: dict[str, int] = {}
    for token, dim, value in conn.execute("SELECT token, dim, idf FROM vocabulary WHERE df > 0").fetchall():
        idf[token] = float(value)
        dims[token] = int(dim)
    documents = manifest.get("documents") if isinstance(manifest, dict) else None
    if isinstance(documents, dict):  # the build's library order, as the embedded store keeps it
        order = {doc_id: i for i, doc_id in enumerate(documents)}
        doc_chunk_ids = dict(sorted(doc_chunk_ids.items(), key=lambda item: order.get(item[0], len(order))))
    n = float(len(chunks))
    library_order = {doc_id: i for i, doc_id in enumerate(doc_chunk_ids)}
    key_rows = sorted(conn.execute("SELECT doc_id, position, heading, text, embedding FROM question_keys").fetchall(),
                      key=lambda r: (library_order.get(r[0], len(library_order)), r[0], r[1]))
    question_keys = QuestionKeyVectors(
        tuple(QuestionKey(doc_id, heading, text) for doc_id, _, heading, text, _ in key_rows),
        np.vstack([_array(r[4]) for r in key_rows]) if key_rows else np.zeros((0, int(dimension or 0)), dtype=np.float32))
    return _Library(
        version=int(version), manifest=dict(manifest or {}), dimension=int(dimension or 0), chunks=chunks,
        doc_chunk_ids=doc_chunk_ids, section_starts=frozenset(section_starts),
        docs_with_headings=frozenset(c.doc_id for c in chunks.values() if c.heading_path), meta=meta, idf=idf,
        dims=dims, idf_max=float(np.log(1.0 + (n + 0.5) / 0.5)), words=frozenset(idf), question_keys=question_keys,
    )


def open_store(settings) -> PgStore:
    """The reader of the library `settings.index.store` names (a postgresql:// URL)."""
    return open_pg_store(str(settings.index.store), settings.postgres)


def open_writer(settings) -> PgStore:
    """The writer of that library: the extension created and the schema migrated first."""
    return open_pg_store(str(settings.index.store), settings.postgres, for_build=True,
                         lock_wait_seconds=settings.limits.build_lock_wait_seconds)


def open_pg_store(url: str, settings: PostgresSettings | None = None, *, for_build: bool = False,
                  lock_wait_seconds: float = 10.0) -> PgStore:
    """A store at `url`: a reader checks the schema; `for_build` creates the extension and migrates first."""
    try:
        import pgvector  # noqa: F401
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as err:
        raise PatientQAError(f"the PostgreSQL store needs {err.name}, which is not installed; "
                             "run \"pip install 'patient-qa[postgres]'\"") from None
    return PgStore(url, settings, for_build=for_build, lock_wait_seconds=lock_wait_seconds)


__all__ = ["PgStore", "StoreError", "open_pg_store", "open_store", "open_writer"]

