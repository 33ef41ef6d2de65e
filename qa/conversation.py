"""Follow-up questions ("how long does it last?") rewritten into self-contained queries from the history."""

from __future__ import annotations

import re
from collections.abc import Sequence

_CONNECTOR = re.compile(r"^\s*(and|also|so|but|then|what about|how about|what if|same for|and what about|ok and|okay and|what else)\b", re.I)
_ANAPHORA = re.compile(r"\b(it|its|it's|that|this|they|them|their|those|these|there|one|he|she|him|her)\b", re.I)
_TOPIC = re.compile(
    r"\b(car.?t|cart|crs|icans|lymphoma|leuka?emia|myeloma|cancer|keytruda|opdivo|checkpoint|immunotherapy|"
    r"infusion|chemo\w*|apheresis|leukapheresis|ivig|transplant|bispecific|tocilizumab|steroids?)\b",
    re.I,
)
MAX_FOLLOWUP_WORDS = 12


def user_turns(history: Sequence) -> list[str]:
    """Earlier user questions from plain strings, {'role', 'content'} messages or (user, bot) pairs."""
    turns: list[str] = []
    for item in history or ():
        if isinstance(item, str):
            turns.append(item)
        elif isinstance(item, dict):
            if item.get("role", "user") == "user" and isinstance(item.get("content"), str):
                turns.append(item["content"])
        elif isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
            turns.append(item[0])
    return [t.strip() for t in turns if t and t.strip()]


def is_followup(question: str, names_concept: bool) -> bool:
    """Short questions that lean on an earlier one: a leading 'and/what about', or a pronoun and no topic."""
    words = question.split()
    if _CONNECTOR.match(question) and len(words) <= MAX_FOLLOWUP_WORDS + 4:
        return True
    if len(words) > MAX_FOLLOWUP_WORDS:
        return False
    has_topic = names_concept or bool(_TOPIC.search(question))
    return not has_topic and (bool(_ANAPHORA.search(question)) or len(words) <= 4)


_QUESTION_OPENER = re.compile(
    r"^\s*(what|how|why|when|where|who|which|is|are|can|could|does|do|will|should|tell me)\b( (is|are|does|do|can|about|long|much|many|often))*\s*",
    re.I,
)


def topic_of(text: str, concepts=lambda text: []) -> str:
    """The subject of an earlier question: its glossary concepts, else the question without its opener."""
    names = list(dict.fromkeys([*concepts(text), *(m.group(0) for m in _TOPIC.finditer(text))]))
    if names:
        return ", ".join(names)
    return _QUESTION_OPENER.sub("", text).strip(" ?.!")


def rewrite_query(question: str, history: Sequence, concepts=lambda text: []) -> str:
    """A self-contained query: the follow-up plus the subject of the latest earlier question that has one.

    >>> rewrite_query("how is it treated?", ["what is CRS?"], lambda t: ["CRS"] if "CRS" in t else [])
    'how is it treated? (CRS)'
    """
    turns = user_turns(history)
    if not turns or not is_followup(question, bool(concepts(question))):
        return question
    for earlier in reversed(turns):
        if concepts(earlier) or _TOPIC.search(earlier) or len(earlier.split()) > 4:
            return f"{question.strip()} ({topic_of(earlier, concepts)})"
    return f"{question.strip()} ({topic_of(turns[-1], concepts)})"


_SENTENCE_END = re.compile(r"(?<=[?.!])\s+|\n+")
_ASKING = re.compile(r"\?|^\s*(what|how|why|when|where|who|which|is|are|can|could|does|do|will|would|should)\b", re.I)
LONG_QUESTION_WORDS = 40


def focus_question(question: str, concepts=lambda text: []) -> str:
    """For a long personal story, the sentences that ask, plus the concepts named anywhere in it.

    Stories bury the question ("...he plays golf twice a week. How well does Breyanzi work?"); searching
    with every word of the story finds articles about golf and chemo history instead.
    """
    if len(question.split()) <= LONG_QUESTION_WORDS:
        return question
    sentences = [s.strip() for s in _SENTENCE_END.split(question) if s and s.strip()]
    asking = [i for i, s in enumerate(sentences) if _ASKING.search(s)]
    if not asking:
        return question
    chosen = asking[-2:]
    focus = " ".join(sentences[i] for i in chosen)
    if _ANAPHORA.search(focus) and chosen[0] > 0:  # "how common is that?" needs the sentence it points to
        focus = f"{sentences[chosen[0] - 1]} {focus}"
    story = " ".join(sentences[: chosen[0]])
    named = [n for n in dict.fromkeys(concepts(story)) if n.lower() not in focus.lower()][:3]
    return f"{focus} ({', '.join(named)})" if named else focus
