"""Triage layers without the embedding model: features, the self-harm lexicon, language, the shipped model files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qa import safety
from qa.language import detect_language
from qa.triage_features import HASH_SIZE, default_cues, hashed_ngrams, join_context, normalise, split_sentences
from qa.triage_model import DEFAULT_META, HEADS, TriageModelError, load_model


def test_ngrams_are_deterministic_unit_length_and_survive_typos():
    indices, values = hashed_ngrams(normalise("My temprature is 38.9 and I have the shakes"))
    again, same = hashed_ngrams(normalise("My temprature is 38.9 and I have the shakes"))
    assert np.array_equal(indices, again) and np.array_equal(values, same)
    assert indices.max() < HASH_SIZE
    assert np.linalg.norm(values) == pytest.approx(1.0, abs=1e-5)
    typo = set(hashed_ngrams("temprature")[0].tolist())
    right = set(hashed_ngrams("temperature")[0].tolist())
    assert len(typo & right) >= 5  # a typo keeps most of its character n-grams


def test_accents_do_not_change_the_ngrams():
    assert np.array_equal(hashed_ngrams("convulsión")[0], hashed_ngrams("convulsion")[0])


@pytest.mark.parametrize(("text", "cue"), [
    ("temp 38.6 since this morning", "temp_fever"),
    ("101.6 this time", "temp_fever"),
    ("fiebre de 39", "temp_fever"),
    ("37.4 today, feel fine", "temp_normal"),
    ("last year I had CRS", "past"),
    ("my friend from the support group had a seizure", "other_story"),
    ("what if he gets confused at home", "hypothetical"),
    ("no fever and I feel fine", "negation"),
])
def test_cues_fire_on_their_class_of_wording(text, cue):
    cues = default_cues()
    assert cues.vector(normalise(text))[cues.names.index(cue)] == 1.0


def test_a_platelet_count_is_not_a_temperature():
    cues = default_cues()
    assert cues.vector(normalise("platelets 38 today"))[cues.names.index("temp_fever")] == 0.0


def test_sentences_and_context():
    assert split_sentences("How far ahead do I book? Is coffee ok. I want to die") == [
        "How far ahead do I book?", "Is coffee ok.", "I want to die"]
    assert join_context(["she had kymriah last week", "she is tired"], "101.6 this time") == (
        "she had kymriah last week . she is tired . 101.6 this time")


@pytest.mark.parametrize("message", [
    "I want to kill myself",
    "some nights I hope I just don't wake up",
    "everyone would be better off without me",
    "I've been saving up my oxycodone, there's enough now",
    "I took all my sleeping pills an hour ago",
    "my dad said he wants to end it all tonight",
    "How much is parking? Do I bring my own food? Honestly I don't want to live anymore.",
    "Ya no quiero vivir, estoy cansada de todo",
    "quiero quitarme la vida",
    "He said he would drive his truck into the lake",
])
def test_self_harm_lexicon_reads_every_sentence_and_spanish(message):
    assert safety.self_harm_said(message)


@pytest.mark.parametrize("message", [
    "the wait is killing me",
    "I'm dying to know when I can drive again",
    "when does the treatment end?",
    "can I take all my pills at once in the morning or spread them out?",
    "I feel down and scared about relapse",
])
def test_self_harm_lexicon_leaves_idioms_alone(message):
    assert not safety.self_harm_said(message)


def test_triage_without_a_model_still_puts_self_harm_first_in_the_persons_language():
    decision = safety.triage("¿Cuánto cuesta el estacionamiento? No quiero seguir viviendo.")
    assert decision.kind == "emergency" and decision.self_harm
    assert decision.language == "es"
    assert "988" in decision.notice and "2 para español" in decision.notice and "911" in decision.notice
    english = safety.triage("I keep thinking about ending my life")
    assert english.self_harm and "988" in english.notice and "not alone" in english.notice


@pytest.mark.parametrize(("text", "language"), [
    ("mi esposo tiene fiebre de 39 desde anoche", "es"),
    ("fiebre", "es"),
    ("my husband has had a fever since last night", "en"),
    ("temp 38.5 now", "en"),
])
def test_language(text, language):
    assert detect_language(text) == language


def test_the_shipped_model_loads_and_never_saw_the_sealed_writers():
    model = load_model()
    assert model.embedding_dim == 384 and model.embedding_model == "all-MiniLM-L6-v2"
    meta = json.loads(DEFAULT_META.read_text(encoding="utf-8"))
    sealed = {json.loads(line)["writer"] for line in
              (DEFAULT_META.parent.parent / "eval/gold/triage/sealed.jsonl").read_text(encoding="utf-8").splitlines()}
    assert sealed and not sealed & set(meta["trained_on"]["writers"])
    t = model.thresholds
    assert 0 < t.emergency <= 0.5 and 0 < t.self_harm <= 0.5  # safety heads lean to recall


def test_a_model_for_another_embedding_size_says_how_to_fix_it():
    model = load_model()
    with pytest.raises(TriageModelError, match="patient-qa triage train"):
        model.scores("fever", np.zeros(128, dtype=np.float32))


def test_missing_model_files_give_an_actionable_error(tmp_path):
    with pytest.raises(TriageModelError, match="triage train"):
        load_model(tmp_path / "nope.npz", tmp_path / "nope.json")


def test_model_scores_are_probabilities_per_head():
    model = load_model()
    vector = np.zeros(model.embedding_dim, dtype=np.float32)
    vector[0] = 1.0
    scores = model.scores(normalise("temp 39.4 and shaking, day 5 after yescarta"), vector)
    assert all(0.0 <= scores.get(h) <= 1.0 for h in HEADS)


@pytest.mark.parametrize(("message", "alarm"), [
    ("I feel sad all the time, not thinking to hurt myself", False),
    ("she's not suicidal or anything, just low", False),
    ("I'm not suicidal but I took all my pills an hour ago", True),
    ("i dont want to hurt myself but i keep thinking about how to end my life", True),
])
def test_an_explicit_denial_is_not_a_crisis_but_hides_nothing_else(message, alarm):
    assert safety.self_harm_said(message) is alarm


@pytest.mark.parametrize(("question", "kind"), [
    ("I have type 2 diabetes, no cancer or anything like that. What's a good breakfast?", "out_of_scope"),
    ("does cancer immunotherapy change how my diabetes is managed?", "general"),
    ("¿Qué es la aféresis y cuánto tiempo dura?", "general"),
])
def test_scope_reads_denials_and_spanish_topic_words(question, kind):
    from knowledge.glossary import load_glossary
    from knowledge.settings import DEFAULT_GLOSSARY

    assert safety.triage(question, glossary=load_glossary(DEFAULT_GLOSSARY)).kind == kind
