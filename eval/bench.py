"""`patient-qa bench`: cold start, warm ask against its embedding floor, index build/load, and vector search at scale.

Numbers only: nothing here asserts a time. This module runs the in-process measurements and the whole bench in
order; the processes it starts are `eval/bench_processes.py`, the scale sweep `eval/bench_scale.py`, and the
bench.json / bench.md files `eval/bench_render.py`.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from eval.bench_processes import cold_ask, cold_chat, memory_probe, say
from eval.bench_render import render_bench, write_bench
from eval.bench_scale import SCALE_SIZES, recommend_switch, vector_scale
from eval.metrics import latency_summary, timed_in_turn
from eval.workspace import MEDQUAD_DEV

# ---------------------------------------------------------------- warm ask vs embedding floor


def warm_ask(assistant, questions: Sequence[tuple[str, tuple[str, ...]]]) -> dict:
    """p50/p95 of Assistant.ask and of embedding the question alone, over the same questions, in one warm process."""
    assistant.warm_up()
    assistant.embedder.encode_query("warm up")
    times = timed_in_turn(questions, {
        "embed": lambda item: assistant.embedder.encode([item[0]]),  # uncached: the floor is a real model call
        "ask": lambda item: assistant.ask(item[0], history=list(item[1])),
    })
    ask, embed = latency_summary(times["ask"]), latency_summary(times["embed"])
    return {
        "questions": len(questions),
        "ask_ms": ask,
        "embed_ms": embed,
        "ratio_p50": round(ask["p50"] / embed["p50"], 2) if embed["p50"] else None,
        "ratio_p95": round(ask["p95"] / embed["p95"], 2) if embed["p95"] else None,
    }


def triage_cost(assistant, questions: Sequence[tuple[str, tuple[str, ...]]]) -> dict:
    """What safety triage adds to an answer: its time with the question's vector already computed (retrieval
    needs that vector anyway); a conversation's extra embedding of the earlier turns is counted."""
    from qa import safety

    times = []
    for question, history in questions:
        assistant.triage_embedder.encode_query(question)
        started = time.perf_counter()
        safety.triage(question, list(history), assistant.glossary, embed=assistant.triage_embedder.encode_query,
                      model=assistant.triage_model)
        times.append((time.perf_counter() - started) * 1000)
    return {"questions": len(questions), "triage_ms": latency_summary(times)}


# ---------------------------------------------------------------- index build and load


def build_throughput(articles: Path, settings, embedder) -> dict:
    """A fresh (nothing reused) build of `articles` into a temporary folder: seconds, chunks/s, sentences/s."""
    from knowledge.build import build_index
    from knowledge.index import KnowledgeIndex

    with tempfile.TemporaryDirectory(prefix="patient-qa-bench-") as tmp:
        index_dir = Path(tmp) / "index"
        report = build_index([articles], settings.updated(index_dir=index_dir), embedder=embedder, progress=False)
        load = index_load(index_dir)
        size = sum(f.stat().st_size for f in index_dir.rglob("*") if f.is_file())
        KnowledgeIndex.load(index_dir)
    return {
        "articles": str(articles),
        "documents": report.documents,
        "chunks": report.chunks,
        "sentences": report.sentences,
        "seconds": report.seconds,
        "chunks_per_s": round(report.chunks / report.seconds, 1),
        "sentences_per_s": round(report.sentences / report.seconds, 1),
        "index_mb": round(size / 1e6, 2),
        "load": load,
    }


def index_load(index_dir: Path, runs: int = 5) -> dict:
    """Median and max seconds of KnowledgeIndex.load (files already in the page cache)."""
    from knowledge.index import KnowledgeIndex

    times = []
    for _ in range(runs):
        started = time.perf_counter()
        KnowledgeIndex.load(index_dir)
        times.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(times), 4), "max_s": round(max(times), 4)}


# ---------------------------------------------------------------- the whole bench


def run_bench(out_dir: Path, quick: bool = False, medquad: Path = MEDQUAD_DEV, index_dir: Path | None = None,
              skip: Sequence[str] = (), step: Callable[[str], None] = say, store: str | None = None,
              pg_scale: Sequence[int] = (), ray: bool = False) -> dict:
    """Every measurement in order; a section that cannot run records why instead of failing the bench."""
    from eval.evaluate import load_assistant
    from eval.gold import DEFAULT_GOLD, load_gold
    from knowledge.settings import Settings
    from knowledge.store import is_server_url

    started = time.perf_counter()
    settings = Settings.from_env()
    if ray:
        from knowledge.ray_embedding import import_ray

        import_ray()  # a missing `scale` extra is said now, not after the rest of the bench
    result: dict = {
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "threads": settings.retrieval.threads,
    }
    step("preparing the default index")
    store = store or settings.index.store or None
    assistant, info = load_assistant(index_dir, None if index_dir or store else settings.index.articles, store=store)
    result["index"] = info
    default_index = Path(info["directory"])
    server = bool(store and is_server_url(store))
    if server:
        # Cold starts, index load and memory probe read an index folder; a server store has none to give them.
        skip = [*skip, "cold"]
        result["skipped"] = {"cold, load, memory": "the store is a PostgreSQL server, not an index folder"}

    if "cold" not in skip:
        step("cold start: patient-qa ask")
        result["cold_ask"] = cold_ask(default_index)
        step("cold start: patient-qa chat")
        result["cold_chat"] = cold_chat(default_index)

    step("warm ask vs embedding floor")
    gold = load_gold(DEFAULT_GOLD)
    result["warm"] = warm_ask(assistant, [(i.question, i.history) for i in gold.items])
    step("triage cost")
    result["triage"] = triage_cost(assistant, [(i.question, i.history) for i in gold.items])

    if not server:
        result["load"] = {"default_index": index_load(default_index)}
        result["memory"] = memory_probe(default_index)

    if "build" not in skip:
        articles = Path(medquad) / "articles"
        if articles.exists():
            step(f"index build throughput on {articles}")
            result["build"] = build_throughput(articles, settings, None)  # None: the build picks (ONNX if exported)
        else:
            result["build"] = {"error": f"no medquad-dev articles at {articles}"}

    def library_vectors() -> np.ndarray:
        index = assistant.index  # any KnowledgeStore: every stored sentence vector, in chunk order
        return np.vstack([index.sentence_vectors(c) for c in index.all_chunks()]).astype(np.float32)

    if server and "postgres" not in skip:
        from eval.bench_store import STORE_SCALE, store_bench

        step("the embedded index of the same articles, to compare with the PostgreSQL store")
        embedded, _ = load_assistant(None, settings.index.articles)
        step("PostgreSQL store: warm ask embedded vs PostgreSQL, pgvector HNSW at scale")
        result["postgres"] = store_bench(
            str(store), scale=list(pg_scale) or [STORE_SCALE], reference=library_vectors(),
            assistants=(embedded, assistant), questions=[(i.question, i.history) for i in gold.items])

    if "scale" not in skip:
        sizes = [n for n in SCALE_SIZES if not (quick and n >= 1_000_000)]
        reference = library_vectors()
        result["scale"] = vector_scale(sizes, reference, settings.retrieval.threads)
        result["scale"]["recommendation"] = recommend_switch(result["scale"]["rows"], result["warm"]["embed_ms"]["p50"])
    if "fastpath" not in skip:
        from eval.bench_fastpath import fastpath_bench

        step("fast path: import floor, embedding floors, build batches, chat memory")
        result["fastpath"] = fastpath_bench(result, assistant, settings, [i.question for i in gold.items], skip)
    if ray:  # optional: needs the `scale` extra and starts two local Ray clusters
        from eval.bench_ray import ray_ingestion

        result["ray"] = ray_ingestion(settings.index.articles, settings, step=step)
    result["seconds"] = round(time.perf_counter() - started, 1)
    # Other work on the machine inflates every timing; the load average says how much to trust them.
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    write_bench(result, Path(out_dir))
    return result


__all__ = ["run_bench", "render_bench", "write_bench"]
