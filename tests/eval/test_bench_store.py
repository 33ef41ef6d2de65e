"""The pgvector scale bench on a real throwaway server: recall is scored against exact search, and `keep` reuses."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def _tables(url: str) -> set[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_hnsw_bench_scores_recall_and_drops_its_table(pg_url: str) -> None:
    from eval.bench_store import hnsw_bench

    row = hnsw_bench(pg_url, n=1500, m=8, ef_construction=16, ef_sweep=(10, 200))
    low, high = row["hnsw"]
    assert 0.0 <= low["recall_at_10"] <= high["recall_at_10"] <= 1.0
    assert high["recall_at_10"] >= 0.9  # a wide search over 1,500 vectors finds nearly all true neighbours
    assert row["sequential_scan"]["recall_at_10"] == 1.0  # exact search agrees with the numpy reference
    assert row["reused_index"] is False and row["index_build_s"] >= 0
    assert "bench_vectors" not in _tables(pg_url)


def test_keep_reuses_the_same_vectors_and_rebuilds_for_others(pg_url: str) -> None:
    from eval.bench_store import hnsw_bench

    first = hnsw_bench(pg_url, n=1200, m=8, ef_construction=16, ef_sweep=(40,), keep=True)
    again = hnsw_bench(pg_url, n=1200, m=8, ef_construction=16, ef_sweep=(40,), keep=True)
    other_settings = hnsw_bench(pg_url, n=1200, m=12, ef_construction=24, ef_sweep=(40,), keep=True)
    other_size = hnsw_bench(pg_url, n=1300, m=12, ef_construction=24, ef_sweep=(40,), keep=True)
    assert (first["reused_index"], again["reused_index"]) == (False, True)
    assert "index_build_s" not in again  # searched the kept graph: same graph, same queries, same recall
    assert again["hnsw"][0]["recall_at_10"] == first["hnsw"][0]["recall_at_10"]
    assert other_settings["reused_index"] is False and other_size["reused_index"] is False
    assert "bench_vectors" in _tables(pg_url)
