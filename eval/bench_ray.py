"""Ingestion throughput with Ray: the same fresh build embedded in this process, then by 1 and by 2 Ray actors.

Texts/s counts the texts the build embeds (chunks and unique sentences) over the wall time of its `encode` calls;
for Ray that includes starting the actor pool and loading one model per actor, which a build always pays. Starting
the local cluster itself is reported apart (`cluster_start_s`). Numbers only: nothing here asserts a time.
`patient-qa bench --ray` runs it inside the bench; `python -m eval.bench_ray` runs it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

WORKER_COUNTS = (1, 2)


class TimedEncoder:
    """An embedder that adds up the texts it encodes and the seconds that takes; everything else is the inner one's."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.texts = 0
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def encode(self, texts: list[str], batch_size: int = 64):
        started = time.perf_counter()
        vectors = self.inner.encode(texts, batch_size=batch_size)
        self.seconds += time.perf_counter() - started
        self.texts += len(texts)
        return vectors


def _timed_ingestion(options):
    """A RayIngestion whose distributed embedder is timed like the in-process one."""
    from knowledge.ray_embedding import RayIngestion

    class TimedIngestion(RayIngestion):
        def distribute(self, local):
            self.embedder = super().distribute(local)
            self.timed = TimedEncoder(self.embedder)
            return self.timed

    return TimedIngestion(options)


def _row(label: str, workers: int, threads: int, report, timed: TimedEncoder, cluster_start_s: float | None) -> dict:
    return {
        "run": label,
        "workers": workers,
        "threads_per_worker": threads,
        "texts": timed.texts,
        "encode_s": round(timed.seconds, 2),
        "texts_per_s": round(timed.texts / timed.seconds, 1) if timed.seconds else None,
        "build_s": report.seconds,
        "cluster_start_s": None if cluster_start_s is None else round(cluster_start_s, 1),
        "chunks": report.chunks,
        "sentences": report.sentences,
    }


def ray_ingestion(articles: Path, settings=None, worker_counts=WORKER_COUNTS, step=print) -> dict:
    """Fresh builds of `articles`: in this process (as `index build` runs), then with each Ray pool size."""
    import numpy as np

    from knowledge.build import build_index
    from knowledge.embedding import build_embedders
    from knowledge.index import KnowledgeIndex
    from knowledge.ray_embedding import import_ray, ray_cluster
    from knowledge.settings import Settings
    from knowledge.vectors import reconstruct

    settings = settings or Settings.from_env()
    import_ray()  # a missing extra is reported before minutes of plain building
    load_before = [round(x, 2) for x in os.getloadavg()]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="patient-qa-bench-ray-") as tmp:
        step(f"ingestion in this process: {articles}")
        local, _ = build_embedders(settings.index.model, settings.index.embedding_backend, settings.retrieval.threads)
        timed = TimedEncoder(local)
        plain_dir = Path(tmp) / "plain"
        report = build_index([articles], settings.updated(index_dir=plain_dir), embedder=timed, progress=False)
        rows.append(_row("one process", 1, int(getattr(local, "threads", 1)), report, timed, None))
        plain = KnowledgeIndex.load(plain_dir)
        ids = sorted(i for doc in plain.doc_chunk_ids.values() for i in doc)
        for workers in worker_counts:
            options = replace(settings.ray, address="local", workers=workers)
            step(f"ingestion with {workers} Ray worker(s)")
            started = time.perf_counter()
            with ray_cluster(options):
                cluster_start = time.perf_counter() - started
                ingestion = _timed_ingestion(options)
                ray_dir = Path(tmp) / f"ray{workers}"
                report = build_index([articles], settings.updated(index_dir=ray_dir), embedder=ingestion,
                                     progress=False)
            row = _row(f"Ray, {workers} worker(s)", workers, options.worker_threads, report, ingestion.timed,
                       cluster_start)
            row["workers_used"] = len(ingestion.embedder.last_workers)
            built = KnowledgeIndex.load(ray_dir)
            row["max_abs_diff"] = float(np.abs(reconstruct(built.vectors, ids) - reconstruct(plain.vectors, ids)).max())
            rows.append(row)
    return {
        "articles": str(articles),
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "rows": rows,
        "note": "texts/s = texts embedded / wall time of the encode calls (Ray: actor start and one model load per "
                "actor included; starting the local cluster is cluster_start_s). Shared machine: see the load averages.",
    }


def render_ray(section: dict) -> str:
    """The Ray section of bench.md."""
    if "error" in section:
        return f"## Ingestion with Ray\n\nnot measured: {section['error']}"
    lines = [
        "## Ingestion with Ray",
        "",
        f"Fresh builds of `{section['articles']}` on {section['cpus']} CPUs (load average "
        f"{section['load_average_before'][0]} before, {section['load_average_after'][0]} after: the machine is shared).",
        "",
        "| run | threads/worker | texts | encode s | texts/s | build s | cluster start s | max abs diff |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in section["rows"]:
        diff = r.get("max_abs_diff")
        lines.append(f"| {r['run']} | {r['threads_per_worker']} | {r['texts']} | {r['encode_s']} | {r['texts_per_s']} | "
                     f"{r['build_s']} | {r['cluster_start_s'] if r['cluster_start_s'] is not None else '-'} | "
                     f"{'-' if diff is None else f'{diff:.1e}'} |")
    lines += ["", section["note"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`python -m eval.bench_ray [ARTICLES] --out DIR`: the Ray section alone, as ray.json and ray.md."""
    from knowledge.errors import PatientQAError
    from knowledge.settings import DEFAULT_ARTICLES

    parser = argparse.ArgumentParser(prog="python -m eval.bench_ray", description=__doc__.splitlines()[0])
    parser.add_argument("articles", nargs="?", default=str(DEFAULT_ARTICLES), help="folder to build (default: bundled)")
    parser.add_argument("--out", default="eval/bench", help="folder for ray.json and ray.md")
    args = parser.parse_args(argv)
    try:
        section = ray_ingestion(Path(args.articles))
    except PatientQAError as err:
        print(f"bench_ray: {err}")
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ray.json").write_text(json.dumps(section, indent=1), encoding="utf-8")
    (out / "ray.md").write_text(render_ray(section) + "\n", encoding="utf-8")
    print(render_ray(section))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
