"""The embedding model as an ONNX file run by onnxruntime + tokenizers: the same vectors as sentence-transformers
without importing torch (about 5 s of a one-question process) or holding it in the chat's memory.

`export_verified` (build time, needs torch) writes the file and checks it against `SentenceTransformer.encode`;
`OnnxEmbedder` (answer time, needs only onnxruntime, tokenizers and numpy) reads it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.errors import PatientQAError
from knowledge.query_cache import RecentQueries

ONNX_FILE = "query_encoder.onnx"
RECORD_FILE = "record.json"  # a cached export's `OnnxRecord`, beside its files
OWNER_FILE = "owner.pid"  # in an export's scratch folder: the build process it belongs to
# The weights sit beside the graph in their own file, which onnxruntime maps into memory instead of copying: a
# session holds about 50 MB less (the chat reads few rows of the 47 MB word-vector table), with the same vectors.
WEIGHTS_SUFFIX = ".data"
MAX_ABS_DIFF = 1e-5  # an export that differs more from sentence-transformers is not used
DEFAULT_BATCH_TOKENS = 2048  # the `batch_tokens` setting's default: padded tokens per build batch
ST_MODULE = "sentence_transformers.models."
POOLING_MODES = ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")
# Probe texts for the export check: questions as patients write them, a heading-prefixed passage, and one past
# the model's token limit (truncation), so a graph traced at one length that breaks at another is caught.
PROBE_TEXTS = (
    "What is CAR-T?",
    "how long do i have to stay near the hospital after the infusion",
    "Can I drive after CAR T cell therapy??",
    "My dad has a fever of 38.5 and is confused — is that CRS or ICANS?",
    "Qué es la terapia de células CAR-T",
    "x",
    "Cytokine release syndrome > What it feels like: Most people have a fever first, often in the first few days "
    "after the infusion, and some feel tired, achy or short of breath; the care team checks you often.",
    " ".join(["Lymphodepleting chemotherapy lowers your white blood cell counts before the infusion."] * 40),
)


class OnnxUnavailableError(PatientQAError):
    """The model cannot be run or exported as ONNX; callers fall back to sentence-transformers."""


def require(module: str) -> Any:
    """A module the ONNX path needs, imported on first use, or an `OnnxUnavailableError` naming what is missing."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise OnnxUnavailableError(f"{err.name} is not installed") from None


class ForeignExportError(OnnxUnavailableError):
    """The index's export was made from another model than the one its manifest now names."""


@dataclass(frozen=True)
class SentenceConfig:
    """What sentence-transformers does around the transformer, read from the model's own config files."""

    pooling: str  # one of POOLING_MODES
    normalize: bool
    max_seq_length: int
    do_lower_case: bool
    dimension: int


@dataclass(frozen=True)
class OnnxRecord:
    """The manifest entry of a verified export: which file, its hash, and how to pool its output."""

    file: str
    sha256: str
    model_sha256: str
    max_abs_diff: float
    config: SentenceConfig
    weights_sha256: str = ""  # the `file + WEIGHTS_SUFFIX` beside it; "" for an export with the weights inside

    def to_json(self) -> dict:
        return asdict(self)

    @property
    def weights_file(self) -> str | None:
        """The weights file's name, or None when the graph holds them (exports made before the split)."""
        return self.file + WEIGHTS_SUFFIX if self.weights_sha256 else None

    @classmethod
    def from_json(cls, data: object) -> OnnxRecord | None:
        """The record, or None for an index without one (built before ONNX, or whose export failed)."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(file=str(data["file"]), sha256=str(data["sha256"]), model_sha256=str(data["model_sha256"]),
                       max_abs_diff=float(data["max_abs_diff"]), config=SentenceConfig(**data["config"]),
                       weights_sha256=str(data.get("weights_sha256") or ""))
        except (KeyError, TypeError, ValueError):
            return None


def export_summary(data: object) -> dict | str:
    """What `index info` says embeds questions: the export's file, hash and verified difference, or the fallback."""
    record = OnnxRecord.from_json(data)
    if record is None:
        return "none: sentence-transformers"
    return {"file": record.file, "sha256": record.sha256, "max_abs_diff": record.max_abs_diff}


def read_sentence_config(model_dir: Path) -> SentenceConfig:
    """Pooling, normalisation and length limit from modules.json, 1_Pooling/config.json and sentence_bert_config.json."""
    model_dir = Path(model_dir)
    try:
        modules = json.loads((model_dir / "modules.json").read_text(encoding="utf-8"))
        kinds = [str(m["type"]) for m in modules]
        pooling_dir = next(m["path"] for m in modules if m["type"] == ST_MODULE + "Pooling")
        pooling = json.loads((model_dir / pooling_dir / "config.json").read_text(encoding="utf-8"))
        bert = json.loads((model_dir / "sentence_bert_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError, StopIteration) as err:
        raise OnnxUnavailableError(f"no sentence-transformers config in {model_dir} ({type(err).__name__})") from None
    supported = {ST_MODULE + "Transformer", ST_MODULE + "Pooling", ST_MODULE + "Normalize"}
    unknown = [k for k in kinds if k not in supported]
    if unknown or kinds[:2] != [ST_MODULE + "Transformer", ST_MODULE + "Pooling"]:
        raise OnnxUnavailableError(f"model modules {kinds} are not Transformer, Pooling[, Normalize]")
    modes = [m for m in POOLING_MODES if pooling.get(f"pooling_mode_{m}")]
    others = [k for k, v in pooling.items() if k.startswith("pooling_mode_") and v and k[13:] not in POOLING_MODES]
    if len(modes) != 1 or others:
        raise OnnxUnavailableError(f"pooling {modes + others} is not a single cls/mean/max pooling")
    return SentenceConfig(pooling=modes[0], normalize=kinds[-1] == ST_MODULE + "Normalize",
                          max_seq_length=int(bert.get("max_seq_length") or 512),
                          do_lower_case=bool(bert.get("do_lower_case", False)),
                          dimension=int(pooling["word_embedding_dimension"]))


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in blocks (the ONNX file is about 90 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def model_sha256(model_dir: Path) -> str:
    """One hash of the model's weights and configs, so an export is never reused for another model."""
    digest = hashlib.sha256()
    for path in sorted(Path(model_dir).rglob("*")):
        if path.is_file() and (path.suffix in {".json", ".safetensors", ".bin", ".txt"}) and path.name != "README.md":
            digest.update(str(path.relative_to(model_dir)).encode())
            digest.update(file_sha256(path).encode())
    return digest.hexdigest()


def pool(token_embeddings: np.ndarray, attention_mask: np.ndarray, config: SentenceConfig) -> np.ndarray:
    """Sentence vectors from token vectors, as sentence-transformers' Pooling (and Normalize) modules compute them."""
    mask = attention_mask[..., None].astype(np.float32)
    if config.pooling == "cls_token":
        vectors = token_embeddings[:, 0]
    elif config.pooling == "max_tokens":
        vectors = np.where(mask > 0, token_embeddings, np.float32(-1e9)).max(axis=1)
    else:
        summed = (token_embeddings * mask).sum(axis=1)
        counts = np.clip(mask.sum(axis=1), 1e-9, None)
        vectors = summed / (np.sqrt(counts) if config.pooling == "mean_sqrt_len_tokens" else counts)
    if config.normalize:
        vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
    return np.ascontiguousarray(vectors, dtype=np.float32)


class OnnxEmbedder:
    """Encodes texts like `Embedder` does, with onnxruntime and the model's own tokenizer.json."""

    backend = "onnx"

    def __init__(self, onnx_path: Path, model_dir: Path, config: SentenceConfig, model_name: str,
                 threads: int = 1, batch_tokens: int = DEFAULT_BATCH_TOKENS) -> None:
        self.model_name = model_name
        self.threads = threads
        self.batch_tokens = max(1, batch_tokens)
        self.config = config
        self._onnx_path = Path(onnx_path)
        self._model_dir = Path(model_dir)
        self._session: Any = None
        self._tokenizer: Any = None
        self._counter: Any = None
        self._load_lock = threading.Lock()
        self._recent = RecentQueries()

    def load(self) -> OnnxEmbedder:
        """Open the session and tokenizers now (0.2 s), so a broken file is found before the first question."""
        self._load()
        return self

    def _load_tokenizers(self) -> None:
        """Read the tokenizers once: counting tokens (chunking) needs them, not the export, which may still be made."""
        with self._load_lock:
            if self._tokenizer is not None:
                return
            tokenizers = require("tokenizers")
            try:
                tokenizer = tokenizers.Tokenizer.from_file(str(self._model_dir / "tokenizer.json"))
                counter = tokenizers.Tokenizer.from_file(str(self._model_dir / "tokenizer.json"))
            except Exception as err:  # noqa: BLE001 - tokenizers raises plain Exceptions
                raise OnnxUnavailableError(f"cannot read the model's tokenizer.json ({err})") from None
            # tokenizer.json may carry its own truncation and fixed padding; sentence-transformers overrides both.
            # Texts are tokenized once, unpadded; `_run` pads each length-sorted batch to its own longest text.
            tokenizer.enable_truncation(max_length=self.config.max_seq_length)
            tokenizer.no_padding()
            pad_id = tokenizer.token_to_id("[PAD]")
            self._pad_id = 0 if pad_id is None else pad_id
            counter.no_truncation()
            counter.no_padding()
            self._tokenizer, self._counter = tokenizer, counter

    def _load(self) -> None:
        """Open the session (and the tokenizers) once (0.2 s), on first use."""
        self._load_tokenizers()
        with self._load_lock:
            if self._session is not None:
                return
            ort = require("onnxruntime")
            options = ort.SessionOptions()
            options.intra_op_num_threads = max(1, self.threads)
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            # Spinning worker threads burn the other core between batches; on a shared 2-core machine they wait instead.
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            try:
                session = ort.InferenceSession(str(self._onnx_path), options, providers=["CPUExecutionProvider"])
            except Exception as err:  # noqa: BLE001 - onnxruntime errors vary by version
                raise OnnxUnavailableError(f"cannot open {self._onnx_path.name} ({type(err).__name__})") from None
            self._inputs = {i.name for i in session.get_inputs()}
            if "input_ids" not in self._inputs or "token_embeddings" not in {o.name for o in session.get_outputs()}:
                raise OnnxUnavailableError(f"{self._onnx_path.name} is not a token-vector export of this model")
            self._session = session

    @property
    def dimension(self) -> int:
        """Length of the vectors this model produces."""
        return self.config.dimension

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads before it silently truncates."""
        return self.config.max_seq_length

    def _prepare(self, texts: list[str]) -> list[str]:
        """The text as sentence-transformers feeds it to its tokenizer: stripped, lowercased if the model says so."""
        texts = [str(t).strip() for t in texts]
        return [t.lower() for t in texts] if self.config.do_lower_case else texts

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Model word pieces per text, special tokens included, untruncated (as `Embedder.count_tokens`)."""
        self._load_tokenizers()
        return [len(e.ids) for e in self._counter.encode_batch(list(texts), add_special_tokens=True)]

    def _run(self, encodings: list) -> np.ndarray:
        """One batch through the model: ids padded to the batch's longest text, pooled over the real tokens."""
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            ids[row, : len(e.ids)] = e.ids
            mask[row, : len(e.ids)] = e.attention_mask
            types[row, : len(e.ids)] = e.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        feeds = {k: v for k, v in feeds.items() if k in self._inputs}
        (tokens,) = self._session.run(["token_embeddings"], feeds)
        return pool(tokens, mask, self.config)

    def batches(self, lengths: list[int], batch_size: int) -> list[list[int]]:
        """Row numbers grouped shortest first, each group at most `batch_size` texts and `batch_tokens` padded tokens.

        Attention memory grows with rows x length squared: 64 chunks of 256 tokens held 1 GB at once, while
        8 of them (2048 tokens) hold 0.15 GB and run faster (the matrices stay in cache); short sentences still
        go 64 at a time.
        """
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        groups: list[list[int]] = []
        for i in order:
            if groups and len(groups[-1]) < batch_size and (len(groups[-1]) + 1) * lengths[i] <= self.batch_tokens:
                groups[-1].append(i)
            else:
                groups.append([i])
        return groups

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Unit-normalised float32 vectors, one row per text; batches are length-sorted so padding stays small."""
        if not len(texts):
            return np.zeros((0, self.dimension), dtype=np.float32)
        self._load()
        encodings = self._tokenizer.encode_batch(self._prepare(list(texts)), add_special_tokens=True)
        out = np.zeros((len(encodings), self.dimension), dtype=np.float32)
        for rows in self.batches([len(e.ids) for e in encodings], max(1, batch_size)):
            out[rows] = self._run([encodings[i] for i in rows])
        return out

    def encode_query(self, text: str) -> np.ndarray:
        """One question as a (dimension,) unit vector; the last few are kept, so triage and retrieval share one."""
        return self._recent.get(text, lambda t: self.encode([t])[0])


# ---------------------------------------------------------------- export (build time; imports torch)


def export_onnx(transformer: Any, dest: Path) -> None:
    """Write a transformers model (a SentenceTransformer's `auto_model`) to `dest` as ONNX (token vectors out,
    pooling stays in numpy)."""
    import torch

    transformer = transformer.eval()
    names = ["input_ids", "attention_mask", "token_type_ids"]

    class TokenVectors(torch.nn.Module):
        """Only the last hidden state, so the graph has one named output."""

        def __init__(self, model) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    ids = torch.ones((2, 16), dtype=torch.long)
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes about constant shapes; the probe check below is the proof
        torch.onnx.export(
            TokenVectors(transformer), (ids, torch.ones_like(ids), torch.zeros_like(ids)), str(dest),
            input_names=names, output_names=["token_embeddings"],
            dynamic_axes={n: {0: "batch", 1: "tokens"} for n in [*names, "token_embeddings"]},
            opset_version=17, dynamo=False,
        )
    import onnx
    from onnx.external_data_helper import convert_model_to_external_data

    graph = onnx.load(str(dest))
    convert_model_to_external_data(graph, all_tensors_to_one_file=True, location=dest.name + WEIGHTS_SUFFIX,
                                   size_threshold=1024)
    onnx.save_model(graph, str(dest))


def export_verified(model_dir: Path, dest_dir: Path, model_name: str, probe: tuple[str, ...] = PROBE_TEXTS,
                    load_st_model: Callable[[], Any] | None = None) -> OnnxRecord:
    """Export, then compare with `SentenceTransformer.encode` on the probe texts; an `OnnxUnavailableError` if they differ.

    `load_st_model` gives a model already loaded in this process; else the model is loaded here from `model_dir`.
    """
    model_dir, dest = Path(model_dir), Path(dest_dir) / ONNX_FILE
    config = read_sentence_config(model_dir)
    st_model = load_st_model() if load_st_model is not None else _load_st_model(model_dir)
    try:
        export_onnx(st_model[0].auto_model, dest)
    except Exception as err:  # noqa: BLE001 - the exporter fails in many ways on unusual architectures
        _remove_export(dest)
        raise OnnxUnavailableError(f"torch.onnx.export failed ({type(err).__name__}: {str(err)[:80]})") from None
    # One text at a time: in one batch the long probe pads the seven short ones to 256 word pieces (0.85 s, not 0.3).
    return check_export(dest, model_dir, config, model_name, probe, lambda: st_model.encode(
        list(probe), normalize_embeddings=config.normalize, convert_to_numpy=True, show_progress_bar=False,
        batch_size=1))


def _load_st_model(model_dir: Path) -> Any:
    """The model as sentence-transformers loads it (the reference the export is checked against), quietly, as
    `Embedder.model` loads it."""
    from knowledge.embedding import Embedder

    try:
        return Embedder(str(model_dir), threads=os.cpu_count() or 1).model  # the worker has the machine to itself
    except ImportError as err:
        raise OnnxUnavailableError(f"{err.name} is not installed") from None
    except PatientQAError:
        raise OnnxUnavailableError(f"sentence-transformers cannot load the model in {model_dir}") from None


def check_export(dest: Path, model_dir: Path, config: SentenceConfig, model_name: str, probe: tuple[str, ...],
                 reference: Callable[[], np.ndarray]) -> OnnxRecord:
    """The record of an export whose vectors match `reference()` (sentence-transformers) within MAX_ABS_DIFF; else
    the export's files are removed and an `OnnxUnavailableError` says by how much they differ."""
    try:
        # Single texts (the query path) and one mixed batch (the build path) must both match.
        embedder = OnnxEmbedder(dest, model_dir, config, model_name, threads=os.cpu_count() or 1)
        got_single = np.vstack([embedder.encode([text]) for text in probe])
        got_batch = embedder.encode(list(probe), batch_size=4)
        expected = np.asarray(reference(), dtype=np.float32)
        if expected.shape != got_single.shape:
            raise OnnxUnavailableError(f"the ONNX export gives vectors of shape {got_single.shape[1:]}, "
                                       f"sentence-transformers {expected.shape[1:]}")
        diff = float(max(np.abs(got_single - expected).max(), np.abs(got_batch - expected).max()))
        if not diff <= MAX_ABS_DIFF:
            raise OnnxUnavailableError(f"the ONNX export differs from sentence-transformers by {diff:.1e} "
                                       f"(> {MAX_ABS_DIFF:g})")
    except OnnxUnavailableError:
        _remove_export(dest)
        raise
    return OnnxRecord(file=ONNX_FILE, sha256=file_sha256(dest), model_sha256=model_sha256(model_dir),
                      max_abs_diff=diff, config=config,
                      weights_sha256=file_sha256(dest.with_name(dest.name + WEIGHTS_SUFFIX)))


def write_record(folder: Path, record: OnnxRecord) -> None:
    """The record beside its export, replaced only once complete (the worker writes it, so does an in-process export)."""
    partial = folder / (RECORD_FILE + ".part")
    partial.write_text(json.dumps(record.to_json(), indent=1), encoding="utf-8")
    partial.replace(folder / RECORD_FILE)


def _remove_export(dest: Path) -> None:
    """An export that failed leaves no file behind: neither its graph nor its weights."""
    dest.unlink(missing_ok=True)
    dest.with_name(dest.name + WEIGHTS_SUFFIX).unlink(missing_ok=True)


def place_file(source: Path, dest: Path) -> None:
    """A hard link when source and dest share a disk (no 90 MB copy), else a copy."""
    dest.unlink(missing_ok=True)
    try:
        os.link(source, dest)
    except OSError:
        import shutil

        shutil.copyfile(source, dest)


def place_export(source: Path, dest: Path) -> None:
    """The export's graph and, beside it, its weights file, as `place_file` places one file."""
    place_file(source, dest)
    weights = source.with_name(source.name + WEIGHTS_SUFFIX)
    if weights.exists():
        place_file(weights, dest.with_name(dest.name + WEIGHTS_SUFFIX))


def cache_root() -> Path:
    """Verified exports live in the user cache, keyed by the model's hash: one export per model per machine."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("patient-qa")) / "onnx"


def export_folder(root: Path, model_key: str) -> Path:
    """Where the cache keeps the split export of a model. Not the folder of exports with the weights inside: code
    from before the split would take a split graph from there and place it in an index without its weights."""
    return root / f"{model_key[:32]}-split"


class CachedExport:
    """A model's verified export in the user cache: found there, or being made and checked while the caller goes on.

    `result()` waits for it. Without `load_st_model` a missing export is made in another process from the moment
    this is created (`knowledge.export_worker`), so a build chunks and looks up its vectors meanwhile; `close()`
    stops that process if the result is never asked for.
    """

    def __init__(self, model_dir: Path, model_name: str, load_st_model: Callable[[], Any] | None = None,
                 root: Path | None = None) -> None:
        import tempfile

        self.model_dir = Path(model_dir)
        self.model_name = model_name
        self.config = read_sentence_config(self.model_dir)  # an unsupported model fails here, before anything loads
        self.model_sha256 = model_sha256(self.model_dir)
        self._root = root or cache_root()
        self.folder = export_folder(self._root, self.model_sha256)
        self._load_st_model = load_st_model
        self._found = _read_cached(self.folder, self.model_sha256)
        self._error: OnnxUnavailableError | None = None
        self._tmp: Path | None = None
        self._worker: Any = None
        _remove_abandoned(self._root)
        if self._found is not None:
            return
        try:
            self._root.mkdir(parents=True, exist_ok=True)
            self._tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=self._root))
            (self._tmp / OWNER_FILE).write_text(str(os.getpid()), encoding="utf-8")
        except OSError as err:
            self.close()
            raise OnnxUnavailableError(f"cannot write the ONNX cache at {self._root} ({err.strerror or err})") from None
        if load_st_model is None:
            from knowledge.export_worker import ExportWorker

            try:
                self._worker = ExportWorker(self.model_dir, self._tmp, model_name)
            except OSError as err:
                self.close()
                raise OnnxUnavailableError(f"cannot start the ONNX export ({err.strerror or err})") from None

    @property
    def onnx_path(self) -> Path:
        """Where the checked export is, or will be once `result()` returns."""
        return self.folder / ONNX_FILE

    @property
    def ready(self) -> bool:
        """Whether `result()` returns at once: the export was found in the cache (or already made here)."""
        return self._found is not None

    def result(self) -> tuple[Path, OnnxRecord]:
        """The export's path and record, once made and checked; an `OnnxUnavailableError` (each time) if it failed."""
        if self._found is not None:
            return self._found
        if self._error is not None:
            raise self._error
        import shutil

        tmp = self._tmp
        assert tmp is not None
        try:
            if self._worker is not None:
                self._worker.result()  # the worker wrote the record beside the export
            else:
                write_record(tmp, export_verified(self.model_dir, tmp, self.model_name,
                                                  load_st_model=self._load_st_model))
            if _read_cached(self.folder, self.model_sha256) is None:  # another build may have placed it meanwhile
                shutil.rmtree(self.folder, ignore_errors=True)  # a damaged earlier export
                try:
                    tmp.rename(self.folder)
                except OSError:
                    pass  # another build placed the same export between the two lines
            self._found = _read_cached(self.folder, self.model_sha256)
            if self._found is None:
                raise OnnxUnavailableError(f"the ONNX export in {self.folder} could not be read back")
            return self._found
        except OnnxUnavailableError as err:
            self._error = err
            raise
        finally:
            self.close()

    def close(self) -> None:
        """Stop an export still being made and remove its scratch folder; a made one stays in the cache."""
        import shutil

        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
            if self._found is None and self._error is None:
                self._error = OnnxUnavailableError("the ONNX export was stopped before it was checked")


ABANDONED_AFTER_S = 3600.0  # a scratch folder with no readable owner and this old belongs to no running build


def _remove_abandoned(root: Path) -> None:
    """Scratch folders of builds killed mid-export (about 90 MB each), so they do not pile up in the cache: the
    folder's owner process is gone, or it names none and is over an hour old."""
    import shutil
    import time

    for folder in root.glob(".export-*"):
        try:
            owner = int((folder / OWNER_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            owner = None
        try:
            if owner is not None and owner != os.getpid():
                abandoned = not _running(owner)
            else:
                abandoned = owner is None and time.time() - folder.stat().st_mtime > ABANDONED_AFTER_S
        except OSError:
            continue
        if abandoned:
            shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    """Whether a process with this id exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, owned by another user
    return True


def cached_export(model_dir: Path, model_name: str, load_st_model: Callable[[], Any] | None = None,
                  root: Path | None = None) -> tuple[Path, OnnxRecord]:
    """The verified export of this model from the cache, exporting (and checking) it first if there is none."""
    return CachedExport(model_dir, model_name, load_st_model, root).result()


def _read_cached(folder: Path, key: str) -> tuple[Path, OnnxRecord] | None:
    """A cached export whose file still has the hash it was verified with."""
    try:
        record = OnnxRecord.from_json(json.loads((folder / RECORD_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None
    if record is None or record.model_sha256 != key or record.weights_file is None:
        return None  # an export with the weights inside is made again once, split
    path = folder / record.file
    try:
        if file_sha256(path) != record.sha256 or file_sha256(folder / record.weights_file) != record.weights_sha256:
            return None
    except OSError:
        return None
    return path, record
