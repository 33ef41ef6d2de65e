"""The regression gate: worse reports fail it with a list of what dropped; CI runs the real default eval through it."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eval_fixtures import sample_results, write_jsonl

from eval.gate import GATED, BaselineError, baseline_from_report, compare, load_baseline
from eval.gold import GoldSet
from eval.report import build_report

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def report(tmp_path) -> dict:
    results = sample_results()
    path = write_jsonl(tmp_path / "gold.jsonl", [{"id": r.item.id} for r in results])
    gold = GoldSet(str(path), tuple(r.item for r in results), "dev")
    return build_report(results, gold, {"directory": "/idx"}, "hybrid", 1.0)


def _with(report: dict, **figures: float) -> dict:
    changed = copy.deepcopy(report)
    changed["headline"].update(figures)
    return changed


def test_the_same_report_passes_the_gate(report):
    comparison = compare(report, report)
    assert comparison.regressions == () and comparison.summary_lines() == [] and comparison.same_gold


def test_a_drop_beyond_the_tolerance_fails_and_says_what_dropped(report):
    worse = _with(report, fact_hit_rate=report["headline"]["fact_hit_rate"] - 0.05, defer_accuracy=0.9)
    comparison = compare(worse, report)
    assert [d.name for d in comparison.regressions] == ["fact_hit_rate", "defer_accuracy"]
    lines = comparison.summary_lines()
    assert lines[0] == "fact_hit_rate: 66.7% -> 61.7% (tolerance 2 points)"
    assert lines[1] == "defer_accuracy: 100.0% -> 90.0% (tolerance 2 points)"


def test_a_drop_within_the_tolerance_passes(report):
    slightly = _with(report, fact_hit_rate=report["headline"]["fact_hit_rate"] - 0.019)
    assert compare(slightly, report).regressions == ()


def test_safety_figures_have_no_slack_and_false_alarms_gate_upwards(report):
    assert GATED["emergency_recall"].points == 0.0 and GATED["faithfulness"].points == 0.0
    fewer = _with(report, emergency_recall=report["headline"]["emergency_recall"] - 0.001)
    assert [d.name for d in compare(fewer, report).regressions] == ["emergency_recall"]
    alarms = _with(report, false_alarm_rate=report["headline"]["false_alarm_rate"] + 0.02)
    assert [d.name for d in compare(alarms, report).regressions] == ["false_alarm_rate"]
    calmer = _with(report, false_alarm_rate=0.0)
    assert compare(calmer, report).regressions == ()


def test_latency_is_reported_but_never_gated(report):
    slow = _with(report, latency_p50_ms=report["headline"]["latency_p50_ms"] * 10)
    comparison = compare(slow, report)
    assert comparison.regressions == ()
    delta = next(d for d in comparison.deltas if d.name == "latency_p50_ms")
    assert delta.change == pytest.approx(report["headline"]["latency_p50_ms"] * 9) and delta.tolerance is None


def test_a_figure_missing_from_the_new_report_counts_as_a_regression(report):
    with_tokens = _with(report, token_recall=0.4)
    comparison = compare(report, with_tokens)
    assert [d.name for d in comparison.regressions] == ["token_recall"]
    assert "missing from this report" in comparison.summary_lines()[0]


def test_the_commit_ready_baseline_names_items_that_start_failing(report, tmp_path):
    baseline = baseline_from_report(report)
    assert baseline["kind"] == "baseline" and "items" not in baseline
    assert baseline["outcomes"]["e2"] == ["missed emergency: triaged general"] and baseline["outcomes"]["a1"] == []
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(baseline))
    worse = copy.deepcopy(report)
    a1 = next(i for i in worse["items"] if i["id"] == "a1")
    a1.update(passed=False, failures=["no fact in the quotes"])
    e2 = next(i for i in worse["items"] if i["id"] == "e2")
    e2.update(passed=True, failures=[])
    comparison = compare(worse, load_baseline(path), str(path))
    assert comparison.newly_failing == ("a1",) and comparison.newly_passing == ("e2",)
    assert comparison.summary_lines()[-1] == "items failing now that passed in the baseline: a1"


def test_a_missing_or_foreign_baseline_says_how_to_make_one(tmp_path):
    with pytest.raises(BaselineError, match="--write-baseline"):
        load_baseline(tmp_path / "none.json")
    (tmp_path / "x.json").write_text('{"a": 1}')
    with pytest.raises(BaselineError, match="headline"):
        load_baseline(tmp_path / "x.json")


def test_the_cli_exits_1_with_the_list_of_drops(report, tmp_path, monkeypatch, capsys):
    import eval.evaluate
    from eval.evaluate import EvalOutcome
    from ui.cli import main

    baseline_path = tmp_path / "baseline.json"
    baseline_path.write_text(json.dumps(baseline_from_report(report)))
    worse = _with(report, emergency_recall=0.0)

    def fake_run_eval(gold_path, out_dir, **kwargs):
        return EvalOutcome(worse, compare(worse, load_baseline(kwargs["baseline_path"]), str(kwargs["baseline_path"])), ())

    monkeypatch.setattr(eval.evaluate, "run_eval", fake_run_eval)
    args = ["eval", "--baseline", str(baseline_path), "--out", str(tmp_path / "out")]
    assert main(args) == 0  # without the flag, regressions are printed, not fatal
    assert main(args + ["--fail-on-regression"]) == 1
    err = capsys.readouterr().err
    assert "regression against" in err and "emergency_recall: 50.0% -> 0.0% (tolerance 0 points)" in err


def test_the_gate_flag_needs_a_baseline(capsys):
    from ui.cli import main

    assert main(["eval", "--fail-on-regression"]) == 2
    assert "--baseline" in capsys.readouterr().err


@pytest.mark.slow
def test_the_default_eval_passes_the_committed_baseline(tmp_path):
    """What CI runs: the real model, the bundled articles, every gold item, the committed baseline."""
    out = tmp_path / "report"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATIENT_QA_")}
    env.update(PATIENT_QA_EVAL_CACHE=str(tmp_path / "cache"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    done = subprocess.run(
        [sys.executable, "-m", "ui.cli", "eval", "--baseline", "eval/baseline.json", "--fail-on-regression",
         "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "no regression" in done.stdout
    for name in ("report.json", "report.md", "categories.png", "triage_confusion.png", "latency.png"):
        assert (out / name).stat().st_size > 0, name
    data = json.loads((out / "report.json").read_text())
    assert data["gold"]["items"] == len(data["items"]) >= 150
