"""The default index of the bundled articles, built or refreshed on first use by `chat` and `ask` alike."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

from knowledge.settings import Settings


def _article_files(folder: Path) -> list[Path]:
    from knowledge.build import collect_files

    files, _ = collect_files([folder])
    return files


def default_index_is_stale(index_dir: Path, articles: Path) -> str | None:
    """Why the default index needs (re)building, or None when it is up to date."""
    manifest = index_dir / "manifest.json"
    if not manifest.exists():
        return "no index yet"
    built = manifest.stat().st_mtime
    files = _article_files(articles)
    if any(f.stat().st_mtime > built for f in files):
        return "articles changed since the index was built"
    from knowledge.index import FORMAT_VERSION

    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "the index manifest could not be read"
    if not isinstance(data, dict):
        return "the index manifest could not be read"
    folder = (str(articles), str(articles.resolve()))
    if any(not path.startswith(folder) for path in data.get("files", {})):
        return None  # someone built this index from their own documents: never replace it with the articles
    if data.get("format_version") != FORMAT_VERSION:
        return "the index was built by another version of patient-qa"
    indexed = set(data.get("files", {}))
    if {str(f) for f in files} != indexed and {str(f.resolve()) for f in files} != indexed:
        return "articles were added or removed"
    return None


def ensure_default_index(settings: Settings, out: TextIO | None = None) -> int:
    """Build or update the default index from the bundled articles when needed, with progress; returns an exit code.

    Messages go to `out` (stdout for the chat; `ask` passes stderr so its stdout stays the answer alone);
    the progress bar is tqdm's, on stderr.
    """
    from knowledge.build import build_index
    from knowledge.index import IndexError_

    out = out or sys.stdout
    if settings.index.store.strip():
        return 0  # a library named by --store or PATIENT_QA_STORE is used as it is, never rebuilt from the bundle
    reason = default_index_is_stale(Path(settings.index.index_dir), Path(settings.index.articles))
    if reason is None:
        return 0
    print(f"Preparing the knowledge base ({reason}): indexing {settings.index.articles} into {settings.index.index_dir} ...",
          file=out, flush=True)
    try:
        report = build_index([Path(settings.index.articles)], settings, progress=True)
    except IndexError_ as err:
        print(f"patient-qa: {err}", file=sys.stderr)
        return 1
    print(f"Indexed {report.documents} articles ({report.chunks} passages) in {report.seconds:.1f} s "
          f"(added {report.added}, updated {report.updated}, removed {report.removed}).", file=out, flush=True)
    return 0
