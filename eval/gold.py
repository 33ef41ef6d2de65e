"""Gold sets: read the dev shape (`kind`, `facts`) and the medquad shape (`gold_article`, `gold_answer`) into `GoldItem`s."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

from knowledge.errors import PatientQAError

KINDS = ("answer", "followup", "emergency", "self_harm", "not_emergency", "defer", "out_of_scope", "abstain")
# The triage each kind of item should get; an `answer` item that comes back `emergency` is a false alarm.
EXPECTED_TRIAGE = {
    "answer": "general",
    "followup": "general",
    "not_emergency": "general",
    "emergency": "emergency",
    "self_harm": "emergency",
    "defer": "defer",
    "out_of_scope": "out_of_scope",
    "abstain": "general",  # in scope, but on a topic no article covers: "not covered" or an on-topic quote
}
DEFAULT_GOLD = Path(__file__).resolve().parent / "gold" / "default.jsonl"
TRIAGE_GOLD = Path(__file__).resolve().parent / "gold" / "triage"
# The blind-written triage corpus labels messages; these are the gold kinds they are scored as.
TRIAGE_LABEL_KIND = {
    "emergency": "emergency",
    "self_harm": "self_harm",
    "lookalike": "not_emergency",
    "defer": "defer",
    "out_of_scope": "out_of_scope",
    "general": "answer",
}


class GoldFormatError(PatientQAError, ValueError):
    """A gold file line that cannot be scored; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class GoldItem:
    """One question with what a correct answer must show."""

    id: str
    kind: str
    question: str
    history: tuple[str, ...] = ()
    facts: tuple[str, ...] = ()
    category: str = ""
    gold_article: str | None = None
    gold_answer: str | None = None
    family: str = ""  # triage corpus: red-flag family or self-harm form
    writer: str = ""  # triage corpus: who wrote it (the sealed split is by writer)
    lang: str = "en"
    topic_terms: str = ""  # abstain items: a regex that any sentence truly answering the question must match

    @property
    def expected_triage(self) -> str:
        return EXPECTED_TRIAGE[self.kind]

    @property
    def scores_facts(self) -> bool:
        """Fact hit is scored (and gated) for answer and follow-up items that carry facts."""
        return self.kind in ("answer", "followup") and bool(self.facts)


@dataclass(frozen=True)
class GoldSet:
    """A loaded gold file: its items, where it came from and which shape it is in."""

    path: str
    items: tuple[GoldItem, ...]
    shape: str  # "dev" (kinds and facts) or "medquad" (gold_article and gold_answer)
    notes: tuple[str, ...] = ()  # things worth knowing that did not stop the run (repeated ids)


def load_gold(path: Path) -> GoldSet:
    """Read a JSONL gold file; every bad line is reported at once with its line number.

    A repeated id (MedQuAD has a few) is kept as its own item under `id#2`, with a note, so every question counts.
    """
    path = Path(path)
    if not path.exists():
        raise GoldFormatError(f"no gold file at {path}; give one with --gold FILE.jsonl")
    items: list[GoldItem] = []
    problems: list[str] = []
    seen: set[str] = set()
    renamed: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = parse_item(json.loads(line), number)
        except ValueError as err:  # JSONDecodeError and GoldFormatError are both ValueErrors
            problems.append(f"line {number}: {err}")
            continue
        if item.id in seen:
            unique = next(f"{item.id}#{n}" for n in range(2, 10_000) if f"{item.id}#{n}" not in seen)
            renamed.append(f"line {number}: repeated id '{item.id}' scored as '{unique}'")
            item = replace(item, id=unique)
        seen.add(item.id)
        items.append(item)
    if problems:
        shown = "\n  ".join(problems[:10])
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise GoldFormatError(f"{path} has {len(problems)} bad line(s):\n  {shown}{more}")
    if not items:
        raise GoldFormatError(f"{path} holds no gold items (one JSON object per line)")
    shape = "medquad" if all(i.gold_answer is not None and not i.facts for i in items) else "dev"
    return GoldSet(str(path), tuple(items), shape, tuple(renamed))


def parse_item(data: object, number: int = 0) -> GoldItem:
    """One JSON object as a GoldItem; items without `kind` but with `gold_answer` are medquad-shaped answers."""
    if not isinstance(data, dict):
        raise GoldFormatError("expected a JSON object")
    if "label" in data and "message" in data:  # the triage corpus shape (eval/gold/triage)
        label = data.get("label")
        if label not in TRIAGE_LABEL_KIND:
            raise GoldFormatError(f'"label" must be one of {", ".join(TRIAGE_LABEL_KIND)} (got {label!r})')
        data = {**data, "question": data["message"], "kind": TRIAGE_LABEL_KIND[label],
                "category": data.get("family") or label}
    question = data.get("question")
    if not isinstance(question, str) or not question.strip():
        raise GoldFormatError('needs a non-empty "question" string')
    kind = data.get("kind") or ("answer" if "gold_answer" in data else None)
    if kind not in KINDS:
        raise GoldFormatError(f'"kind" must be one of {", ".join(KINDS)} (got {kind!r})')
    facts = data.get("facts") or []
    if not isinstance(facts, list) or not all(isinstance(f, str) for f in facts):
        raise GoldFormatError('"facts" must be a list of regular expressions')
    for fact in facts:
        try:
            re.compile(fact)
        except re.error as err:
            raise GoldFormatError(f"fact {fact!r} is not a valid regular expression ({err})") from None
    history = data.get("history") or []
    if not isinstance(history, list) or not all(isinstance(h, str) for h in history):
        raise GoldFormatError('"history" must be a list of earlier questions')
    topic_terms = data.get("topic_terms") or ""
    if kind == "abstain" and not (isinstance(topic_terms, str) and topic_terms.strip()):
        raise GoldFormatError('an "abstain" item needs "topic_terms": a regex any on-topic sentence matches')
    if topic_terms:
        try:
            re.compile(str(topic_terms))
        except re.error as err:
            raise GoldFormatError(f"topic_terms {topic_terms!r} is not a valid regular expression ({err})") from None
    gold_article = data.get("gold_article")
    gold_answer = data.get("gold_answer")
    return GoldItem(
        id=str(data.get("id") or f"line-{number}"),
        kind=kind,
        question=question,
        history=tuple(history),
        facts=tuple(facts),
        category=str(data.get("category") or data.get("qtype") or kind),
        gold_article=str(gold_article) if gold_article else None,
        gold_answer=str(gold_answer) if isinstance(gold_answer, str) else None,
        family=str(data.get("family") or ""),
        writer=str(data.get("writer") or ""),
        lang=str(data.get("lang") or "en"),
        topic_terms=str(topic_terms),
    )
