"""The bench's own logic (no timings asserted): memory reading, synthetic vectors, the switch rule, chat start-up."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import eval.bench_processes as processes
import eval.bench_render as render
import eval.bench_scale as scale

FAKE_CHAT = '''
import http.server, sys, time
args = sys.argv[1:]
if "--help" in args:
    print("usage: chat [--index INDEX] [--port PORT]")
    sys.exit(0)
port = int(args[args.index("--port") + 1])
time.sleep(0.3)
class Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"chat")
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), Page).serve_forever()
'''
NO_CHAT = 'import sys\nprint("The web chat arrives with the web UI (issue 5).")\n'


def test_rss_is_read_from_proc():
    assert processes.rss_mb() > 1.0


def test_synthetic_vectors_are_unit_length_and_reproducible():
    reference = np.random.default_rng(0).standard_normal((500, scale.DIMENSION)).astype(np.float32)
    first = scale.synthetic_vectors(1000, reference, seed=3)
    assert first.shape == (1000, scale.DIMENSION) and first.dtype == np.float32
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(first, scale.synthetic_vectors(1000, reference, seed=3))
    assert np.allclose(np.linalg.norm(scale.synthetic_vectors(10, None, seed=1), axis=1), 1.0, atol=1e-5)


def test_the_product_index_is_forced_either_way_with_the_product_hnsw_parameters():
    from knowledge.settings import IndexSettings
    from knowledge.vectors import new_vector_index

    assert "IndexFlatIP" in scale._describe(scale._product_index("exact", 10**9))
    defaults = IndexSettings()
    assert scale._describe(scale._product_index("approximate", 10)) == (
        f"IndexIDMap2(IndexHNSWFlat(M={defaults.hnsw_neighbours}, efConstruction={defaults.hnsw_ef_construction}, "
        f"efSearch={defaults.hnsw_ef_search}))")
    # the product itself still switches at its setting
    assert "IndexFlatIP" in scale._describe(new_vector_index(8, defaults.approximate_from - 1))
    assert "IndexHNSWFlat" in scale._describe(new_vector_index(8, defaults.approximate_from))


def test_a_small_scale_row_reports_latency_memory_and_recall():
    row = scale.scale_one(2000, None, build_threads=1, query_threads=1)
    assert row["vectors"] == 2000
    assert {"build_s", "index_mb", "rss_growth_mb", "latency_ms"} <= row["exact"].keys()
    assert 0.5 <= row["approximate"]["recall_at_10"] <= 1.0
    assert "recall_at_10" not in row["exact"]


def test_the_switch_is_where_exact_search_reaches_its_share_of_the_floor():
    rows = [{"vectors": 100_000, "exact": {"latency_ms": {"p50": 5.0}}, "approximate": {"recall_at_10": 0.97}},
            {"vectors": 10_000, "exact": {"latency_ms": {"p50": 0.6}}, "approximate": {"recall_at_10": 0.99}}]
    advice = scale.recommend_switch(rows, embed_p50_ms=8.0)
    # 5 ms per 100k vectors; the budget is half of 8 ms = 4 ms -> 80,000 vectors.
    assert advice["approximate_from"] == 80_000 and advice["budget_ms"] == 4.0
    assert advice["recall_checked_at"] == 100_000  # the first measured size past the switch
    assert advice["approximate_recall_at_10"] == 0.97 and advice["recall_ok"]
    assert scale.recommend_switch([], 8.0)["approximate_from"] is None


def test_chat_start_up_is_timed_until_the_page_answers(tmp_path, monkeypatch):
    script = tmp_path / "fake_chat.py"
    script.write_text(FAKE_CHAT)
    monkeypatch.setattr(processes, "cli_command", lambda: [sys.executable, str(script)])
    result = processes.cold_chat(tmp_path, timeout_s=30)
    assert result["seconds"] is not None and result["seconds"] >= 0.3, result


def test_chat_that_is_not_available_is_recorded_as_null(tmp_path, monkeypatch):
    script = tmp_path / "no_chat.py"
    script.write_text(NO_CHAT)
    monkeypatch.setattr(processes, "cli_command", lambda: [sys.executable, str(script)])
    result = processes.cold_chat(tmp_path, timeout_s=30)
    assert result["seconds"] is None and "web UI" in result["reason"]


def test_bench_markdown_shows_every_section():
    row = {"vectors": 10_000, "exact": {"index": "IndexIDMap2(IndexFlatIP)", "build_s": 0.1, "index_mb": 15.4,
                                        "rss_growth_mb": 15.0, "latency_ms": {"p50": 0.5, "p95": 0.7}},
           "approximate": {"index": "IndexIDMap2(IndexHNSWFlat)", "build_s": 1.0, "index_mb": 18.0,
                           "rss_growth_mb": 19.0, "latency_ms": {"p50": 0.1, "p95": 0.2}, "recall_at_10": 0.99}}
    result = {
        "created_at": "now", "machine": {"cpus": 2, "python": "3.11", "platform": "linux"}, "threads": 1,
        "index": {"documents": 32, "chunks": 340}, "seconds": 1.0,
        "cold_ask": {"runs": [{"to_answer_s": 9.0, "to_exit_s": 9.5}], "to_answer_s_median": 9.0, "to_exit_s_median": 9.5},
        "cold_chat": {"seconds": None, "reason": "not available"},
        "warm": {"questions": 3, "ask_ms": {"p50": 14.0, "p95": 20.0}, "embed_ms": {"p50": 7.0, "p95": 9.0},
                 "ratio_p50": 2.0},
        "load": {"default_index": {"median_s": 0.05}},
        "memory": {"after_index_load_mb": 80.0, "after_model_and_first_answer_mb": 400.0},
        "build": {"documents": 214, "chunks": 900, "sentences": 5000, "seconds": 50.0, "chunks_per_s": 18.0,
                  "sentences_per_s": 100.0, "index_mb": 12.0, "load": {"median_s": 0.1}},
        "scale": {"rows": [row], "query_threads": 1, "build_threads": 2, "vectors_shaped_like": "power law",
                  "recommendation": {"approximate_from": 80_000, "reason": "r", "exact_ms_per_100k": 5.0,
                                     "recall_checked_at": 100_000, "approximate_recall_at_10": 0.87,
                                     "ef_search_for_recall": 128, "current_setting": 200_000}},
    }
    text = render.render_bench(result)
    for needle in ("start to answer", "null (not available)", "Ratio ask / floor at p50 (target <= 2) | 2.0",
                   "Chunks/s", "| 10,000 | IndexIDMap2(IndexFlatIP)", "about **80,000** chunks",
                   "At 100,000 vectors the product's HNSW finds recall@10 0.87 (bar 0.95); efSearch 128 reaches the bar."):
        assert needle in text
    with pytest.raises(KeyError):
        render.render_bench({})
