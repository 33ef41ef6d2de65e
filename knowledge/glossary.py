"""The glossary data file: abbreviations, brand/generic names and lay words, for query expansion and definitions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


@dataclass(frozen=True)
class GlossaryEntry:
    """One concept: its canonical term, the other ways people write it, and a plain definition."""

    term: str
    variants: tuple[str, ...]
    definition: str
    case_sensitive: frozenset[str] = frozenset()

    @property
    def names(self) -> tuple[str, ...]:
        return (self.term, *self.variants)


@dataclass(frozen=True)
class GlossaryMatch:
    """A glossary name found in a text, at [start, end)."""

    entry: GlossaryEntry
    name: str
    start: int
    end: int


class Glossary:
    """Finds glossary names in text with one compiled pattern (longest names first)."""

    def __init__(self, entries: list[GlossaryEntry]) -> None:
        self.entries = entries
        by_name: dict[str, GlossaryEntry] = {}
        exact: dict[str, GlossaryEntry] = {}
        for entry in entries:
            for name in entry.names:
                (exact if name in entry.case_sensitive else by_name).setdefault(
                    name if name in entry.case_sensitive else name_key(name), entry
                )
        self._by_name, self._exact = by_name, exact
        self._pattern = _compile(sorted(by_name, key=len, reverse=True), re.I)
        self._exact_pattern = _compile(sorted(exact, key=len, reverse=True), 0)

    def find(self, text: str) -> list[GlossaryMatch]:
        """Non-overlapping glossary names in `text`, in order."""
        found: list[GlossaryMatch] = []
        taken: list[tuple[int, int]] = []
        for pattern, table, key in ((self._exact_pattern, self._exact, str), (self._pattern, self._by_name, name_key)):
            if pattern is None:
                continue
            for match in pattern.finditer(text):
                span = match.span(1)
                if any(a < span[1] and span[0] < b for a, b in taken):
                    continue
                entry = table.get(key(match.group(1)))
                if entry:
                    taken.append(span)
                    found.append(GlossaryMatch(entry, match.group(1), *span))
        return sorted(found, key=lambda m: m.start)

    def expansions(self, text: str, limit: int = 4) -> list[str]:
        """Other names of the concepts named in `text` (canonical term first), for query expansion."""
        lowered = text.lower()
        extra: list[str] = []
        for match in self.find(text):
            for name in match.entry.names[: limit + 1]:
                if name.lower() not in lowered and name not in extra:
                    extra.append(name)
        return extra


def name_key(name: str) -> str:
    """How the glossary compares names: lowercase, runs of spaces and hyphens as one space ('CAR-T' == 'car t')."""
    return re.sub(r"[\s\-]+", " ", name.lower()).strip()


def _compile(names: list[str], flags: int) -> re.Pattern | None:
    """One alternation; spaces and hyphens in names match either ('car t' finds 'CAR-T')."""
    if not names:
        return None
    parts = [r"[\s\-]+".join(re.escape(word) for word in re.split(r"[\s\-]+", name)) for name in names]
    return re.compile(r"(?<![\w])(" + "|".join(parts) + r")(?![\w])", flags)


def _entry(raw: dict) -> GlossaryEntry:
    variants = tuple(str(v) for v in raw.get("variants") or ())
    return GlossaryEntry(
        term=str(raw["term"]),
        variants=variants,
        definition=str(raw.get("definition", "")).strip(),
        case_sensitive=frozenset(str(v) for v in raw.get("case_sensitive") or ()),
    )


@lru_cache(maxsize=4)
def load_glossary(path: Path) -> Glossary:
    """Parse the YAML list of {term, variants, definition, case_sensitive?} entries."""
    from knowledge.yaml_text import load_yaml

    raw = load_yaml(Path(path).read_text(encoding="utf-8")) or []
    return Glossary([_entry(item) for item in raw if isinstance(item, dict) and item.get("term")])
