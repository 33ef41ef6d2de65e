"""The build pipeline: load files, cut them into chunks, embed only what the store does not hold yet, and hand the
result to a `StoreWriter`, which swaps it in atomically. The writer's lock keeps two builds of one store apart.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from knowledge.chunking import chunk_document, embedding_prefix, lexical_text
from knowledge.documents import Chunk, Document
from knowledge.index_errors import IndexError_
from knowledge.loaders import LoadError, load_document
from knowledge.question_key_vectors import document_question_keys, embed_question_keys
from knowledge.settings import Settings
from knowledge.store import BuiltDocument

if TYPE_CHECKING:
    from knowledge.store import StoreWriter


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



@dataclass
class _DocEntry:
    """A document found by this build, with its chunks and (once embedded) its vectors."""

    doc_id: str
    doc: Document
    paths: list[str]
    chunks: list[Chunk] = field(default_factory=list)
    chunk_vectors: np.ndarray | None = None
    sentence_vectors: list[np.ndarray] = field(default_factory=list)  # one array per chunk


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
            step = getattr(embedder, "texts_per_call", batch_size * 8)  # a Ray pool takes every text in one call
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



def chunking_params(settings: Settings) -> dict:
    """The settings that decide how documents are cut: stored vectors are reused only under the same ones."""
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
    writer: StoreWriter | None = None,
) -> BuildReport:
    """Index the files under `paths` into the store (`settings.index.store`), re-embedding only changed content.

    The store afterwards holds exactly the documents found under `paths`: files that disappeared leave it.
    """
    settings = settings or Settings.from_env()
    if writer is None:
        from knowledge.store import open_writer

        writer = open_writer(settings)
    with writer.building():
        return _build_locked(paths, settings, writer, embedder, progress)


def _load(files: Sequence[Path], settings: Settings, skipped: list[SkippedFile], progress: bool,
          file_ids: dict[str, str]) -> dict[str, _DocEntry]:
    """Every readable file as a document, one per distinct content; unreadable files are skipped with the reason."""
    loaded: dict[str, _DocEntry] = {}
    iterator: Iterable[Path] = files
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
        loaded[doc_id] = _DocEntry(doc_id, doc, [str(path)])
    return loaded


def _build_locked(paths: Iterable[Path] | None, settings: Settings, writer: StoreWriter, embedder,
                  progress: bool) -> BuildReport:
    """`build_index` once this process holds the store's build lock."""
    started = time.perf_counter()
    files, skipped = collect_files([Path(p) for p in (paths or [settings.index.articles])])

    from knowledge.embedding import build_embedders

    # On a new machine the one-time ONNX export goes on in a worker process while this one chunks and looks up
    # the shipped vectors; the manifest waits for it below, and a failed build stops it.
    embedder, export = build_embedders(settings.index.model, settings.index.embedding_backend,
                                       settings.retrieval.threads, embedder, settings.index.batch_tokens,
                                       settings.index.embedding_cache_mb, settings.index.shipped_vectors, wait=False)
    try:
        return _build_with(files, skipped, settings, writer, embedder, export, progress, started)
    finally:
        export.close()


def _build_with(files: list[Path], skipped: list[SkippedFile], settings: Settings, writer: StoreWriter, embedder,
                export, progress: bool, started: float) -> BuildReport:
    """`_build_locked` once the embedder is chosen: chunk, embed what is new, store."""
    chunking = chunking_params(settings)
    stored = writer.stored(settings.index.model, chunking)
    old_files = writer.files()

    file_ids: dict[str, str] = {}
    loaded = _load(files, settings, skipped, progress, file_ids)
    if not loaded:
        report = _report(loaded, file_ids, old_files, skipped, 0, 0, started, writer.location, 0)
        raise NothingIndexedError(
            "nothing could be indexed: " + ("; ".join(f"{s.path}: {s.reason}" for s in skipped[:5]) or "no files found"),
            report,
        )

    for entry in loaded.values():
        # Stored documents are cut again too (milliseconds): the counts and BM25 texts need their chunks, and the
        # same chunking settings cut the same content the same way.
        entry.chunks = chunk_document(
            entry.doc, entry.doc_id, embedder.count_tokens,
            settings.index.chunk_target_words, min(settings.index.chunk_max_tokens, embedder.max_tokens),
            settings.index.chunk_overlap_sentences,
        )
        if not entry.chunks:
            skipped.append(SkippedFile(entry.paths[0], "no sentences found in the text"))
        elif len(entry.chunks) > settings.limits.max_chunks_per_document:
            # Skipped before embedding, the step that would take hours for such a document.
            skipped.append(_too_many_chunks(entry, len(entry.chunks), settings))
            entry.chunks = []
    entries = [e for e in loaded.values() if e.chunks]
    if not entries:
        report = _report(loaded, file_ids, old_files, skipped, 0, 0, started, writer.location, 0)
        raise NothingIndexedError("nothing could be indexed: no sentences found in any file", report)

    new_entries = [e for e in entries if e.doc_id not in stored]
    _embed_entries(new_entries, embedder, settings.index.batch_size, progress)
    # The question keys of new documents, embedded apart from their text (kept documents' keys stay in the store).
    asked = [document_question_keys(e.doc.meta) for e in new_entries]
    key_vectors = embed_question_keys(asked, embedder, settings.index.batch_size)
    question_keys = settings.index.question_keys_in_bm25
    built = [
        BuiltDocument(
            doc_id=e.doc_id, doc=e.doc, paths=tuple(e.paths), chunks=tuple(e.chunks),
            chunk_vectors=e.chunk_vectors if e.chunk_vectors is not None else np.zeros((0, 0), dtype=np.float32),
            sentence_vectors=tuple(e.sentence_vectors),
            lexical_texts=tuple(lexical_text(e.doc.title, c.heading_path, c.text, e.doc.meta, question_keys)
                                for c in e.chunks),
            question_keys=keys, question_key_vectors=vectors,
        )
        for e, keys, vectors in zip(new_entries, asked, key_vectors, strict=True)
    ]
    chunk_count = sum(len(e.chunks) for e in entries)
    sentences = sum(len(c.sentences) for e in entries for c in e.chunks)
    query_encoder = export.get()
    report = _report(loaded, file_ids, old_files, skipped, chunk_count, sentences, started, writer.location,
                     len(new_entries))
    manifest = {
        "model": settings.index.model,
        "normalized": True,
        "chunking": chunking,
        "lexical": {"question_keys": question_keys},
        "build_seconds": report.seconds,
        "files": {p: d for p, d in file_ids.items() if any(e.doc_id == d for e in entries)},
        "documents": {
            e.doc_id: {"title": e.doc.title, "source_path": e.paths[0], "paths": e.paths, "chunks": len(e.chunks),
                       "kind": e.doc.kind, "url": e.doc.url, "reviewed": e.doc.reviewed, "summary": e.doc.summary,
                       "meta": e.doc.meta}
            for e in entries
        },
        "skipped": [asdict(s) for s in skipped],
        # The verified ONNX export of the model that questions are embedded with (None: sentence-transformers).
        "query_encoder": {**query_encoder[1].to_json(), "model": settings.index.model} if query_encoder else None,
    }
    writer.replace(built, [e.doc_id for e in entries if e.doc_id in stored], manifest,
                   query_encoder=query_encoder[0] if query_encoder else None)
    return report


def _too_many_chunks(entry: _DocEntry, count: int, settings: Settings) -> SkippedFile:
    """The skip of a document longer than the passage limit, with the setting that changes it."""
    return SkippedFile(entry.paths[0], f"too long: {count} passages, the limit is {settings.limits.max_chunks_per_document} "
                                       "(PATIENT_QA_MAX_CHUNKS_PER_DOCUMENT); split the file or raise the limit")


def _report(loaded, file_ids, old_files, skipped, chunks, sentences, started, location, embedded) -> BuildReport:
    """Per-file change counts against the previous library."""
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
        index_dir=str(location),
    )
