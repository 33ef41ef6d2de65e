"""Everyday "is X ok on my treatment?" questions do not alarm; a red flag mentioned in passing still does.

The messages are the blind writers' own (w21-w23 in eval/gold/triage/dev.jsonl), read by id, never invented
here. Only the triage runs (the shipped model over MiniLM vectors): no index is built.
"""

from __future__ import annotations

import json

import pytest

from eval.gold import TRIAGE_GOLD

pytestmark = pytest.mark.slow  # loads the embedding model (a few seconds; no index)

EVERYDAY = ("w21-3", "w21-58", "w21-67", "w21-116", "w22-28", "w22-31", "w23-18", "w23-31")
IN_PASSING = ("w21-19", "w21-66", "w21-92", "w21-102", "w22-96", "w22-103", "w22-107", "w23-116")


def corpus_messages(ids: tuple[str, ...]) -> list[dict]:
    rows = {}
    for line in (TRIAGE_GOLD / "dev.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["id"] in ids:
            rows[row["id"]] = row
    assert set(rows) == set(ids), f"missing from the corpus: {set(ids) - set(rows)}"
    return [rows[i] for i in ids]


@pytest.fixture(scope="module")
def decide():
    from knowledge.embedding import shared_embedder
    from knowledge.settings import DEFAULT_MODEL
    from qa import safety
    from qa.triage_model import load_model

    embedder, model = shared_embedder(DEFAULT_MODEL, 1), load_model()
    return lambda row: safety.triage(row["message"], row["history"], embed=embedder.encode_query, model=model)


@pytest.mark.parametrize("row", corpus_messages(EVERYDAY), ids=EVERYDAY)
def test_an_everyday_question_on_treatment_gets_no_alarm(decide, row):
    assert row["label"] == "general"
    decision = decide(row)
    assert decision.kind != "emergency" and not decision.self_harm, decision.reasons


@pytest.mark.parametrize("row", corpus_messages(IN_PASSING), ids=IN_PASSING)
def test_a_red_flag_mentioned_in_passing_is_still_an_emergency(decide, row):
    assert row["label"] == "emergency"
    assert decide(row).kind == "emergency"
