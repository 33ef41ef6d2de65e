"""Follow-up questions ("how long does it last?") rewritten into self-contained queries from the history."""

from __future__ import annotations

import re
from collections.abc import Sequence

from knowledge.settings import ConversationSettings

_CONNECTOR = re.compile(r"^\s*(and|also|so|but|then|what about|how about|what if|same for|and what about|ok and|okay and|what else)\b", re.I)
_ANAPHORA = re.compile(r"\b(it|its|it's|that|this|they|them|their|those|these|there|one|he|she|him|her)\b", re.I)
_TOPIC = re.compile(
    r"\b(car.?t|cart|crs|icans|lymphoma|leuka?emia|myeloma|cancer|keytruda|opdivo|checkpoint|immunotherapy|"
    r"infusion|chemo\w*|apheresis|leukapheresis|ivig|transplant|bispecific|tocilizumab|steroids?)\b",
    re.I,
)


def user_turns(history: Sequence) -> list[str]:
    """Earlier user questions from plain strings, {'role', 'content'} messages or (user, bot) pairs."""
    turns: list[str] = []
    for item in history or ():
        if isinstance(item, str):
            turns.append(item)
        elif isinstance(item, dict):
            content = item.get("content")
            if isinstance(content, list):  # Gradio 6 messages: [{"type": "text", "text": ...}]
                content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
            if item.get("role", "user") == "user" and isinstance(content, str):
                turns.append(content)
        elif isinstance(item, (list, tuple)) and item and isinstance(item[0], str):
            turns.append(item[0])
    return [t.strip() for t in turns if t and t.strip()]


def is_followup(question: str, names_concept: bool, settings: ConversationSettings = ConversationSettings()) -> bool:
    """Short questions that lean on an earlier one: a leading 'and/what about', or a pronoun and no topic."""
    words = question.split()
    if _CONNECTOR.match(question) and len(words) <= settings.followup_max_words + 4:
        return True
    if len(words) > settings.followup_max_words:
        return False
    has_topic = names_concept or bool(_TOPIC.search(question))
    if _ANAPHORA.search(question):  # "why does CAR-T cause it?" still points back
        return not has_topic or len(words) <= settings.followup_pointer_max_words
    return not has_topic and len(words) <= 4


_QUESTION_OPENER = re.compile(
    r"^\s*(what|how|why|when|where|who|which|is|are|can|could|does|do|will|should|tell me)\b( (is|are|does|do|can|about|long|much|many|often))*\s*",
    re.I,
)


def topic_of(text: str) -> str:
    """The subject of an earlier question: the question without its opener ("what is HLH?" -> "HLH")."""
    return _QUESTION_OPENER.sub("", text).strip(" ?.!") or text.strip()


def _swap_last_concept(earlier: str, replacement: str, concepts) -> str | None:
    """'which CAR-T is approved for lymphoma' + 'myeloma' -> '... approved for myeloma' (None if no concept)."""
    lowered = earlier.lower()
    spans = []
    for name in [*concepts(earlier), *(m.group(0) for m in _TOPIC.finditer(earlier))]:
        at = lowered.rfind(name.lower())
        if at >= 0:
            spans.append((at, at + len(name)))
    if not spans:
        return None
    start, end = max(spans)
    return f"{earlier[:start]}{replacement}{earlier[end:]}"


def rewrite_query(question: str, history: Sequence, concepts=lambda text: [],
                  settings: ConversationSettings = ConversationSettings()) -> str:
    """A self-contained query: the follow-up plus the subject of the conversation so far.

    Earlier turns are resolved first, so a chain of follow-ups keeps its subject.

    >>> rewrite_query("how is it treated?", ["what is CRS?"])
    'how is it treated? (CRS)'
    """
    resolved: list[str] = []
    for turn in user_turns(history):
        resolved.append(_rewrite_one(turn, resolved, concepts, settings))
    return _rewrite_one(question, resolved, concepts, settings)


def _rewrite_one(question: str, resolved: list[str], concepts, settings: ConversationSettings) -> str:
    own = [*concepts(question), *(m.group(0) for m in _TOPIC.finditer(question))]
    if not resolved or not is_followup(question, bool(own), settings):
        return question
    earlier = resolved[-1]
    # "and for myeloma?" asks the earlier question about a new subject; after a statement ("my mom gets carvykti
    # for her myeloma") there is no question to ask again, and "what about the side effects" asks about its subject.
    if own and _CONNECTOR.match(question) and _ASKING.search(earlier):
        swapped = _swap_last_concept(earlier, ", ".join(dict.fromkeys(own)), concepts)
        if swapped:
            return swapped
    return f"{question.strip()} ({topic_of(earlier)})"


_SENTENCE_END = re.compile(r"(?<=[?.!])\s+|\n+")
_ASKING = re.compile(r"\?|^\s*(what|how|why|when|where|who|which|is|are|can|could|does|do|will|would|should)\b", re.I)
def focus_question(question: str, concepts=lambda text: [],
                   settings: ConversationSettings = ConversationSettings()) -> str:
    """For a long personal story, the sentences that ask, plus the concepts named anywhere in it.

    Stories bury the question ("...he plays golf twice a week. How well does Breyanzi work?"); searching
    with every word of the story finds articles about golf and chemo history instead.
    """
    if len(question.split()) <= settings.long_question_words:
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
