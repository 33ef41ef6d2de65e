"""Uncovered-topic (`abstain`) gold items: "not covered" or an on-topic quote passes, an unrelated quote fails (fast)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from eval_fixtures import quote, result

from eval.gold import GoldFormatError, parse_item
from eval.scoring import headline, score


def _abstain(item_id: str, triage: str, quotes=(), abstained: bool = False):
    base = result(item_id, "abstain", triage, quotes=quotes, abstained=abstained)
    return replace(base, item=replace(base.item, topic_terms=r"tattoo|\bink\b"))


def test_parse_needs_topic_terms_and_a_valid_regex():
    item = parse_item({"kind": "abstain", "question": "can i get a tattoo", "topic_terms": "tattoo|tatoo"})
    assert item.kind == "abstain" and item.expected_triage == "general" and item.topic_terms == "tattoo|tatoo"
    with pytest.raises(GoldFormatError, match="topic_terms"):
        parse_item({"kind": "abstain", "question": "can i get a tattoo"})
    with pytest.raises(GoldFormatError, match="not a valid regular expression"):
        parse_item({"kind": "abstain", "question": "can i get a tattoo", "topic_terms": "tattoo("})


def test_not_covered_passes():
    assert _abstain("a", "general", abstained=True).failures() == []


def test_scope_or_care_team_message_also_passes():
    assert _abstain("b", "out_of_scope", abstained=True).failures() == []
    assert _abstain("b2", "defer", abstained=True).failures() == []


def test_on_topic_quote_passes_and_an_unrelated_quote_fails():
    on_topic = _abstain("c", "general", quotes=(quote("Wait 6 months before a tattoo after CAR-T."),))
    assert on_topic.on_topic and on_topic.failures() == []
    unrelated = _abstain("d", "general", quotes=(quote("Tell every doctor you had CAR-T."),))
    assert unrelated.on_topic is False
    assert any("off-topic" in reason for reason in unrelated.failures())


def test_answerability_figures():
    results = [
        _abstain("a", "general", abstained=True),
        _abstain("d", "general", quotes=(quote("Tell every doctor you had CAR-T."),)),
        result("covered", "answer", "general", quotes=(quote("CRS starts within days."),), facts=("within days",)),
        result("silenced", "answer", "general", facts=("within days",), abstained=True),
    ]
    metrics = score(results)
    assert metrics["answerability"]["uncovered_handled"] == {"hits": 1, "total": 2, "rate": 0.5}
    assert metrics["answerability"]["false_abstention"]["rate"] == 0.5
    figures = headline(metrics)
    assert figures["uncovered_handled"] == 0.5 and figures["false_abstention_rate"] == 0.5
