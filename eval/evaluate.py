"""`patient-qa eval` end to end: gold set -> index -> Assistant.ask per item -> report files -> baseline comparison."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from eval.gate import Comparison, baseline_from_report, compare, load_baseline
from eval.gold import load_gold
from eval.report import build_report, write_report
from eval.runner import run_gold
from eval.workspace import cached_index_dir, prepare_index


@dataclass(frozen=True)
class EvalOutcome:
    """The report of one eval run, its comparison with a baseline (if any) and the files written."""

    report: dict
    comparison: Comparison | None
    written: tuple[Path, ...]


def load_assistant(index_dir: Path | None, articles: Path | None, mode: str = "hybrid", progress: bool = False,
                   store: str | None = None):
    """(Assistant, index info): the model loaded once; the store or index given, or a cached build of `articles`."""
    from knowledge.settings import Settings
    from knowledge.store import open_store, where
    from qa.assistant import Assistant

    settings = Settings.from_env(**where(index_dir, store))
    build_seconds = 0.0
    if settings.index.store:
        articles = None
    elif index_dir is None:
        articles = Path(articles or settings.index.articles)
        build_seconds = prepare_index(settings, None, articles, progress).seconds  # the build picks its embedder
        index_dir = cached_index_dir(articles)
    if index_dir is not None:
        settings = settings.updated(index_dir=Path(index_dir))
    index = open_store(settings)
    assistant = Assistant(settings, index=index, mode=mode)
    counts = index.manifest.get("counts", {})
    counts = counts if isinstance(counts, dict) else {}
    info = {
        "directory": index.location,
        "articles": None if articles is None else str(articles),
        "model": index.model,
        "documents": counts.get("documents"),
        "chunks": counts.get("chunks"),
        "sentences": counts.get("sentences"),
        "build_seconds": build_seconds,
    }
    return assistant, info


def run_eval(gold_path: Path, out_dir: Path, index_dir: Path | None = None, articles: Path | None = None,
             mode: str = "hybrid", baseline_path: Path | None = None, write_baseline: Path | None = None,
             progress: bool | None = None, store: str | None = None) -> EvalOutcome:
    """Run every gold item and write report.json, report.md and plots into out_dir."""
    started = time.perf_counter()
    progress = sys.stderr.isatty() if progress is None else progress
    gold = load_gold(gold_path)
    baseline = load_baseline(baseline_path) if baseline_path else None  # fail before the slow part
    assistant, info = load_assistant(index_dir, articles, mode, progress, store=store)
    assistant.warm_up()  # the first ask pays for lazy loading; it must not count as latency
    results = run_gold(assistant, gold, progress=_progress_bar(len(gold.items)) if progress else None)
    report = build_report(results, gold, info, mode, time.perf_counter() - started)
    comparison = compare(report, baseline, str(baseline_path)) if baseline is not None else None
    written = write_report(report, out_dir, comparison)
    if write_baseline:
        Path(write_baseline).parent.mkdir(parents=True, exist_ok=True)
        Path(write_baseline).write_text(json.dumps(baseline_from_report(report), indent=1, ensure_ascii=False) + "\n",
                                        encoding="utf-8")
        written.append(Path(write_baseline))
    return EvalOutcome(report, comparison, tuple(written))


def _progress_bar(total: int):
    from tqdm import tqdm

    bar = tqdm(total=total, desc="asking", unit="question", leave=False)

    def update(done: int, total: int) -> None:
        bar.update(1)
        if done == total:
            bar.close()

    return update
