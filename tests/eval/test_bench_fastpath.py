"""The fast-path section of the bench: ratios against the floors, and a failing part recorded, not raised."""

from __future__ import annotations

from types import SimpleNamespace

import eval.bench_fastpath as fastpath

RESULT = {"cold_ask": {"to_answer_s_median": 0.9}, "warm": {"ask_ms": {"p50": 6.0, "p95": 9.0}},
          "index": {"directory": "/nowhere"}}


def test_ratios_are_taken_against_both_floors_and_a_failing_part_is_recorded(monkeypatch):
    monkeypatch.setattr(fastpath, "import_floor", lambda: {"median_s": 4.5})
    monkeypatch.setattr(fastpath, "embedding_floors", lambda a, q: {"sentence_transformers_ms": {"p50": 8.0, "p95": 12.0},
                                                                    "onnx_ms": {"p50": 2.0, "p95": 3.0}})

    def broken(*args):
        raise RuntimeError("the chat would not start")

    monkeypatch.setattr(fastpath, "chat_memory", broken)
    assistant = SimpleNamespace(embedder=SimpleNamespace(backend="onnx"))
    fast = fastpath.fastpath_bench(RESULT, assistant, SimpleNamespace(), ["q"], skip=("build",))

    assert fast["cold_ratio"] == 0.2
    assert fast["warm_p50_over_sentence_transformers"] == 0.75
    assert fast["warm_p50_over_onnx"] == 3.0
    assert "batches" not in fast and "builds" not in fast  # --skip build leaves out the build parts
    assert "would not start" in fast["chat"]["error"]

    table = fastpath.render_fastpath(fast, RESULT)
    assert "| cold / import (target <= 0.3) | 0.2 |" in table
    assert "| floor: ONNX p50 / p95 (ms) | 2.0 / 3.0 |" in table
    assert "chat: RuntimeError: the chat would not start" in table


def test_the_import_floor_runs_a_fresh_offline_python(monkeypatch):
    """The helpers it borrows from the process bench must exist: a renamed one broke the whole section once."""
    import subprocess

    calls = []
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: calls.append((args, kw["env"])))
    floor = fastpath.import_floor(runs=2)
    assert len(calls) == 2 and floor["median_s"] >= 0 and len(floor["runs"]) == 2
    args, env = calls[0]
    assert args[1:] == ["-c", "import sentence_transformers"] and env["HF_HUB_OFFLINE"] == "1"


def test_a_chat_that_never_serves_is_reported_not_raised(monkeypatch, tmp_path):
    import subprocess
    import sys

    real_popen = subprocess.Popen
    monkeypatch.setattr(subprocess, "Popen", lambda args, **kw: real_popen(
        [sys.executable, "-c", "print('cannot start: no index')"], **kw))
    result = fastpath.chat_memory(tmp_path / "no-index", timeout_s=30)
    assert "did not serve" in result["error"] and "no index" in result["error"]


def test_the_ask_is_timed_in_turn_with_both_floors_and_its_ratio_uses_that_ask(monkeypatch):
    """Under a changing load, an ask timed minutes apart from its floor gave a ratio of 2.9 where 1.0 was true."""
    import knowledge.embedding as embedding

    calls: list[str] = []
    st = SimpleNamespace(encode=lambda texts: calls.append(f"st:{texts[0]}"))
    onnx = SimpleNamespace(encode=lambda texts: calls.append(f"onnx:{texts[0]}"))
    monkeypatch.setattr(embedding, "shared_embedder", lambda model, threads: st)
    monkeypatch.setattr(embedding, "onnx_for_index", lambda path, manifest, threads: onnx)
    index = SimpleNamespace(model="m", manifest={}, query_encoder_file=lambda: None)
    assistant = SimpleNamespace(index=index, settings=SimpleNamespace(retrieval=SimpleNamespace(threads=1)),
                                ask=lambda question: calls.append(f"ask:{question}"))
    floors = fastpath.embedding_floors(assistant, ["q1", "q2"])
    asked = [c for c in calls if not c.endswith(("warm up", "What is CAR-T?"))]
    assert asked == ["st:q1", "onnx:q1", "ask:q1", "st:q2", "onnx:q2", "ask:q2"]
    assert set(floors) == {"sentence_transformers_ms", "onnx_ms", "ask_ms"}

    monkeypatch.setattr(fastpath, "embedding_floors", lambda a, q: {"sentence_transformers_ms": {"p50": 8.0, "p95": 12.0},
                                                                    "onnx_ms": {"p50": 2.0, "p95": 3.0},
                                                                    "ask_ms": {"p50": 4.0, "p95": 5.0}})
    fast = fastpath.fastpath_bench(RESULT, SimpleNamespace(embedder=SimpleNamespace(backend="onnx")),
                                   SimpleNamespace(), ["q"], skip=("build", "chat", "cold"))
    assert fast["warm_p50_over_sentence_transformers"] == 0.5  # 4.0 / 8.0, not the earlier run's 6.0 / 8.0
    assert "| warm `ask` p50 / p95, taken in turn with the floors (ms) | 4.0 / 5.0 |" in fastpath.render_fastpath(fast, RESULT)
