"""The learned triage model: linear heads over a message's MiniLM embedding, char n-grams and cue features.

The weights are a small `.npz` (no pickle) plus a JSON of thresholds and provenance, both shipped in the
package and rebuilt by `patient-qa triage train` (eval.triage_train) from the blind-written corpus.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from knowledge.errors import PatientQAError
from qa.triage_features import HASH_SIZE, CueSet, cue_set, default_cues, hashed_ngrams, split_sentences

MODEL_DIR = Path(__file__).resolve().parent
DEFAULT_WEIGHTS = MODEL_DIR / "triage_model.npz"
DEFAULT_META = MODEL_DIR / "triage_model.json"
HEADS = ("emergency", "self_harm", "defer", "out_of_scope")
FORMAT_VERSION = 1


class TriageModelError(PatientQAError):
    """The triage model files are missing or do not match this version; the message says how to rebuild."""


@dataclass(frozen=True)
class Thresholds:
    """Probabilities at which a head fires; chosen on writer-held-out predictions at training time."""

    emergency: float
    self_harm: float
    defer: float
    out_of_scope: float
    # A short follow-up ("101.6 this time") is read with the earlier turns; the message alone must still
    # carry at least this much red-flag signal, so a calm question after a scary story does not alarm.
    emergency_context: float
    emergency_alone_floor: float
    # One sentence of a longer message, scored alone (with the whole message's embedding).
    emergency_sentence: float
    self_harm_sentence: float
    # The symptom-now rules (triage_rules.yaml) alarm only when the model gives at least this much.
    emergency_with_rules: float


@dataclass(frozen=True)
class HeadScores:
    """One message's probability for every head."""

    emergency: float
    self_harm: float
    defer: float
    out_of_scope: float

    def get(self, head: str) -> float:
        return float(getattr(self, head))


def _probabilities(logits: np.ndarray) -> HeadScores:
    """Sigmoid of each head's logit, named by head."""
    probs = 1.0 / (1.0 + np.exp(-logits))
    return HeadScores(**{head: float(p) for head, p in zip(HEADS, probs)})


class TriageModel:
    """Scores a message with every head: sigmoid(w_dense . [embedding, cues] + w_ngrams . ngrams + b)."""

    def __init__(self, dense: np.ndarray, ngrams: np.ndarray, bias: np.ndarray, embedding_scale: float,
                 thresholds: Thresholds, embedding_model: str, cues: CueSet | None = None,
                 meta: dict | None = None) -> None:
        self.cues = cues or default_cues()
        dims = dense.shape[1] - len(self.cues.names)
        if dense.shape[0] != len(HEADS) or ngrams.shape != (len(HEADS), HASH_SIZE) or dims <= 0:
            raise TriageModelError("triage model weights have the wrong shape; run 'patient-qa triage train'")
        self.dense = dense.astype(np.float32)
        self.ngrams = ngrams.astype(np.float32)
        self.bias = bias.astype(np.float32)
        self.embedding_dim = dims
        self.embedding_scale = float(embedding_scale)
        self.thresholds = thresholds
        self.embedding_model = embedding_model
        self.meta = meta or {}

    def dense_features(self, text: str, vector: np.ndarray) -> np.ndarray:
        """[scaled embedding, cue flags] as one row; the n-grams are kept sparse."""
        if vector.shape != (self.embedding_dim,):
            raise TriageModelError(
                f"triage model expects {self.embedding_dim}-dimensional embeddings from {self.embedding_model}, "
                f"got {vector.shape}; run 'patient-qa triage train' for this model"
            )
        return np.concatenate([vector.astype(np.float32) * self.embedding_scale, self.cues.vector(text)])

    def logits(self, text: str, vector: np.ndarray) -> np.ndarray:
        """Raw scores per head, in HEADS order."""
        indices, values = hashed_ngrams(text)
        sparse = self.ngrams[:, indices] @ values if len(indices) else np.zeros(len(HEADS), dtype=np.float32)
        return self.dense @ self.dense_features(text, vector) + sparse + self.bias

    def scores(self, text: str, vector: np.ndarray) -> HeadScores:
        """Probabilities per head for one normalised message and its unit embedding."""
        return _probabilities(self.logits(text, vector))

    def sentence_scores(self, text: str, vector: np.ndarray) -> HeadScores:
        """Per head, the best single sentence of a message of two or more sentences (else the whole message)."""
        parts = split_sentences(text)
        if len(parts) < 2:
            return self.scores(text, vector)
        return _probabilities(np.max([self.logits(part, vector) for part in parts], axis=0))

    def save(self, weights: Path, meta_path: Path) -> None:
        """Write the weights (npz, float16 n-grams) and the JSON of thresholds and provenance."""
        np.savez_compressed(weights, dense=self.dense, ngrams=self.ngrams.astype(np.float16), bias=self.bias)
        meta = {
            **self.meta,
            "format_version": FORMAT_VERSION,
            "heads": list(HEADS),
            "embedding_model": self.embedding_model,
            "embedding_dim": self.embedding_dim,
            "embedding_scale": self.embedding_scale,
            "cues": list(self.cues.names),
            "thresholds": self.thresholds.__dict__,
        }
        meta_path.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def load_model(weights: Path = DEFAULT_WEIGHTS, meta_path: Path = DEFAULT_META) -> TriageModel:
    """The triage model from its two files, cached per path."""
    return _load(Path(weights), Path(meta_path))


@lru_cache(maxsize=4)
def _load(weights: Path, meta_path: Path) -> TriageModel:
    rebuild = "run 'patient-qa triage train' (or 'make triage-model') to rebuild it"
    if not weights.exists() or not meta_path.exists():
        raise TriageModelError(f"triage model not found at {weights}; {rebuild}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        with np.load(weights, allow_pickle=False) as data:
            dense, ngrams, bias = data["dense"], data["ngrams"], data["bias"]
    except (OSError, ValueError, KeyError) as err:
        raise TriageModelError(f"triage model at {weights} cannot be read ({err}); {rebuild}") from None
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        raise TriageModelError(f"triage model at {meta_path} is from another version; {rebuild}")
    if not isinstance(meta.get("cues"), list):
        raise TriageModelError(f"triage model at {meta_path} does not list its cue features; {rebuild}")
    try:
        cues = cue_set(meta["cues"])
    except KeyError as err:
        raise TriageModelError(f"triage model at {meta_path} was trained with cue features this version does not "
                               f"have ({err.args[0]}); {rebuild}") from None
    return TriageModel(dense, ngrams, bias, meta["embedding_scale"], Thresholds(**meta["thresholds"]),
                       meta["embedding_model"], cues, meta)
