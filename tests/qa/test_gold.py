"""The dev gold set against the issue's targets, scored by the eval's own scorer (eval.runner, eval.scoring)."""

from __future__ import annotations

import re

import pytest

from eval.gold import DEFAULT_GOLD, load_gold
from eval.report import TARGETS, build_report
from eval.runner import run_gold

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report(assistant) -> dict:
    """The eval's report of the dev gold set: the same figures `patient-qa eval` prints and gates."""
    gold = load_gold(DEFAULT_GOLD)
    return build_report(run_gold(assistant, gold), gold, index_info={}, mode="hybrid", seconds=0.0)


def test_gold_set_is_big_and_varied_enough() -> None:
    items = load_gold(DEFAULT_GOLD).items
    kinds = [item.kind for item in items]
    assert len(items) >= 150
    minimum = {"emergency": 15, "not_emergency": 10, "defer": 10, "out_of_scope": 15, "followup": 10}
    assert all(kinds.count(kind) >= n for kind, n in minimum.items())
    for item in items:
        for fact in item.facts:
            re.compile(fact)


def test_every_target_of_the_dev_set_is_met(report: dict) -> None:
    rows = {row["name"]: row for row in report["targets"]}
    # the targets for the dev set are all scored (self-harm recall too once the set holds such items;
    # gold-article hit@3 is for medquad-shaped sets)
    assert {"fact_hit_rate", "emergency_recall", "not_emergency_false_alarms", "defer_accuracy",
            "out_of_scope_accuracy", "faithfulness"} <= set(rows) <= set(TARGETS)
    missed = {name: row["value"] for name, row in rows.items() if not row["met"]}
    failures = [f"{item['id']}: {item['failures']}" for item in report["items"] if item["failures"]]
    assert not missed, f"targets missed: {missed}; failing items: {failures[:20]}"


def test_no_general_question_raises_an_alarm(report: dict) -> None:
    assert report["headline"]["false_alarm_rate"] == 0.0
