"""The blind-written triage corpus: big and varied enough, well-formed, and sealed by writer."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from eval.gold import TRIAGE_GOLD, load_gold

FAMILIES = set(
    "fever chills_shaking breathing chest_pain confusion speech seizure tremor headache drowsiness "
    "dizziness_fainting heart vomiting_no_fluids diarrhea_stool belly_pain liver bleeding_bruising infection "
    "nerve_vision skin hormone kidney severe_weakness".split()
)
FORMS = {"direct", "indirect", "plan_or_means", "act_done", "someone_else", "embedded"}


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (TRIAGE_GOLD / name).read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    return rows("dev.jsonl") + rows("sealed.jsonl")


def test_the_mix_the_issue_asks_for(corpus):
    labels = Counter(r["label"] for r in corpus)
    assert len(corpus) >= 1000 and len({r["writer"] for r in corpus}) >= 6
    assert labels["emergency"] >= 400 and labels["self_harm"] >= 120 and labels["lookalike"] >= 300
    assert labels["defer"] >= 150 and labels["out_of_scope"] >= 100
    assert sum(r["lang"] == "es" for r in corpus) >= 60
    assert sum(bool(r["history"]) for r in corpus) >= 150
    families = Counter(r["family"] for r in corpus if r["label"] == "emergency")
    assert set(families) == FAMILIES and min(families.values()) >= 10
    assert {r["family"] for r in corpus if r["label"] == "self_harm"} == FORMS


def test_every_line_is_a_scorable_gold_item():
    for name in ("dev.jsonl", "sealed.jsonl"):
        gold = load_gold(TRIAGE_GOLD / name)
        assert all(item.writer and item.question.strip() for item in gold.items)
        assert not gold.notes  # no repeated ids


def test_the_sealed_split_shares_no_writer_and_no_message_with_the_tuning_split():
    dev, sealed = rows("dev.jsonl"), rows("sealed.jsonl")
    assert {r["writer"] for r in sealed} and not {r["writer"] for r in sealed} & {r["writer"] for r in dev}
    # "101.6 this time" is the example the writers' brief itself gives for a short follow-up
    assert {r["message"] for r in sealed} & {r["message"] for r in dev} <= {"101.6 this time"}
    assert len({r["writer"] for r in sealed}) >= 2
