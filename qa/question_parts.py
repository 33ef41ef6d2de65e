"""Split a question that asks two things ("is that right and how long does the infusion take?") into its parts.

One quote slot is kept for the best sentence of each part: scored against the whole question, a two-part
question's quotes all answer the part with the most words, and a story told before the question ("my myeloma
came back and I feel devastated. how do people cope?") outweighs the question itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from knowledge.lexical import tokenize

_SENTENCE_END = re.compile(r"(?<=[?.!])\s+|\n+")
_OPENER = r"(?:what|how|why|when|where|who|which|is|are|can|could|does|do|did|will|would|should|shall)\b"
# "... and how long does it take", "... or is it forever": a new question starts after and/or/but
_JOINED_QUESTION = re.compile(rf",?\s+(?:and|or|but|also|plus)\s+(?={_OPENER})", re.I)
_TRAILING_NOTES = re.compile(r"(\s*\([^()]*(\([^()]*\)[^()]*)*\))+\s*$")  # "(CRS)" added by a rewrite or the speller


_ASKING = re.compile(rf"\?|^\s*{_OPENER}", re.I)


@dataclass(frozen=True)
class QuestionPart:
    """One thing the question asks (or tells), with its embedding."""

    text: str
    vector: np.ndarray
    asks: bool = True  # a question ("how long does it take?"), not a story ("my mom starts abecma next month")


def split_parts(question: str, min_words: int = 2, max_parts: int = 3) -> tuple[tuple[str, bool], ...]:
    """The clauses of a question that asks or tells more than one thing, each with whether it asks; () for one.

    A clause with fewer than `min_words` content words ("is that right") joins the clause before it, which
    says what it is about; at most `max_parts` clauses are kept, the last ones (the question usually comes last).

    >>> split_parts("the doctor said car t is one treatment. is that right and how long does the infusion take?")
    (('the doctor said car t is one treatment. is that right', True), ('how long does the infusion take?', True))
    """
    notes = _TRAILING_NOTES.search(question)
    body = question[: notes.start()] if notes else question
    clauses = [c.strip() for sentence in _SENTENCE_END.split(body) if sentence and sentence.strip()
               for c in _JOINED_QUESTION.split(sentence.strip()) if c and c.strip()]
    parts: list[tuple[str, bool]] = []
    for clause in clauses:
        asks = bool(_ASKING.search(clause))
        if parts and (len(tokenize(clause)) < min_words or len(tokenize(parts[-1][0])) < min_words):
            parts[-1] = (f"{parts[-1][0]} {clause}", parts[-1][1] or asks)
        else:
            parts.append((clause, asks))
    parts = [p for p in parts if len(tokenize(p[0])) >= min_words][-max_parts:]
    return tuple(parts) if len(parts) >= 2 else ()
