"""Safety triage before retrieval: emergency, defer, out_of_scope or general, from rules in triage_rules.yaml."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

RULES_PATH = Path(__file__).with_name("triage_rules.yaml")

EMERGENCY_MESSAGE = (
    "**If this is happening now, call your treatment center's 24-hour number right away.** "
    "If it is severe — trouble breathing, chest pain, a seizure, fainting, or new confusion or "
    "trouble speaking — **call 911 (or your local emergency number) now.** "
    "Tell them you had CAR-T or immunotherapy and show your wallet card."
)
SELF_HARM_MESSAGE = (
    "**You matter, and you don't have to go through this alone. If you might act on these thoughts, "
    "call 911 now.** In the US you can also call or text **988** (Suicide & Crisis Lifeline) any time, "
    "and please tell your care team how you are feeling."
)
DEFER_MESSAGE = (
    "**This is a decision for your care team.** Only they know your full situation, so please ask them "
    "before changing, skipping or adding anything. Here is general information that may help you ask."
)
OUT_OF_SCOPE_MESSAGE = (
    "I can only answer questions about CAR-T cell therapy and other cancer immunotherapies, using our "
    "patient articles. For other health questions, please ask your doctor or pharmacist."
)
SCOPE_EXAMPLES = (
    "What is cytokine release syndrome and how is it treated?",
    "How long do I need to stay near the treatment center after CAR-T?",
    "What side effects can checkpoint inhibitors cause?",
)


@dataclass(frozen=True)
class Triage:
    """The triage decision and why: the rule groups that fired."""

    kind: str
    symptoms: tuple[str, ...] = ()
    self_harm: bool = False
    in_scope: bool = True
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Rules:
    symptoms: dict[str, tuple[re.Pattern, ...]]
    groups: dict[str, tuple[re.Pattern, ...]]


def load_rules(path: Path | None = None) -> _Rules:
    """The triage rules (default: triage_rules.yaml beside this module), compiled once per file."""
    return _compile_rules(path or RULES_PATH)


@lru_cache(maxsize=4)
def _compile_rules(path: Path) -> _Rules:
    import yaml

    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    compile_all = lambda items: tuple(re.compile(p, re.I) for p in items or ())  # noqa: E731
    symptoms = {name: compile_all(items) for name, items in (raw.get("symptoms") or {}).items()}
    groups = {key: compile_all(value) for key, value in raw.items() if key != "symptoms"}
    return _Rules(symptoms, groups)


def normalise(text: str) -> str:
    """Lowercase, straight apostrophes, single spaces: what the rules are written against."""
    text = text.replace("’", "'").replace("‘", "'").replace("`", "'").replace("“", '"').replace("”", '"')
    return re.sub(r"\s+", " ", text.lower()).strip()


_CLAUSE = re.compile(r"[.!?;]+(?=\s|$)|\n+|,\s+|\s+(?:and|but|so|because|plus)\s+(?=(?:now|then|today|tonight|he|she|i|my|his|her|we|it|they)\b)")


def _any(patterns: tuple[re.Pattern, ...], text: str) -> bool:
    return any(p.search(text) for p in patterns)


def _symptoms_in(text: str, rules: _Rules) -> list[str]:
    return [name for name, patterns in rules.symptoms.items() if _any(patterns, text)]


def describes_symptom_now(text: str, rules: _Rules | None = None) -> tuple[str, ...]:
    """Symptoms that a clause of `text` states as happening to a real person now or recently."""
    rules = rules or load_rules()
    g = rules.groups
    found: list[str] = []
    clauses = [c for c in _CLAUSE.split(text) if c and c.strip()]
    # "My wife had CAR-T 5 days ago. Now she is confused": the person and the time can sit in other clauses.
    recent = _any(g["recent_time"], text)
    personal_now = _any(g["now"], text) and _any(g["present"], text)
    for clause in clauses:
        names = _symptoms_in(clause, rules)
        if not names:
            continue
        if _any(g["hypothetical"], clause) or _any(g["distant_past"], clause):
            continue
        clause_now = _any(g["now"], clause) and _any(g["present"], clause)
        if recent or clause_now or personal_now:
            found.extend(n for n in names if n not in found)
    return tuple(found)


def is_small_talk(question: str) -> bool:
    """'hi', 'thank you', 'help': answered with a friendly prompt instead of quotes."""
    return _any(load_rules().groups.get("small_talk", ()), normalise(question))


def triage(question: str, history: list[str] | tuple[str, ...] = (), glossary=None) -> Triage:
    """Decide how to answer: emergencies first, then personal decisions, then scope."""
    rules = load_rules()
    g = rules.groups
    text = normalise(question)
    if _any(g["self_harm"], text):
        return Triage("emergency", self_harm=True, reasons=("self_harm",))
    symptoms = describes_symptom_now(text, rules)
    if symptoms:
        return Triage("emergency", symptoms=symptoms, reasons=("symptom_now",))
    context = " ".join([*(normalise(h) for h in history[-2:]), text])
    # A glossary hit on a generic word ("infection") is weak evidence; one on "CRS" or "Keytruda" is strong.
    named = [m.name for m in glossary.find(context)] if glossary else []
    strong = _any(g["in_scope"], context) or any(not _any(g["weak_in_scope"], n.lower()) for n in named)
    in_scope = strong or _any(g["weak_in_scope"], context)
    elsewhere = _any(g["off_topic"], text) or _any(g["other_medical"], text)
    if elsewhere and not strong:
        return Triage("out_of_scope", in_scope=False, reasons=("off_topic",))
    if _any(g["defer"], text):
        return Triage("defer", in_scope=in_scope, reasons=("decision",))
    return Triage("general", in_scope=in_scope)
