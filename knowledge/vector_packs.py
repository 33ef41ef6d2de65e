"""Vectors shipped with the bundled articles, one file per article in `knowledge/vectors/`: a new user's first build
looks each text up here instead of embedding it (about a minute of two cores' full work), and gets the very vectors
a build makes.

Keyed like the embedding cache, by the encoder (model hash and pooling) and the text's hash: another model finds
nothing here, and an edited sentence is simply embedded again. `patient-qa index pack` (`make vectors`) writes
them after an article changes; `articles check` says which are stale. Plain `.npz` arrays, loaded without pickle.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import numpy as np

from knowledge.chunking import embedding_prefix
from knowledge.embedding_cache import text_key
from knowledge.store import BuiltDocument

PACKS_DIR = Path(__file__).resolve().parent / "vectors"
PACK_SUFFIX = ".npz"
FORMAT_VERSION = 1


def encoder_id(model_sha256: str, config: object) -> str:
    """The name vectors are filed under: the model's hash and how its tokens are pooled (a dataclass config).

    Another model, pooling or length limit is another name, never a wrong vector; a new export of the same model
    (verified within 1e-5 of sentence-transformers) keeps the name.
    """
    pooled = hashlib.sha256(json.dumps(asdict(config), sort_keys=True).encode()).hexdigest()[:16]  # type: ignore[call-overload]
    return f"onnx:{model_sha256}:{pooled}"


@dataclass(frozen=True)
class VectorPack:
    """One article's vectors: every text a build embeds for it (chunks, sentences, question keys)."""

    encoder: str
    doc_id: str  # the article's content hash when the pack was written: another hash means the pack is stale
    chunking: str  # the chunking settings, as sorted JSON
    keys: np.ndarray  # (n, 32) uint8 text hashes
    vectors: np.ndarray  # (n, dimension) float32


def pack_path(folder: Path, article: Path, root: Path) -> Path:
    """The pack in `folder` for an article file under `root`: its relative path plus the suffix (`a.md.npz`, so
    `a.md` and `a.html` never share one)."""
    rel = article.resolve().relative_to(root.resolve())
    return folder / rel.parent / (rel.name + PACK_SUFFIX)


def read_pack(path: Path) -> VectorPack | None:
    """The pack in a file, or None when it is unreadable or of another format (a build then embeds the texts)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["format_version"]) != FORMAT_VERSION:
                return None
            keys = np.asarray(data["keys"], dtype=np.uint8)
            vectors = np.asarray(data["vectors"], dtype=np.float32)
            pack = VectorPack(str(data["encoder"]), str(data["doc_id"]), str(data["chunking"]), keys, vectors)
    except (OSError, KeyError, ValueError, TypeError):
        return None
    if keys.ndim != 2 or keys.shape[1] != 32 or vectors.ndim != 2 or len(vectors) != len(keys):
        return None
    return pack


def write_pack(path: Path, pack: VectorPack) -> None:
    """Write one pack (compressed arrays, no pickle), replacing the file only once it is complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as out:
        np.savez_compressed(out, format_version=np.int64(FORMAT_VERSION), encoder=np.str_(pack.encoder),
                            doc_id=np.str_(pack.doc_id), chunking=np.str_(pack.chunking),
                            keys=np.ascontiguousarray(pack.keys, dtype=np.uint8),
                            vectors=np.ascontiguousarray(pack.vectors, dtype=np.float32))
    partial.replace(path)


def load_shipped(folder: Path, encoder: str, dimension: int) -> dict[bytes, np.ndarray]:
    """Every shipped vector of this encoder, by text hash ({} when there are none for it)."""
    found: dict[bytes, np.ndarray] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.rglob(f"*{PACK_SUFFIX}")):
        pack = read_pack(path)
        if pack is None or pack.encoder != encoder or pack.vectors.shape[1] != dimension:
            continue
        for key, vector in zip(pack.keys, pack.vectors, strict=True):
            found[key.tobytes()] = vector
    return found


def document_texts(built: BuiltDocument) -> list[tuple[str, np.ndarray]]:
    """Each text a build embedded for one document, with its vector: chunks (with their heading prefix), sentences
    and question keys, exactly as `knowledge.build` passes them to the embedder."""
    pairs: list[tuple[str, np.ndarray]] = []
    for chunk, vector, sentence_vectors in zip(built.chunks, built.chunk_vectors, built.sentence_vectors, strict=True):
        pairs.append((embedding_prefix(built.doc.title, chunk.heading_path) + chunk.text, vector))
        pairs.extend(zip(chunk.sentence_texts(), sentence_vectors, strict=True))
    if built.question_key_vectors is not None:
        pairs.extend((text, vector) for (_, text), vector in zip(built.question_keys, built.question_key_vectors,
                                                                  strict=True))
    return pairs


def pack_of(built: BuiltDocument, encoder: str, chunking: Mapping[str, object]) -> VectorPack:
    """One document's pack, each distinct text once."""
    rows = dict((text_key(text), vector) for text, vector in document_texts(built))
    dimension = built.chunk_vectors.shape[1] if built.chunk_vectors.size else 0
    keys = np.frombuffer(b"".join(rows), dtype=np.uint8).reshape(len(rows), 32)
    vectors = np.stack(list(rows.values())).astype(np.float32) if rows else np.zeros((0, dimension), np.float32)
    return VectorPack(encoder, built.doc_id, chunking_text(chunking), keys, vectors)


def chunking_text(chunking: Mapping[str, object]) -> str:
    """The chunking settings as one comparable string."""
    return json.dumps(dict(chunking), sort_keys=True)


class PackWriter:
    """A `StoreWriter` that keeps no library: a build through it writes each document's pack instead."""

    def __init__(self, folder: Path, root: Path) -> None:
        self.folder = folder
        self.root = root
        self.written: list[Path] = []
        self.vectors = 0

    @property
    def location(self) -> str:
        return str(self.folder)

    @contextmanager
    def building(self) -> Iterator[None]:
        yield

    def files(self) -> Mapping[str, str]:
        return {}

    def stored(self, model: str, chunking: Mapping[str, object]) -> frozenset[str]:
        return frozenset()  # every document is "new", so the build hands over all of its vectors

    def replace(self, new: Sequence[BuiltDocument], keep: Collection[str], manifest: Mapping[str, object],
                query_encoder: Path | None = None) -> None:
        from knowledge.errors import PatientQAError
        from knowledge.onnx_embedder import OnnxRecord

        if not isinstance(manifest.get("query_encoder"), dict):
            raise PatientQAError("vector packs need the ONNX encoder (PATIENT_QA_EMBEDDING_BACKEND=auto or onnx); "
                                 "its export failed or was turned off, so nothing was written")
        record = OnnxRecord.from_json(manifest["query_encoder"])
        if record is None:
            raise PatientQAError("the build's ONNX record is unreadable; run 'patient-qa index build' first")
        encoder = encoder_id(record.model_sha256, record.config)
        chunking = cast(Mapping[str, object], manifest["chunking"])  # the build's `chunking_params`
        for built in new:
            path = pack_path(self.folder, Path(built.paths[0]), self.root)
            pack = pack_of(built, encoder, chunking)
            write_pack(path, pack)
            self.written.append(path)
            self.vectors += len(pack.keys)


@dataclass(frozen=True)
class PackReport:
    """What `index pack` did: packs written and packs of articles that are gone, removed."""

    folder: str
    written: int
    removed: tuple[str, ...]
    vectors: int
    megabytes: float


def write_packs(root: Path, folder: Path, settings) -> PackReport:
    """Build every article under `root` through a `PackWriter` (the embedding cache makes a repeat quick) and drop
    the packs of articles that no longer exist."""
    from knowledge.build import build_index

    writer = PackWriter(folder, root)
    build_index([root], settings, writer=writer, progress=False)
    written = {p.resolve() for p in writer.written}
    removed = []
    for path in sorted(folder.rglob(f"*{PACK_SUFFIX}")):
        if path.resolve() not in written:
            path.unlink()
            removed.append(str(path))
    size = sum(w.stat().st_size for w in writer.written) / 1e6
    return PackReport(str(folder), len(writer.written), tuple(removed), writer.vectors, round(size, 2))


def stale_packs(articles: Sequence[Path], root: Path, folder: Path, chunking: Mapping[str, object]) -> list[str]:
    """Articles whose pack is missing or was written for other content or chunking settings. Fast: it reads the
    articles, and loads no model."""
    from knowledge.loaders import LoadError, load_document

    stale = []
    wanted = chunking_text(chunking)
    for article in articles:
        pack = read_pack(pack_path(folder, article, root))
        try:
            doc_id = load_document(article).content_hash
        except LoadError:
            continue  # the article check reports an unreadable article itself
        if pack is None or pack.doc_id != doc_id or pack.chunking != wanted:
            stale.append(str(article))
    return stale
