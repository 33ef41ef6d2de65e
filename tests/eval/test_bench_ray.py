"""The Ray section of the bench: what it counts and how bench.md shows it (the measurement itself: eval/bench_ray.py)."""

from __future__ import annotations

import numpy as np

from eval.bench_ray import TimedEncoder, render_ray


class Slowish:
    model_name = "m"
    threads = 2

    def encode(self, texts, batch_size=64):
        return np.ones((len(texts), 3), dtype=np.float32)


def test_timed_encoder_counts_texts_and_passes_the_rest_through():
    timed = TimedEncoder(Slowish())
    assert timed.encode(["a", "b"]).shape == (2, 3)
    timed.encode(["c"])
    assert timed.texts == 3 and timed.seconds > 0
    assert timed.threads == 2 and timed.model_name == "m"


def test_render_shows_each_run_and_the_machine_load():
    section = {
        "articles": "knowledge/articles", "cpus": 2, "load_average_before": [15.2, 14, 13],
        "load_average_after": [16.1, 15, 14], "note": "shared machine",
        "rows": [
            {"run": "one process", "workers": 1, "threads_per_worker": 2, "texts": 4000, "encode_s": 100.0,
             "texts_per_s": 40.0, "build_s": 110.0, "cluster_start_s": None},
            {"run": "Ray, 2 worker(s)", "workers": 2, "threads_per_worker": 1, "texts": 4000, "encode_s": 80.0,
             "texts_per_s": 50.0, "build_s": 90.0, "cluster_start_s": 20.5, "max_abs_diff": 0.0},
        ],
    }
    text = render_ray(section)
    assert "| one process | 2 | 4000 | 100.0 | 40.0 | 110.0 | - | - |" in text
    assert "| Ray, 2 worker(s) | 1 | 4000 | 80.0 | 50.0 | 90.0 | 20.5 | 0.0e+00 |" in text
    assert "load average 15.2 before, 16.1 after" in text and "2 CPUs" in text
    assert "not measured: ray[data] is not installed" in render_ray({"error": "ray[data] is not installed"})


def test_bench_ray_without_the_extra_stops_before_measuring(monkeypatch, tmp_path, capsys):
    import sys

    from ui.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)  # as without `pip install '.[scale]'`
    code = main(["bench", "--out", str(tmp_path / "bench"), "--ray"])
    err = capsys.readouterr().err
    assert code != 0
    assert "[scale]" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bench").exists()
