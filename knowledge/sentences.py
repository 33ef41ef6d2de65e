"""Sentence boundaries as character offsets, so quotes are exact spans of the stored text.

Hand-written rather than a library: the offsets must be exact, the rules are few (abbreviations,
decimals, list items, hard-wrapped lines), and it runs over every sentence of every build.
"""

from __future__ import annotations

import re

# Tokens that end in a period without ending a sentence (compared lowercase, without the period).
ABBREVIATIONS = frozenset(
    """dr mr mrs ms prof sr jr st vs etc e.g i.e cf al fig figs approx no nos vol ch sec dept inc ltd
    co corp jan feb mar apr jun jul aug sep sept oct nov dec mt ft u.s u.k a.m p.m ph.d m.d b.c
    mg ml kg mcg dl mm cm approx est avg max min""".split()
)

_LIST_ITEM = re.compile(r"\n[ \t]*(?:[-*+•]|\d{1,3}[.)])[ \t]+")
_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_END = re.compile(r"""[.!?]+["'”’)\]]*(?=\s)""")
_MARKER = re.compile(r"(?:[-*+•]|\d{1,3}[.)])[ \t]+")
_NUMBER_MARKER = re.compile(r"\d{1,3}[.)]")


def _blocks(text: str) -> list[tuple[int, int]]:
    """Paragraphs and list items: boundaries no sentence crosses."""
    cuts = {0, len(text)}
    for pattern in (_PARAGRAPH, _LIST_ITEM):
        for match in pattern.finditer(text):
            cuts.add(match.start() + 1)
    ordered = sorted(cuts)
    return [(a, b) for a, b in zip(ordered, ordered[1:]) if text[a:b].strip()]


def _is_abbreviation(text: str, end: int) -> bool:
    """True when the period at text[end-1] closes an abbreviation or an initial, not a sentence."""
    start = end - 1
    while start > 0 and not text[start - 1].isspace() and text[start - 1] not in "([\"'":
        start -= 1
    word = text[start : end - 1].lower()
    return word in ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Return (start, end) offsets of the sentences in `text`, trimmed of whitespace and list markers.

    >>> t = "CRS is common. Dr. Lee said so.\\n- Call at once."
    >>> [t[s:e] for s, e in split_sentences(t)]
    ['CRS is common.', 'Dr. Lee said so.', 'Call at once.']
    """
    spans: list[tuple[int, int]] = []
    for block_start, block_end in _blocks(text):
        start = block_start
        for match in _END.finditer(text, block_start, block_end):
            end = match.end()
            nxt = text[end:block_end].lstrip()
            if not nxt:
                continue
            if _NUMBER_MARKER.fullmatch(text[start:end].strip()):
                continue  # a list item's number ("2. Take it"), not a sentence of its own
            if match.group().startswith(".") and len(match.group()) == 1 and _is_abbreviation(text, end):
                continue
            if not (nxt[0].isupper() or nxt[0].isdigit() or nxt[0] in "\"'“‘([*_"):
                continue
            spans.append((start, end))
            start = end
        spans.append((start, block_end))
    return [trimmed for span in spans if (trimmed := _trim(text, span))]


def _trim(text: str, span: tuple[int, int]) -> tuple[int, int] | None:
    """Drop surrounding whitespace and a leading list marker; None if nothing is left."""
    start, end = span
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    marker = _MARKER.match(text, start, end)
    if marker:
        start = marker.end()
    return (start, end) if end - start >= 2 and any(c.isalnum() for c in text[start:end]) else None
