"""Where eval and bench indexes live: an incrementally rebuilt cache per articles folder, and the shared datasets."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from knowledge.settings import Settings

REPO_ROOT = Path(__file__).resolve().parent.parent
MEDQUAD_DEV = REPO_ROOT.parent / "shared" / "datasets" / "medquad-dev"


def eval_cache_root() -> Path:
    """Cached eval indexes live beside the user's default index (PATIENT_QA_EVAL_CACHE overrides)."""
    override = os.environ.get("PATIENT_QA_EVAL_CACHE")
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("patient-qa")) / "eval-indexes"


def cached_index_dir(articles: Path) -> Path:
    """One cache folder per articles folder, so the bundled articles and medquad never overwrite each other."""
    resolved = Path(articles).expanduser().resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    return eval_cache_root() / f"{resolved.name}-{digest}"


def prepare_index(settings: Settings, embedder, articles: Path, progress: bool = False):
    """Build or refresh the cached index of `articles` (only changed files are re-embedded); returns the BuildReport."""
    from knowledge.build import build_index

    articles = Path(articles)
    if not articles.exists():
        raise FileNotFoundError(f"no articles folder at {articles}; give one with --articles DIR or an index with --index DIR")
    return build_index([articles], settings.updated(index_dir=cached_index_dir(articles)), embedder=embedder,
                       progress=progress)
