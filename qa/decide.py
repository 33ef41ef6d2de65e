"""What to show for a question, decided from the triage and the evidence alone: a pure function, tested without an index.

The rules, in order:
1. self-harm: the crisis message alone, nothing to read past it (no retrieval);
2. triaged out of scope: the scope message and example questions (no retrieval);
3. a general question the triage did not place in scope, with weak evidence: out of scope after all;
4. a general or personal (defer) question about a topic word no article uses (`qa.answerability`), unless the
   evidence is strong enough for how rare the word is: "not covered", naming the word (a personal question keeps
   its care-team message); an urgent one keeps its when-to-call quotes;
5. weak evidence (no quote, confidence below `abstain_threshold`, or no shared informative word and confidence
   below `no_shared_words_threshold`): no quotes; a general question says so, an urgent or personal one keeps
   its safety message;
6. otherwise the quotes, under the triage's message (urgent or care-team) if any.
"""

from __future__ import annotations

from dataclasses import dataclass

from knowledge.settings import AnswerSettings
from qa.answer import Composition
from qa.answerability import TopicCheck
from qa.safety import OUT_OF_SCOPE_MESSAGE, SCOPE_EXAMPLES, Triage
from qa.types import Quote

EMERGENCY_QUESTIONS = (
    "What number do I call at night or on weekends, and what should I have ready when I call?",
    "Which symptoms mean I should call 911 instead of the treatment center?",
)


@dataclass(frozen=True)
class Outcome:
    """The decision: what kind of answer, which quotes, which message; `rule` names the rule that decided."""

    kind: str  # general, emergency, defer or out_of_scope: the Answer's triage
    rule: str  # self_harm, out_of_scope, low_scope_confidence, unknown_topic, abstained or answered
    quotes: tuple[Quote, ...] = ()
    notice: str = ""
    examples: tuple[str, ...] = ()  # example questions offered instead of an answer
    fixed_questions: tuple[str, ...] = ()  # care-team questions that replace the articles' suggestions
    abstained: bool = False  # no answer from the articles (the Answer's `abstained`)
    says_not_covered: bool = False  # show "our articles don't cover this" (a general question abstained)
    self_harm: bool = False
    unknown_topic: str = ""  # the topic word no article uses, when that is why the articles cannot answer


def needs_evidence(triage: Triage) -> bool:
    """Whether the decision depends on what retrieval finds; self-harm and out-of-scope never wait for it."""
    return not triage.self_harm and triage.kind != "out_of_scope"


def is_weak(composition: Composition, settings: AnswerSettings) -> bool:
    """Evidence too weak to quote: nothing quotable, low confidence, or no informative word in common and not strong.

    A threshold of 0 turns its check off (a confidence below 0 counts as 0).
    """
    confidence = max(composition.confidence, 0.0)
    return (
        not composition.quotes
        or confidence < settings.abstain_threshold
        or (not composition.shares_words and confidence < settings.no_shared_words_threshold)
    )


def decide(triage: Triage, composition: Composition | None, settings: AnswerSettings,
           topic: TopicCheck = TopicCheck()) -> Outcome:
    """The outcome for a triaged question and its composed evidence (None when `needs_evidence` is False).

    `topic` holds the question's words that no article uses (`qa.answerability.check_topic`).
    """
    if triage.self_harm:
        return Outcome("emergency", "self_harm", notice=triage.notice, self_harm=True)
    if triage.kind == "out_of_scope":
        return _out_of_scope("out_of_scope")
    if composition is None:
        raise ValueError(f"a '{triage.kind}' question needs its composed evidence to be decided")
    weak = is_weak(composition, settings)
    fixed = EMERGENCY_QUESTIONS if triage.kind == "emergency" else ()
    if triage.kind == "general" and not triage.in_scope and max(composition.confidence, 0.0) < settings.scope_threshold:
        return _out_of_scope("low_scope_confidence")
    if (triage.kind in ("general", "defer") and settings.unknown_topic_base > 0 and not weak
            and not topic.answerable(max(composition.confidence, 0.0), settings.unknown_topic_base,
                                     settings.unknown_topic_slope, settings.unknown_topic_key_match)):
        return Outcome(triage.kind, "unknown_topic", notice=triage.notice, abstained=True, says_not_covered=True,
                       unknown_topic=topic.unknown[0])
    if weak:
        return Outcome(triage.kind, "abstained", notice=triage.notice, fixed_questions=fixed, abstained=True,
                       says_not_covered=triage.kind == "general")
    return Outcome(triage.kind, "answered", quotes=composition.quotes, notice=triage.notice, fixed_questions=fixed)


def _out_of_scope(rule: str) -> Outcome:
    return Outcome("out_of_scope", rule, notice=OUT_OF_SCOPE_MESSAGE, examples=SCOPE_EXAMPLES, abstained=True)
