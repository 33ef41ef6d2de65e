"""Whether the library can answer at all: a question about a topic no article mentions gets "not covered", never an unrelated quote.

A patient who asks "can I get a tattoo after CAR-T?" of a library that never says "tattoo" is asking about
something it cannot answer, however well "after CAR-T" matches. The signal that generalises is the topic
word itself: a word the library does not know (not as written, not as a typo of a library word, not as a
glossary name) that is also not an everyday English word ("actually", "wife", "really" are chat, not topic).
Such a word lowers the trust in the evidence: the answer must then be stronger, the rarer the word.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

from knowledge.lexical import tokenize

# Apostrophe-less contractions patients type ("cant", "shes"): everyday words that no frequency list spells this way.
CONTRACTIONS = frozenset(
    "cant dont wont isnt arent wasnt werent doesnt didnt hasnt havent hadnt couldnt shouldnt wouldnt mustnt "
    "im ive id ill youre youve youd theyre theyve weve were hes shes thats whats wheres hows whos lets its".split()
)
_WORD = re.compile(r"[a-z][a-z'\-]*[a-z]|[a-z]")


@lru_cache(maxsize=4096)
def english_zipf(word: str) -> float:
    """How common a word is in everyday English (Zipf scale: 7 = "the", 3 = rare, 0 = unknown), from wordfreq."""
    from wordfreq import zipf_frequency  # lazy: only questions with a word the library does not know need it

    return float(zipf_frequency(word, "en", wordlist="best"))


@dataclass(frozen=True)
class TopicCheck:
    """The question's topic words that no article uses, rarest first, and how rare the rarest is."""

    unknown: tuple[str, ...] = ()
    rarity: float = 0.0  # everyday_zipf minus the rarest unknown word's Zipf frequency; 0 when none
    key_match: float = -1.0  # the best cosine between the question and any section's question key

    def answerable(self, confidence: float, base: float, slope: float, key_match_floor: float = 2.0) -> bool:
        """Evidence must be stronger the rarer the unknown topic word: confidence >= base + slope * rarity; unless
        the question closely matches a way patients ask some section, which then answers it whatever its words."""
        return not self.unknown or confidence >= base + slope * self.rarity or self.key_match >= key_match_floor


class LibraryWords:
    """Every word the library uses: as written, as a stem, as a glossary name, or one typo away from one.

    A word at least `typo_max_zipf` common in English is read as itself: "lice" is not a shortened "license", nor
    "apple" the start of "application", however close they look (a real typo such as "toclizumab" is rare).
    """

    def __init__(self, words: Iterable[str], stems: Iterable[str], is_glossary_name: Callable[[str], bool],
                 correct: Callable[[str], str | None], typo_max_zipf: float = 8.0) -> None:
        self.words = frozenset(w.lower() for w in words)
        self.stems = frozenset(stems)
        self._sorted_stems = sorted(self.stems)
        self._is_glossary_name = is_glossary_name
        self._correct = correct
        self.typo_max_zipf = typo_max_zipf

    def _stem_known(self, stem: str) -> bool:
        """A stem the library has, or (4+ letters) the start of one: "chemo" is in "chemotherapi"."""
        if stem in self.stems:
            return True
        if len(stem) < 4:
            return False
        i = bisect.bisect_left(self._sorted_stems, stem)
        return i < len(self._sorted_stems) and self._sorted_stems[i].startswith(stem)

    def knows(self, word: str) -> bool:
        """Whether the library uses this word in any form a patient might type."""
        word = word.lower().strip("'-")
        if not word or word in self.words:
            return True
        stems = tokenize(word)
        if not stems:  # a stop word
            return True
        if all(s in self.stems for s in stems) or self._is_glossary_name(word):
            return True
        if english_zipf(word) >= self.typo_max_zipf:  # a real word of its own, not a typo or a prefix
            return False
        if all(self._stem_known(s) for s in stems):
            return True
        fixed = self._correct(word)
        return fixed is not None and all(self._stem_known(s) for s in tokenize(fixed))


def everyday(word: str, everyday_zipf: float) -> bool:
    """Chat words ("actually", "wife", "moms", "cant") say nothing about the topic."""
    if word in CONTRACTIONS or english_zipf(word) >= everyday_zipf:
        return True
    return word.endswith("s") and english_zipf(word[:-1]) >= everyday_zipf


def check_topic(question: str, library: LibraryWords, everyday_zipf: float) -> TopicCheck:
    """The question's words that the library never uses and that are not everyday English."""
    unknown: dict[str, float] = {}
    for word in dict.fromkeys(_WORD.findall(question.lower())):
        if len(word) < 3 or library.knows(word) or everyday(word, everyday_zipf):
            continue
        unknown[word] = english_zipf(word)
    if not unknown:
        return TopicCheck()
    ordered = sorted(unknown, key=lambda w: (unknown[w], w))
    return TopicCheck(tuple(ordered), round(max(0.0, everyday_zipf - unknown[ordered[0]]), 3))
