"""Typo repair against the corpus's own words ("mantel cell", "realease"), one edit away, SymSpell-style."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from knowledge.settings import RetrievalSettings

_WORD = re.compile(r"[a-z][a-z\-]{3,}")


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


class Speller:
    """Maps an unknown word to the most frequent corpus word within one insertion, deletion or swap."""

    def __init__(self, texts: Iterable[str], min_length: int = RetrievalSettings().spelling_min_length) -> None:
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(_WORD.findall(text.lower()))
        self.counts = counts
        self.min_length = min_length
        self._by_deletion: dict[str, list[str]] = {}
        for word in counts:
            if len(word) >= min_length - 1:
                for variant in _deletions(word) | {word}:
                    self._by_deletion.setdefault(variant, []).append(word)

    def correct(self, word: str) -> str | None:
        """The corpus word this one is probably a typo of, or None if it is known or nothing is close."""
        word = word.lower()
        if len(word) < self.min_length or word in self.counts or not word.isalpha():
            return None
        found: set[str] = set()
        for variant in _deletions(word) | {word}:
            found.update(self._by_deletion.get(variant, ()))
        found = {w for w in found if abs(len(w) - len(word)) <= 1 and w[0] == word[0]}
        return max(found, key=lambda w: (self.counts[w], w)) if found else None

    def corrections(self, text: str) -> list[str]:
        """Corrected forms of the misspelled words in a text, in order."""
        out: list[str] = []
        for word in re.findall(r"[A-Za-z]+", text):
            fixed = self.correct(word)
            if fixed and fixed not in out:
                out.append(fixed)
        return out
