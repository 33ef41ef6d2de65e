"""Build, update and load the knowledge index: manifest.json, store.sqlite, chunks.faiss, sentences.npy, bm25/.

Builds are incremental (unchanged content is never re-embedded) and atomic (written to a temporary
directory, then renamed into place), so a crash or Ctrl-C leaves the previous index usable.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl  # POSIX only, like the rest of the deployment; flock needs no extra dependency and dies with its process
import json
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from knowledge.chunking import chunk_document, embedding_prefix
from knowledge.documents import Chunk, Document, page_at
from knowledge.errors import PatientQAError
from knowledge.lexical import LexicalIndex
from knowledge.loaders import LoadError, load_document
from knowledge.settings import Settings
from knowledge.vectors import build_vector_index, load_vector_index, reconstruct, save_vector_index, search_vectors

FORMAT_VERSION = 2  # 2: chunks record their page breaks
MANIFEST = "manifest.json"
REBUILD_HINT = "run 'patient-qa index build' to rebuild it"


class IndexError_(PatientQAError):
    """Base for index problems a person can fix."""


class IndexNotFoundError(IndexError_):
    """No index at the given place."""


class IndexMismatchError(IndexError_):
    """The index was built with another model, dimension or format version."""


class BuildLockedError(IndexError_):
    """Another build of the same index holds its lock."""


class NothingIndexedError(IndexError_):
    """Every input was skipped: there is nothing to index."""

    def __init__(self, message: str, report: BuildReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class SkippedFile:
    """An input left out of the index, with the reason a maintainer can act on."""

    path: str
    reason: str


@dataclass(frozen=True)
class BuildReport:
    """What a build did; `to_json` is the `index build --json` object."""

    documents: int
    chunks: int
    sentences: int
    added: int
    updated: int
    removed: int
    unchanged: int
    embedded_documents: int
    skipped: tuple[SkippedFile, ...]
    seconds: float
    index_dir: str

    def to_json(self) -> dict:
        data = asdict(self)
        data["skipped"] = [asdict(s) for s in self.skipped]
        return data


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


# ---------------------------------------------------------------- collecting inputs


def collect_files(paths: Sequence[Path]) -> tuple[list[Path], list[SkippedFile]]:
    """Files under the given files and folders (recursive, hidden files ignored), sorted; missing paths skipped."""
    files: list[Path] = []
    skipped: list[SkippedFile] = []
    for path in paths:
        path = Path(path).expanduser()
        if path.is_dir():
            for item in sorted(path.rglob("*")):
                rel = item.relative_to(path)
                if item.is_file() and not any(part.startswith(".") for part in rel.parts):
                    files.append(item.resolve())
        elif path.is_file():
            files.append(path.resolve())
        else:
            skipped.append(SkippedFile(str(path), "no such file or folder"))
    unique = list(dict.fromkeys(files))
    return unique, skipped


# ---------------------------------------------------------------- the store


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


def _asked(doc: Document, heading_path: tuple[str, ...]) -> str:
    """The question keys of a chunk's '##' section, as extra BM25 words (doc2query): how patients ask it."""
    keys = doc.meta.get("questions") if isinstance(doc.meta, dict) else None
    if not heading_path or not isinstance(keys, dict):
        return ""
    asked = keys.get(heading_path[0])
    return (" " + " ".join(str(q) for q in asked)) if isinstance(asked, list) else ""


@dataclass
class _DocEntry:
    """A document in the index being built, with its chunks and vectors."""

    doc_id: str
    doc: Document
    paths: list[str]
    chunks: list[Chunk]
    chunk_ids: list[int] = field(default_factory=list)
    chunk_vectors: np.ndarray | None = None
    sentence_vectors: list[np.ndarray] = field(default_factory=list)  # one array per chunk
    reused: bool = False


def _json_default(value: object) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _write_store(directory: Path, entries: list[_DocEntry]) -> int:
    """Write store.sqlite and sentences.npy; returns the number of sentence rows."""
    db = sqlite3.connect(directory / "store.sqlite")
    db.executescript(_SCHEMA)
    row = 0
    blocks: list[np.ndarray] = []
    for entry in entries:
        doc = entry.doc
        db.execute(
            "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?)",
            (entry.doc_id, doc.title, doc.url, entry.paths[0], json.dumps(entry.paths), doc.reviewed,
             doc.summary, doc.kind, json.dumps(doc.meta, default=_json_default)),
        )
        for position, (chunk, chunk_id, sent_vecs) in enumerate(zip(entry.chunks, entry.chunk_ids, entry.sentence_vectors)):
            db.execute(
                "INSERT INTO chunks VALUES (?,?,?,?,?,?,?,?,?,?)",
                (chunk_id, entry.doc_id, position, json.dumps(chunk.heading_path), chunk.text,
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


# ---------------------------------------------------------------- building


def _embed_entries(entries: list[_DocEntry], embedder, batch_size: int, progress: bool) -> None:
    """Embed the chunks and sentences of new or changed documents, in batches, with a progress bar."""
    chunk_texts: list[str] = []
    sentence_texts: list[str] = []
    for entry in entries:
        for chunk in entry.chunks:
            chunk_texts.append(embedding_prefix(entry.doc.title, chunk.heading_path) + chunk.text)
            sentence_texts.extend(chunk.sentence_texts())
    unique_sentences = list(dict.fromkeys(sentence_texts))
    texts = chunk_texts + unique_sentences
    if not texts:
        return
    from tqdm import tqdm

    from knowledge.embedding import set_threads

    # Sorting by length keeps padding small: a batch of short sentences is not padded to a chunk's length.
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    matrix = np.zeros((len(texts), 0), dtype=np.float32)
    set_threads(os.cpu_count() or 1)
    try:
        with tqdm(total=len(texts), desc="embedding", unit="text", disable=not progress or None, leave=False) as bar:
            step = batch_size * 8
            for start in range(0, len(order), step):
                rows = order[start : start + step]
                vectors = embedder.encode([texts[i] for i in rows], batch_size=batch_size)
                if matrix.shape[1] == 0:
                    matrix = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
                matrix[rows] = vectors
                bar.update(len(rows))
    finally:
        set_threads(embedder.threads)
    chunk_matrix = matrix[: len(chunk_texts)]
    sentence_row = {text: len(chunk_texts) + i for i, text in enumerate(unique_sentences)}
    offset = 0
    for entry in entries:
        n = len(entry.chunks)
        entry.chunk_vectors = chunk_matrix[offset : offset + n]
        offset += n
        entry.sentence_vectors = [matrix[[sentence_row[t] for t in chunk.sentence_texts()]] for chunk in entry.chunks]


def _compatible_old_index(index_dir: Path, settings: Settings) -> KnowledgeIndex | None:
    """The existing index, if its vectors can be reused for this build (same model and chunking)."""
    if not (index_dir / MANIFEST).exists():
        return None
    try:
        old = KnowledgeIndex.load(index_dir, model=settings.index.model)
    except IndexError_:
        return None
    if old.manifest.get("chunking") != _chunking_params(settings):
        return None
    return old


def _chunking_params(settings: Settings) -> dict:
    return {
        "target_words": settings.index.chunk_target_words,
        "max_tokens": settings.index.chunk_max_tokens,
        "overlap_sentences": settings.index.chunk_overlap_sentences,
    }


def build_index(
    paths: Iterable[Path] | None = None,
    settings: Settings | None = None,
    embedder=None,
    progress: bool = True,
) -> BuildReport:
    """Index the files under `paths` into `settings.index.index_dir`, re-embedding only changed content.

    The index afterwards holds exactly the documents found under `paths`: files that disappeared leave it.
    """
    settings = settings or Settings.from_env()
    index_dir = Path(settings.index.index_dir).expanduser()
    if index_dir.exists() and not index_dir.is_dir():
        _refuse_foreign_directory(index_dir)  # before the lock file is placed beside it
    _make_parent(index_dir)  # before embedding: an unwritable place must not cost an hour of work first
    with build_lock(index_dir, settings.limits.build_lock_wait_seconds):
        return _build_locked(paths, settings, index_dir, embedder, progress)


def _build_locked(paths: Iterable[Path] | None, settings: Settings, index_dir: Path, embedder,
                  progress: bool) -> BuildReport:
    """`build_index` once this process holds the index's build lock."""
    started = time.perf_counter()
    _recover_interrupted_swap(index_dir)  # else the previous index is neither reused nor ever cleaned up
    _remove_leftovers(index_dir)
    _refuse_foreign_directory(index_dir)
    files, skipped = collect_files([Path(p) for p in (paths or [settings.index.articles])])

    from knowledge.embedding import build_embedders

    embedder, query_encoder = build_embedders(settings.index.model, settings.index.embedding_backend, settings.retrieval.threads, embedder)

    old = _compatible_old_index(index_dir, settings)
    old_files: dict[str, str] = (old.manifest.get("files", {}) if old else
                                 _read_manifest_files(index_dir))

    loaded: dict[str, _DocEntry] = {}
    file_ids: dict[str, str] = {}
    iterator = files
    if progress and len(files) > 20:
        from tqdm import tqdm

        iterator = tqdm(files, desc="reading", unit="file", leave=False)
    for path in iterator:
        try:
            doc = load_document(path, max_bytes=int(settings.limits.max_file_mb * 1_000_000),
                                html_min_words=settings.limits.html_min_words, pdf=settings.pdf)
        except LoadError as err:
            skipped.append(SkippedFile(str(path), str(err)))
            continue
        except Exception as err:  # noqa: BLE001 - one broken file must not stop the others
            skipped.append(SkippedFile(str(path), f"could not be read ({type(err).__name__}: {str(err)[:80]})"))
            continue
        doc_id = doc.content_hash
        file_ids[str(path)] = doc_id
        if doc_id in loaded:
            loaded[doc_id].paths.append(str(path))
            continue
        loaded[doc_id] = _DocEntry(doc_id, doc, [str(path)], [])

    if not loaded:
        report = _report(loaded, file_ids, old_files, skipped, 0, 0, started, index_dir, 0)
        raise NothingIndexedError(
            "nothing could be indexed: " + ("; ".join(f"{s.path}: {s.reason}" for s in skipped[:5]) or "no files found"),
            report,
        )

    next_id = int(old.manifest.get("next_chunk_id", 1)) if old else 1
    new_entries: list[_DocEntry] = []
    for entry in loaded.values():
        if old is not None and entry.doc_id in old.doc_chunk_ids:
            if len(old.doc_chunk_ids[entry.doc_id]) > settings.limits.max_chunks_per_document:
                skipped.append(_too_many_chunks(entry, len(old.doc_chunk_ids[entry.doc_id]), settings))
                continue
            chunk_ids = old.doc_chunk_ids[entry.doc_id]
            stored = [old.chunk(cid) for cid in chunk_ids]
            entry.chunks = [Chunk(entry.doc_id, c.heading_path, c.text, c.sentences, c.page_start, c.page_end,
                                  c.page_breaks) for c in stored]
            entry.chunk_ids = list(chunk_ids)
            entry.chunk_vectors = reconstruct(old.vectors, chunk_ids)
            entry.sentence_vectors = [np.asarray(old.sentence_vectors(c)) for c in stored]
            entry.reused = True
            continue
        entry.chunks = chunk_document(
            entry.doc, entry.doc_id, embedder.count_tokens,
            settings.index.chunk_target_words, min(settings.index.chunk_max_tokens, embedder.max_tokens),
            settings.index.chunk_overlap_sentences,
        )
        if not entry.chunks:
            skipped.append(SkippedFile(entry.paths[0], "no sentences found in the text"))
            continue
        if len(entry.chunks) > settings.limits.max_chunks_per_document:
            # Skipped before embedding, the step that would take hours for such a document.
            skipped.append(_too_many_chunks(entry, len(entry.chunks), settings))
            entry.chunks = []
            continue
        entry.chunk_ids = list(range(next_id, next_id + len(entry.chunks)))
        next_id += len(entry.chunks)
        new_entries.append(entry)
    entries = [e for e in loaded.values() if e.chunks]
    if not entries:
        report = _report(loaded, file_ids, old_files, skipped, 0, 0, started, index_dir, 0)
        raise NothingIndexedError("nothing could be indexed: no sentences found in any file", report)

    _embed_entries(new_entries, embedder, settings.index.batch_size, progress)

    tmp = _make_parent(index_dir, building=True)
    try:
        sentences = _write_store(tmp, entries)
        all_ids = np.asarray([cid for e in entries for cid in e.chunk_ids], dtype=np.int64)
        all_vectors = np.vstack([e.chunk_vectors for e in entries if e.chunk_vectors is not None])
        if len(all_vectors) != len(all_ids):  # every entry was embedded or reused above; a gap is a bug
            raise RuntimeError(f"{len(all_ids)} chunks but {len(all_vectors)} vectors; the build is not saved")
        save_vector_index(build_vector_index(all_vectors, all_ids, settings.index), tmp / "chunks.faiss")
        if query_encoder is not None:
            from knowledge.onnx_embedder import place_file

            place_file(query_encoder[0], tmp / query_encoder[1].file)
        keys = settings.index.question_keys_in_bm25
        lexical_texts = [
            embedding_prefix(e.doc.title, c.heading_path) + c.text + (_asked(e.doc, c.heading_path) if keys else "")
            for e in entries for c in e.chunks
        ]
        LexicalIndex.build(lexical_texts, all_ids.tolist()).save(tmp / "bm25")
        chunk_count = len(all_ids)
        report = _report(loaded, file_ids, old_files, skipped, chunk_count, sentences, started, index_dir,
                         len(new_entries))
        manifest = {
            "format_version": FORMAT_VERSION,
            "model": settings.index.model,
            "dimension": int(all_vectors.shape[1]),
            "normalized": True,
            "chunking": _chunking_params(settings),
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "build_seconds": report.seconds,
            "counts": {"documents": len(entries), "chunks": chunk_count, "sentences": sentences},
            "next_chunk_id": next_id,
            "files": {p: d for p, d in file_ids.items() if any(e.doc_id == d for e in entries)},
            "documents": {
                e.doc_id: {"title": e.doc.title, "source_path": e.paths[0], "paths": e.paths,
                           "chunks": len(e.chunks), "kind": e.doc.kind}
                for e in entries
            },
            "skipped": [asdict(s) for s in skipped],
            # The verified ONNX export of the model that questions are embedded with (None: sentence-transformers).
            "query_encoder": {**query_encoder[1].to_json(), "model": settings.index.model} if query_encoder else None,
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
        _swap_into_place(tmp, index_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return report


def _too_many_chunks(entry: _DocEntry, count: int, settings: Settings) -> SkippedFile:
    """The skip of a document longer than the passage limit, with the setting that changes it."""
    return SkippedFile(entry.paths[0], f"too long: {count} passages, the limit is {settings.limits.max_chunks_per_document} "
                                       "(PATIENT_QA_MAX_CHUNKS_PER_DOCUMENT); split the file or raise the limit")


def _read_manifest_files(index_dir: Path) -> dict[str, str]:
    """The file -> document map of an index we cannot reuse vectors from (to report changes honestly)."""
    try:
        manifest = json.loads((index_dir / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = manifest.get("files") if isinstance(manifest, dict) else None
    return files if isinstance(files, dict) else {}


def _report(loaded, file_ids, old_files, skipped, chunks, sentences, started, index_dir, embedded) -> BuildReport:
    """Per-file change counts against the previous index."""
    added = sum(1 for p in file_ids if p not in old_files)
    updated = sum(1 for p, d in file_ids.items() if p in old_files and old_files[p] != d)
    unchanged = sum(1 for p, d in file_ids.items() if old_files.get(p) == d)
    removed = sum(1 for p in old_files if p not in file_ids)
    return BuildReport(
        documents=len([e for e in loaded.values() if e.chunks]) if chunks else 0,
        chunks=chunks,
        sentences=sentences,
        added=added,
        updated=updated,
        removed=removed,
        unchanged=unchanged,
        embedded_documents=embedded,
        skipped=tuple(skipped),
        seconds=round(time.perf_counter() - started, 3),
        index_dir=str(index_dir),
    )


def _refuse_foreign_directory(index_dir: Path) -> None:
    """Never replace a folder that is not an index: it may hold someone's files."""
    if index_dir.exists() and not index_dir.is_dir():
        raise IndexError_(f"{index_dir} is a file, not a folder; give --index a folder (new or an existing index)")
    if index_dir.exists() and any(index_dir.iterdir()) and not (index_dir / MANIFEST).exists():
        raise IndexError_(f"{index_dir} exists and is not a patient-qa index; choose another --index folder")


def _make_parent(index_dir: Path, building: bool = False) -> Path:
    """Create the index's parent folder (and, when `building`, the temporary build folder inside it)."""
    try:
        index_dir.parent.mkdir(parents=True, exist_ok=True)
        if building:
            return Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.building-", dir=index_dir.parent))
    except OSError as err:
        raise IndexError_(f"cannot write an index at {index_dir} ({err.strerror or err}); "
                          "choose a folder you can write to with --index") from None
    return index_dir.parent


def _swap_into_place(tmp: Path, index_dir: Path) -> None:
    """Rename the finished build over the old index; the old one is kept until the new one is in place."""
    if index_dir.exists():
        retired = index_dir.with_name(f".{index_dir.name}.old-{os.getpid()}")
        shutil.rmtree(retired, ignore_errors=True)
        index_dir.rename(retired)
        tmp.rename(index_dir)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        tmp.rename(index_dir)


def _recover_interrupted_swap(index_dir: Path) -> None:
    """If a build died between its two renames, put the previous index back; call only under the build lock."""
    if index_dir.exists():
        return
    for retired in sorted(index_dir.parent.glob(f".{index_dir.name}.old-*")):
        if (retired / MANIFEST).exists():
            retired.rename(index_dir)
            return


def _remove_leftovers(index_dir: Path) -> None:
    """Remove the temporary and retired folders of builds that died; under the lock, no live build owns any."""
    for pattern in (f".{index_dir.name}.building-*", f".{index_dir.name}.old-*"):
        for leftover in index_dir.parent.glob(pattern):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)


def lock_path(index_dir: Path) -> Path:
    """The lock file beside the index: the index folder itself is renamed away during a swap."""
    return index_dir.parent / f".{index_dir.name}.lock"


def _lock_holder(handle) -> str:
    """The pid the running build wrote into the lock file, or '?' if it has not yet."""
    try:
        os.lseek(handle, 0, os.SEEK_SET)
        return os.read(handle, 32).decode("ascii", "replace").strip() or "?"
    except OSError:
        return "?"


@contextlib.contextmanager
def build_lock(index_dir: Path, wait_seconds: float) -> Iterator[None]:
    """Hold the index's build lock, waiting up to `wait_seconds` for another build; else a `BuildLockedError`.

    flock (not a pid file) because the kernel releases it when the holder dies, even by kill -9,
    so a crashed build never leaves a stale lock behind.
    """
    path = lock_path(index_dir)
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise IndexError_(f"cannot write an index at {index_dir} ({err.strerror or err}); "
                          "choose a folder you can write to with --index") from None
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise BuildLockedError(
                        f"another build is running (pid {_lock_holder(handle)}) on {index_dir}; "
                        "wait for it to finish, then try again"
                    ) from None
                time.sleep(0.05)
        os.ftruncate(handle, 0)
        os.pwrite(handle, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _build_running(index_dir: Path) -> str | None:
    """The pid of a build holding the index's lock, or None when no build is running."""
    try:
        handle = os.open(lock_path(index_dir), os.O_RDONLY)
    except OSError:
        return None  # no lock file: no build since locks exist
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return _lock_holder(handle)
    finally:
        os.close(handle)


def _recover_for_reader(index_dir: Path, wait_seconds: float = 2.0) -> None:
    """A reader finding only a retired index restores it if its build died, and never while a build is swapping."""
    if index_dir.exists() or not any(index_dir.parent.glob(f".{index_dir.name}.old-*")):
        return
    deadline = time.monotonic() + wait_seconds
    while (pid := _build_running(index_dir)) is not None:
        if index_dir.exists():
            return  # the swap finished
        if time.monotonic() >= deadline:
            raise IndexNotFoundError(f"a build (pid {pid}) is replacing the index at {index_dir} right now; "
                                     "try again in a moment")
        time.sleep(0.05)
    try:
        with build_lock(index_dir, wait_seconds=0):
            _recover_interrupted_swap(index_dir)
    except IndexError_:
        pass  # a build started meanwhile, or the folder is read-only: load what is there


# ---------------------------------------------------------------- loading and searching


class KnowledgeIndex:
    """A loaded index: dense and BM25 search over chunks, chunk text and sentence vectors for quoting."""

    def __init__(self, directory: Path, manifest: dict, vectors, lexical: LexicalIndex,
                 sentence_matrix: np.ndarray, chunks: dict[int, StoredChunk]) -> None:
        self.directory = directory
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
        except (OSError, RuntimeError, ValueError, sqlite3.DatabaseError) as err:
            raise IndexMismatchError(f"index at {directory} is incomplete or damaged ({err}); {REBUILD_HINT}") from None
        _check_consistent(directory, manifest, vectors, sentence_matrix, chunks)
        return cls(directory, manifest, vectors, lexical, sentence_matrix, chunks)

    def chunk(self, chunk_id: int) -> StoredChunk:
        return self.chunks[chunk_id]

    def sentence_vectors(self, chunk: StoredChunk) -> np.ndarray:
        """Vectors of the chunk's sentences, precomputed at build time."""
        return self.sentence_matrix[chunk.sentence_row : chunk.sentence_row + len(chunk.sentences)]

    def dense_search(self, query_vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Nearest chunks; a query of another length means the model changed since the build (FAISS would assert)."""
        if query_vector.shape[-1] != self.vectors.d:
            raise IndexMismatchError(
                f"index at {self.directory} holds {self.vectors.d}-dimensional vectors, the model "
                f"'{self.model}' makes {query_vector.shape[-1]}; {REBUILD_HINT}"
            )
        return search_vectors(self.vectors, query_vector, k)

    def lexical_search(self, query: str, k: int) -> list[tuple[int, float]]:
        return self.lexical.search(query, k)

    def question_keys(self) -> dict[str, dict[str, tuple[str, ...]]]:
        """Each document's question keys by '##' heading: the ways patients ask what a section says."""
        if self._question_keys is None:
            db = sqlite3.connect(f"file:{self.directory / 'store.sqlite'}?mode=ro", uri=True)
            try:
                rows = db.execute("SELECT doc_id, meta FROM documents").fetchall()
            finally:
                db.close()
            keys: dict[str, dict[str, tuple[str, ...]]] = {}
            for doc_id, meta in rows:
                asked = (json.loads(meta or "{}") or {}).get("questions")
                if isinstance(asked, dict):
                    keys[doc_id] = {str(h): tuple(str(q) for q in qs) for h, qs in asked.items() if isinstance(qs, list)}
            self._question_keys = keys
        return self._question_keys

    def document_chunks(self, doc_id: str) -> list[StoredChunk]:
        return [self.chunks[c] for c in self.doc_chunk_ids.get(doc_id, [])]

    def info(self) -> dict:
        """What `patient-qa index info` shows."""
        m = self.manifest
        size = sum(f.stat().st_size for f in self.directory.rglob("*") if f.is_file())
        return {
            "index_dir": str(self.directory),
            "format_version": m.get("format_version"),
            "model": m.get("model"),
            "dimension": m.get("dimension"),
            "built_at": m.get("built_at"),
            "build_seconds": m.get("build_seconds"),
            "chunking": m.get("chunking"),
            **m.get("counts", {}),
            "size_bytes": size,
            "documents_list": [
                {"title": d["title"], "source_path": d["source_path"], "chunks": d["chunks"], "kind": d.get("kind")}
                for d in m.get("documents", {}).values()
            ],
            "skipped": m.get("skipped", []),
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
