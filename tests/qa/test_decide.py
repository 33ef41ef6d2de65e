"""`qa.decide`: every outcome of the triage and the evidence, without an index or a model."""

from __future__ import annotations

from dataclasses import replace

import pytest

from knowledge.settings import AnswerSettings
from qa.answer import Composition
from qa.answerability import TopicCheck
from qa.decide import EMERGENCY_QUESTIONS, decide, needs_evidence
from qa.safety import (
    DEFER_MESSAGE,
    EMERGENCY_MESSAGE,
    EMERGENCY_MESSAGE_ES,
    OUT_OF_SCOPE_MESSAGE,
    SCOPE_EXAMPLES,
    SELF_HARM_MESSAGE,
    Triage,
)
from qa.types import Quote

SETTINGS = AnswerSettings()
QUOTE = Quote(text="Tocilizumab treats CRS.", article="crs", title="CRS", section="Treatment", url="",
              source_path="/articles/crs.md", score=0.9)
STRONG = Composition((QUOTE,), confidence=0.8)
WEAK = Composition((QUOTE,), confidence=0.2)


def test_self_harm_gets_the_crisis_message_alone_without_waiting_for_evidence() -> None:
    triage = Triage("emergency", self_harm=True)
    assert not needs_evidence(triage)
    outcome = decide(triage, None, SETTINGS)
    assert (outcome.kind, outcome.rule, outcome.self_harm) == ("emergency", "self_harm", True)
    assert outcome.notice == SELF_HARM_MESSAGE and outcome.quotes == () and not outcome.abstained


def test_self_harm_wins_over_any_evidence() -> None:
    outcome = decide(Triage("general", self_harm=True), STRONG, SETTINGS)
    assert outcome.rule == "self_harm" and outcome.quotes == ()


def test_out_of_scope_triage_offers_examples_without_evidence() -> None:
    triage = Triage("out_of_scope", in_scope=False)
    assert not needs_evidence(triage)
    outcome = decide(triage, None, SETTINGS)
    assert (outcome.kind, outcome.rule) == ("out_of_scope", "out_of_scope")
    assert outcome.notice == OUT_OF_SCOPE_MESSAGE and outcome.examples == SCOPE_EXAMPLES
    assert outcome.abstained and not outcome.says_not_covered and outcome.quotes == ()


@pytest.mark.parametrize(("confidence", "rule"), [(0.39, "low_scope_confidence"), (0.40, "answered")])
def test_a_question_not_placed_in_scope_needs_the_scope_threshold(confidence: float, rule: str) -> None:
    outcome = decide(Triage("general", in_scope=False), Composition((QUOTE,), confidence), SETTINGS)
    assert outcome.rule == rule
    assert outcome.kind == ("out_of_scope" if rule != "answered" else "general")


def test_a_question_placed_in_scope_is_not_sent_away_for_a_low_confidence() -> None:
    outcome = decide(Triage("general", in_scope=True), Composition((QUOTE,), 0.35), SETTINGS)
    assert (outcome.kind, outcome.rule) == ("general", "answered")


def test_a_general_question_with_strong_evidence_is_answered_with_its_quotes() -> None:
    outcome = decide(Triage("general"), STRONG, SETTINGS)
    assert (outcome.kind, outcome.rule, outcome.quotes) == ("general", "answered", (QUOTE,))
    assert outcome.notice == "" and not outcome.abstained and outcome.fixed_questions == ()


@pytest.mark.parametrize("composition", [WEAK, Composition((), 0.9), Composition((QUOTE,), 0.45, shares_words=False)],
                         ids=["low confidence", "no quote", "no shared word"])
def test_weak_evidence_for_a_general_question_says_the_articles_do_not_cover_it(composition: Composition) -> None:
    outcome = decide(Triage("general"), composition, SETTINGS)
    assert (outcome.kind, outcome.rule) == ("general", "abstained")
    assert outcome.abstained and outcome.says_not_covered and outcome.quotes == ()


def test_an_emergency_keeps_its_urgent_message_and_call_questions_with_or_without_quotes() -> None:
    answered = decide(Triage("emergency", symptoms=("fever",)), STRONG, SETTINGS)
    assert (answered.rule, answered.quotes, answered.notice) == ("answered", (QUOTE,), EMERGENCY_MESSAGE)
    assert answered.fixed_questions == EMERGENCY_QUESTIONS
    weak = decide(Triage("emergency"), WEAK, SETTINGS)
    assert (weak.kind, weak.rule, weak.quotes, weak.notice) == ("emergency", "abstained", (), EMERGENCY_MESSAGE)
    assert weak.fixed_questions == EMERGENCY_QUESTIONS and weak.abstained and not weak.says_not_covered


def test_an_emergency_in_spanish_gets_the_spanish_message() -> None:
    assert decide(Triage("emergency", language="es"), STRONG, SETTINGS).notice == EMERGENCY_MESSAGE_ES


def test_a_personal_decision_defers_to_the_care_team_and_quotes_only_strong_evidence() -> None:
    answered = decide(Triage("defer"), STRONG, SETTINGS)
    assert (answered.kind, answered.quotes, answered.notice) == ("defer", (QUOTE,), DEFER_MESSAGE)
    weak = decide(Triage("defer"), WEAK, SETTINGS)
    assert (weak.kind, weak.quotes, weak.notice) == ("defer", (), DEFER_MESSAGE)
    assert weak.abstained and not weak.says_not_covered and weak.fixed_questions == ()


def test_an_abstain_threshold_of_zero_answers_whatever_the_confidence() -> None:
    never = replace(SETTINGS, abstain_threshold=0.0)
    assert decide(Triage("general"), Composition((QUOTE,), -0.3), never).rule == "answered"
    assert decide(Triage("general"), Composition((), 0.9), never).rule == "abstained"  # nothing to quote


def test_a_question_that_needs_evidence_cannot_be_decided_without_it() -> None:
    assert needs_evidence(Triage("general")) and needs_evidence(Triage("emergency"))
    with pytest.raises(ValueError, match="needs its composed evidence"):
        decide(Triage("general"), None, SETTINGS)


# The topic check: a question about something no article mentions gets "not covered", not an unrelated quote.
TATTOO = TopicCheck(("tattoo",), rarity=0.66)  # needs confidence 0.49 + 0.05 * 0.66 = 0.523


def test_unknown_topic_with_middling_evidence_is_not_covered() -> None:
    outcome = decide(Triage("general", in_scope=True), Composition((QUOTE,), confidence=0.51), SETTINGS, TATTOO)
    assert (outcome.rule, outcome.abstained, outcome.says_not_covered) == ("unknown_topic", True, True)
    assert outcome.quotes == () and outcome.unknown_topic == "tattoo"


def test_unknown_topic_with_strong_evidence_is_answered() -> None:
    outcome = decide(Triage("general", in_scope=True), Composition((QUOTE,), confidence=0.53), SETTINGS, TATTOO)
    assert outcome.rule == "answered" and outcome.quotes == (QUOTE,)


def test_a_question_matching_a_sections_question_key_is_answered_whatever_its_unknown_word() -> None:
    asked_that_way = replace(TATTOO, key_match=SETTINGS.unknown_topic_key_match + 0.01)
    outcome = decide(Triage("general", in_scope=True), Composition((QUOTE,), confidence=0.51), SETTINGS,
                     asked_that_way)
    assert outcome.rule == "answered" and outcome.quotes == (QUOTE,)
    loosely = replace(TATTOO, key_match=SETTINGS.unknown_topic_key_match - 0.01)
    outcome = decide(Triage("general", in_scope=True), Composition((QUOTE,), confidence=0.51), SETTINGS, loosely)
    assert outcome.rule == "unknown_topic"


def test_unknown_topic_never_silences_an_urgent_answer() -> None:
    urgent = Triage("emergency", in_scope=True)
    outcome = decide(urgent, Composition((QUOTE,), confidence=0.40), SETTINGS, TATTOO)
    assert outcome.rule == "answered" and outcome.notice == EMERGENCY_MESSAGE


def test_unknown_topic_check_can_be_turned_off() -> None:
    off = replace(SETTINGS, unknown_topic_base=0.0)
    outcome = decide(Triage("general", in_scope=True), Composition((QUOTE,), confidence=0.40), off, TATTOO)
    assert outcome.rule == "answered"


def test_unknown_topic_in_a_personal_question_keeps_the_care_team_message() -> None:
    outcome = decide(Triage("defer", in_scope=True), Composition((QUOTE,), confidence=0.47), SETTINGS, TATTOO)
    assert (outcome.kind, outcome.rule, outcome.quotes) == ("defer", "unknown_topic", ())
    assert outcome.notice == DEFER_MESSAGE and outcome.says_not_covered
