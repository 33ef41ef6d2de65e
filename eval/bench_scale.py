"""Vector search at scale: exact against approximate (HNSW) indexes on synthetic vectors, and where to switch."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

import numpy as np

from eval.bench_processes import rss_mb, say
from eval.metrics import latency_summary

SCALE_SIZES = (10_000, 100_000, 1_000_000)
SCALE_QUERIES = 200
DIMENSION = 384
# Exact search may take at most this share of the embedding floor: issue 4 wants ask p50 <= 2 x the floor,
# and BM25, fusion and composing also need a share of the remaining headroom.
SEARCH_BUDGET_OF_FLOOR = 0.5
MIN_APPROXIMATE_RECALL = 0.95
EF_SEARCH_SWEEP = (64, 128, 256)  # HNSW search breadth: recall bought with latency


def synthetic_vectors(n: int, reference: np.ndarray | None, seed: int) -> np.ndarray:
    """Unit vectors shaped like real embeddings: the mean and covariance spectrum of `reference` (else a power law).

    Independent Gaussian draws carry no clusters, so approximate search finds them harder than real text:
    the recall measured here is a floor, not a flattering number.
    """
    rng = np.random.default_rng(seed)
    if reference is not None and len(reference) > DIMENSION:
        mean = reference.mean(axis=0)
        values, vectors = np.linalg.eigh(np.cov((reference - mean).T))
        scale = np.sqrt(np.clip(values, 0, None)).astype(np.float32)
        basis = vectors.T.astype(np.float32)
    else:
        mean = np.zeros(DIMENSION, dtype=np.float32)
        scale = ((np.arange(DIMENSION) + 1.0) ** -0.5).astype(np.float32)
        basis = np.eye(DIMENSION, dtype=np.float32)
    out = np.empty((n, DIMENSION), dtype=np.float32)
    step = 100_000
    for start in range(0, n, step):
        rows = min(step, n - start)
        block = (rng.standard_normal((rows, DIMENSION), dtype=np.float32) * scale) @ basis + mean
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + rows] = block
    return out


def _product_index(kind: str, size: int):
    """The index knowledge.vectors makes, forced to exact or approximate regardless of its size threshold."""
    from knowledge.settings import Settings
    from knowledge.vectors import new_vector_index

    settings = Settings().updated(approximate_from=0 if kind == "approximate" else sys.maxsize)
    return new_vector_index(DIMENSION, size, settings.index)


def _describe(index) -> str:
    import faiss

    inner = faiss.downcast_index(index.index) if hasattr(index, "index") else index
    name = type(inner).__name__
    if hasattr(inner, "hnsw"):
        name += f"(M={inner.hnsw.nb_neighbors(1)}, "
        name += f"efConstruction={inner.hnsw.efConstruction}, efSearch={inner.hnsw.efSearch})"
    return f"IndexIDMap2({name})"


def _search_timing(index, queries: np.ndarray, k: int = 10) -> tuple[list[list[int]], dict]:
    from knowledge.vectors import search_vectors

    found, times = [], []
    for query in queries:
        started = time.perf_counter()
        hits = search_vectors(index, query, k)
        times.append((time.perf_counter() - started) * 1000)
        found.append([i for i, _ in hits])
    return found, latency_summary(times)


def _recall(found: list[list[int]], exact: list[list[int]]) -> float:
    return round(float(np.mean([len(set(a) & set(e)) / max(1, len(e)) for a, e in zip(found, exact)])), 4)


def _ef_sweep(index, queries: np.ndarray, exact_ids: list[list[int]]) -> list[dict]:
    """Latency and recall@10 of the HNSW index at other efSearch values; the product's value is restored."""
    import faiss

    hnsw = faiss.downcast_index(index.index).hnsw
    product_ef = hnsw.efSearch
    rows = []
    try:
        for ef in EF_SEARCH_SWEEP:
            hnsw.efSearch = ef
            found, latency = _search_timing(index, queries)
            rows.append({"ef_search": ef, "p50": latency["p50"], "p95": latency["p95"], "recall_at_10": _recall(found, exact_ids)})
    finally:
        hnsw.efSearch = product_ef
    return rows


def scale_one(n: int, reference: np.ndarray | None, build_threads: int, query_threads: int) -> dict:
    """Exact vs approximate index at one size: build time, index bytes, RSS growth, query latency, recall@10."""
    import faiss

    corpus = synthetic_vectors(n, reference, seed=n)
    queries = synthetic_vectors(SCALE_QUERIES, reference, seed=n + 1)
    ids = np.arange(1, n + 1, dtype=np.int64)
    row: dict = {"vectors": n, "dimension": DIMENSION, "queries": SCALE_QUERIES}
    exact_ids: list[list[int]] = []
    for kind in ("exact", "approximate"):
        say(f"scale {n:,}: {kind} index")
        before = rss_mb()
        faiss.omp_set_num_threads(build_threads)
        started = time.perf_counter()
        index = _product_index(kind, n)
        index.add_with_ids(corpus, ids)
        build_s = time.perf_counter() - started
        grown = rss_mb() - before
        faiss.omp_set_num_threads(query_threads)
        found, latency = _search_timing(index, queries)
        entry = {
            "index": _describe(index),
            "build_s": round(build_s, 2),
            "index_mb": round(len(faiss.serialize_index(index)) / 1e6, 1),
            "rss_growth_mb": round(grown, 1),
            "latency_ms": latency,
        }
        if kind == "exact":
            exact_ids = found
        else:
            entry["recall_at_10"] = _recall(found, exact_ids)
            entry["ef_search_sweep"] = _ef_sweep(index, queries, exact_ids)
        row[kind] = entry
        del index
    del corpus
    return row


def vector_scale(sizes: Sequence[int], reference: np.ndarray | None, query_threads: int = 1) -> dict:
    """Every size, plus the size from which the approximate index should be used."""
    build_threads = os.cpu_count() or 1
    rows = [scale_one(n, reference, build_threads, query_threads) for n in sizes]
    return {"rows": rows, "build_threads": build_threads, "query_threads": query_threads,
            "vectors_shaped_like": "default index sentence vectors" if reference is not None else "power law"}


def recommend_switch(rows: Sequence[dict], embed_p50_ms: float | None) -> dict:
    """The smallest size at which exact search p50 exceeds its budget (a share of the embedding floor).

    Exact search is linear in the corpus, so the measured per-vector cost extrapolates between sizes.
    """
    if not rows or not embed_p50_ms:
        return {"approximate_from": None, "reason": "no measurements"}
    largest = max(rows, key=lambda r: r["vectors"])
    per_vector_ms = largest["exact"]["latency_ms"]["p50"] / largest["vectors"]
    budget = embed_p50_ms * SEARCH_BUDGET_OF_FLOOR
    size = int(budget / per_vector_ms)
    rounded = max(10_000, (size // 10_000) * 10_000)
    # Recall is judged at the first measured size past the switch: that is where the approximate index starts.
    near = min((r for r in rows if r["vectors"] >= rounded), key=lambda r: r["vectors"], default=largest)
    recall = near["approximate"]["recall_at_10"]
    sweep = near["approximate"].get("ef_search_sweep", [])
    enough = next((e["ef_search"] for e in sweep if e["recall_at_10"] >= MIN_APPROXIMATE_RECALL), None)
    from knowledge.settings import Settings

    return {
        "approximate_from": rounded,
        "current_setting": Settings.from_env().index.approximate_from,
        "budget_ms": round(budget, 2),
        "exact_ms_per_100k": round(per_vector_ms * 100_000, 2),
        "recall_checked_at": near["vectors"],
        "approximate_recall_at_10": recall,
        "recall_ok": recall >= MIN_APPROXIMATE_RECALL,
        "ef_search_for_recall": enough,
        "reason": (f"exact search p50 reaches {SEARCH_BUDGET_OF_FLOOR:.0%} of the embedding floor "
                   f"({budget:.1f} ms) at about {size:,} vectors"),
    }
