"""Typo repair against the library's own words, and the shortest word it will touch (a setting)."""

from __future__ import annotations

from knowledge.settings import Settings
from knowledge.spelling import Speller

LIBRARY = ["Mantle cell lymphoma can come back after a release of cytokines; rest and drink water."]


def test_a_typo_one_edit_away_becomes_the_library_word():
    speller = Speller(LIBRARY)
    assert speller.correct("mantel") == "mantle"
    assert speller.correct("realease") == "release"
    assert speller.correct("mantle") is None  # known words are left alone
    assert speller.corrections("Is mantel cell realease bad?") == ["mantle", "release"]


def test_words_shorter_than_the_setting_are_never_corrected():
    assert Speller(LIBRARY).correct("drnk") is None  # 4 letters: under the default of 5
    strict = Speller(LIBRARY, Settings().updated(spelling_min_length=7).retrieval.spelling_min_length)
    assert strict.correct("mantel") is None
    assert strict.correct("realease") == "release"
