"""The topic check: a question about something no article mentions is not answered with an unrelated quote (fast, no model)."""

from __future__ import annotations

import pytest

from knowledge.lexical import tokenize
from knowledge.spelling import Speller
from qa.answerability import LibraryWords, TopicCheck, check_topic

LIBRARY_TEXT = (
    "CAR-T cell therapy can cause cytokine release syndrome, a fever and chills. Lymphodepleting chemotherapy can dull your appetite; it "
    "comes first. Wash raw vegetables and avoid sushi while blood counts are low. Tocilizumab treats CRS. "
    "Swimming pools can spread germs. Ask your care team before you travel or get a vaccine."
)
GLOSSARY_NAMES = {"actemra", "crs", "car-t", "cart"}
EVERYDAY = 4.8


@pytest.fixture(scope="module")
def library() -> LibraryWords:
    speller = Speller([LIBRARY_TEXT])
    return LibraryWords(LIBRARY_TEXT.lower().replace(".", " ").replace(",", " ").split(), tokenize(LIBRARY_TEXT),
                        lambda w: w in GLOSSARY_NAMES, speller.correct)


@pytest.mark.parametrize("question", [
    "can i eat sushi after car t",
    "my husband got cart, does the chemo make you lose your appetite",  # chemo is the start of chemotherapy
    "is actemra the same as toclizumab",  # a glossary name and a typo of a library word
    "how long does the fever last, actually? my wife says it is really bad",  # chat words are not topics
    "cant she go swimming yet? shes home",  # contractions without apostrophes, inflections
    "is it ok to travel",
])
def test_questions_in_the_library_words_have_no_unknown_topic(library, question):
    assert check_topic(question, library, EVERYDAY) == TopicCheck()


@pytest.mark.parametrize("question, word", [
    ("can i get a tattoo 3 months after car t", "tattoo"),
    ("is a hot tub or sauna ok after cart", "sauna"),
    ("my daughter bought me turmeric capsules, ok with car-t?", "turmeric"),
    ("can I restart allergy shots for ragweed", "ragweed"),
])
def test_a_topic_no_article_mentions_is_found(library, question, word):
    found = check_topic(question, library, EVERYDAY)
    assert word in found.unknown
    assert found.rarity > 0


def test_rarest_word_first_and_rarity_from_it(library):
    found = check_topic("turmeric or a tattoo", library, EVERYDAY)
    assert found.unknown[0] == "turmeric"  # rarer in English than "tattoo"
    assert found.rarity == pytest.approx(EVERYDAY - 2.87, abs=0.2)


def test_strong_evidence_still_answers_a_question_with_an_unknown_word():
    found = TopicCheck(("revlimid",), rarity=4.8)
    assert not found.answerable(confidence=0.55, base=0.45, slope=0.05)  # needs 0.69
    assert found.answerable(confidence=0.70, base=0.45, slope=0.05)
    assert TopicCheck().answerable(confidence=0.0, base=0.45, slope=0.05)  # nothing unknown: not this check's call


def test_a_real_word_is_not_read_as_a_typo_or_the_start_of_a_library_word() -> None:
    text = "Bring your driver's license and insurance card. Tocilizumab treats CRS. Ask about the application."
    words = LibraryWords(text.lower().replace(".", " ").split(), tokenize(text), lambda w: False,
                         Speller([text]).correct, typo_max_zipf=3.0)
    found = check_topic("my daughter came home with lice, is the apple cider rinse ok", words, EVERYDAY)
    assert {"lice", "apple"} <= set(found.unknown)  # not "license", not "application"
    assert check_topic("does toclizumab work fast", words, EVERYDAY) == TopicCheck()  # a real typo still is one
