"""Off-topic questions get "not covered", covered ones with a typo or another name still get their quote.

The steps `Assistant.ask` runs after retrieval (compose, the topic check, decide) on a fake store, no model: the
retrieved sentence and its chunk are equally close to the question in both cases, so only the question's words
decide.
"""

from __future__ import annotations

import pytest
from fake_store import FakeStore, S, retrieved

from knowledge.lexical import tokenize
from knowledge.settings import AnswerSettings
from knowledge.spelling import Speller
from qa.answer import compose
from qa.answerability import LibraryWords, check_topic
from qa.decide import decide
from qa.safety import Triage

SETTINGS = AnswerSettings()
LYMPHOMA = "CAR-T can now be used as early as the second treatment for large B-cell lymphoma."
TOCILIZUMAB = "Tocilizumab (Actemra) treats cytokine release syndrome and often works within hours."
GLOSSARY_NAMES = {"actemra", "tocilizumab", "crs", "car-t", "cart"}


@pytest.fixture()
def store() -> FakeStore:
    store = FakeStore()
    store.add("car-t-lymphoma", ["When is CAR-T used for large B-cell lymphoma?"], [S(LYMPHOMA, 0.5)],
              section_start=True)
    store.add("cytokine-release-syndrome", ["How is CRS treated?"], [S(TOCILIZUMAB, 0.5)], section_start=True)
    store.keys = {"cytokine-release-syndrome": {"How is CRS treated?": ("what do they give for crs",)}}
    return store


def _library(store: FakeStore) -> LibraryWords:
    texts = [c.text for c in store.all_chunks()] + [" ".join(c.heading_path) for c in store.all_chunks()]
    speller = Speller(texts)
    return LibraryWords(" ".join(texts).lower().replace(".", " ").split(), tokenize(" ".join(texts)),
                        lambda word: word in GLOSSARY_NAMES, speller.correct)


def _ask(store: FakeStore, question: str, doc: str):
    chunk = next(c for c in store.all_chunks() if c.doc_id == doc)
    composition = compose(retrieved(chunk, dense=0.5, query=question), store, question, SETTINGS)
    assert composition.confidence == pytest.approx(0.5, abs=1e-6)  # middling evidence, the same for every question
    return decide(Triage("general", in_scope=True), composition, SETTINGS,
                  check_topic(question, _library(store), SETTINGS.everyday_zipf))


def test_an_off_topic_question_is_not_answered_with_the_nearest_sentence(store) -> None:
    outcome = _ask(store, "my husband had car t for lymphoma 4 months ago, when can he get back in the hot tub?",
                   "car-t-lymphoma")
    assert outcome.abstained and outcome.says_not_covered and outcome.quotes == ()
    assert outcome.unknown_topic == "tub"  # what the answer names: 'Our articles do not mention "tub"'


@pytest.mark.parametrize("question", [
    "how fast does toclizumab work for crs",  # a typo of a word the articles use
    "how fast does actemra work after car t",  # the glossary's other name for it
    "what do they give for CRS",  # a section's question key
])
def test_a_covered_question_with_a_typo_or_another_name_is_answered(store, question) -> None:
    outcome = _ask(store, question, "cytokine-release-syndrome")
    assert outcome.rule == "answered" and not outcome.abstained
    assert [q.text for q in outcome.quotes] == [TOCILIZUMAB]
