"""Checks on the default knowledge base: article format and size, and the glossary (fast, no model)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import yaml

from knowledge.loaders import split_front_matter

KNOWLEDGE_DIR = Path(__file__).resolve().parents[2] / "knowledge"
ARTICLES_DIR = KNOWLEDGE_DIR / "articles"
GLOSSARY = KNOWLEDGE_DIR / "glossary.yaml"

AUDIENCES = {"patients", "caregivers", "both"}
MIN_WORDS, MAX_WORDS = 600, 1500
MIN_ARTICLES, MIN_TOTAL_WORDS = 50, 45_000
QUESTIONS_HEADING = "Questions to ask your care team"
MIN_QUESTIONS = 3
MIN_GLOSSARY_ENTRIES = 80

ARTICLE_PATHS = sorted(ARTICLES_DIR.glob("*.md"))
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_URL = re.compile(r"^https?://\S+$")


def _article(path: Path) -> tuple[dict, str]:
    return split_front_matter(path.read_text(encoding="utf-8"))


def _word_count(body: str) -> int:
    return len(body.split())


def _headings(body: str) -> list[tuple[int, str, int]]:
    """(level, text, line index) for each ATX heading outside code fences."""
    found, in_fence = [], False
    for i, line in enumerate(body.split("\n")):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            continue
        match = None if in_fence else _HEADING.match(line)
        if match:
            found.append((len(match.group(1)), match.group(2).strip(), i))
    return found


@pytest.fixture(scope="module")
def glossary() -> list:
    return yaml.safe_load(GLOSSARY.read_text(encoding="utf-8"))


def test_enough_articles_and_words():
    assert len(ARTICLE_PATHS) >= MIN_ARTICLES, f"only {len(ARTICLE_PATHS)} articles in {ARTICLES_DIR}"
    total = sum(_word_count(_article(p)[1]) for p in ARTICLE_PATHS)
    assert total >= MIN_TOTAL_WORDS, f"only {total} words in all articles"


@pytest.mark.parametrize("path", ARTICLE_PATHS, ids=lambda p: p.stem)
def test_front_matter(path: Path):
    meta, _ = _article(path)
    assert meta, "no YAML front matter"
    for key in ("title", "summary"):
        assert isinstance(meta.get(key), str) and meta[key].strip(), f"{key} missing or empty"
    topics = meta.get("topics")
    assert isinstance(topics, list) and topics, "topics must be a non-empty list"
    assert all(isinstance(t, str) and t.strip() for t in topics), "topics must be strings"
    assert meta.get("audience") in AUDIENCES, f"audience {meta.get('audience')!r} not in {sorted(AUDIENCES)}"
    reviewed = meta.get("reviewed")
    if not isinstance(reviewed, dt.date):
        dt.date.fromisoformat(str(reviewed))  # raises if not an ISO date
    sources = meta.get("sources")
    assert isinstance(sources, list) and sources, "sources must be a non-empty list"
    bad = [s for s in sources if not isinstance(s, str) or not _URL.match(s.strip())]
    assert not bad, f"sources that are not http(s) URLs: {bad}"


@pytest.mark.parametrize("path", ARTICLE_PATHS, ids=lambda p: p.stem)
def test_one_title_matching_front_matter(path: Path):
    meta, body = _article(path)
    titles = [text for level, text, _ in _headings(body) if level == 1]
    assert len(titles) == 1, f"expected exactly one '#' title, found {len(titles)}"
    assert titles[0] == str(meta.get("title", "")).strip(), "'#' title differs from front-matter title"


@pytest.mark.parametrize("path", ARTICLE_PATHS, ids=lambda p: p.stem)
def test_word_count_in_range(path: Path):
    words = _word_count(_article(path)[1])
    assert MIN_WORDS <= words <= MAX_WORDS, f"{words} words (allowed {MIN_WORDS}-{MAX_WORDS})"


@pytest.mark.parametrize("path", ARTICLE_PATHS, ids=lambda p: p.stem)
def test_ends_with_questions_section(path: Path):
    _, body = _article(path)
    sections = [(text, i) for level, text, i in _headings(body) if level == 2]
    assert sections, "no '##' sections"
    last, start = sections[-1]
    assert last == QUESTIONS_HEADING, f"last '##' section is {last!r}, expected {QUESTIONS_HEADING!r}"
    lines = body.split("\n")[start + 1 :]
    assert not any(_HEADING.match(line) for line in lines), "headings after the questions section"
    bullets = [line.strip()[2:].strip() for line in lines if line.strip().startswith(("- ", "* "))]
    questions = [b for b in bullets if b.endswith("?")]
    assert len(questions) >= MIN_QUESTIONS, f"only {len(questions)} bullet questions ending in '?'"
    assert len(questions) == len(bullets), "every bullet in the questions section should end with '?'"


def test_glossary_entries(glossary):
    assert isinstance(glossary, list), "glossary must be a YAML list of entries"
    assert len(glossary) >= MIN_GLOSSARY_ENTRIES, f"only {len(glossary)} glossary entries"
    for entry in glossary:
        assert isinstance(entry, dict), f"entry is not a mapping: {entry!r}"
        term = entry.get("term")
        assert isinstance(term, str) and term.strip(), f"entry without a term: {entry!r}"
        variants = entry.get("variants")
        assert isinstance(variants, list), f"{term}: variants must be a list"
        assert all(isinstance(v, str) and v.strip() for v in variants), f"{term}: empty or non-string variant"
        definition = entry.get("definition")
        assert isinstance(definition, str) and definition.strip(), f"{term}: definition missing"
        assert "\n" not in definition.strip(), f"{term}: definition must be one line"
        case_sensitive = entry.get("case_sensitive", [])
        assert isinstance(case_sensitive, list) and set(case_sensitive) <= set(variants), (
            f"{term}: case_sensitive must list some of the entry's variants"
        )


def _variant_key(name: str) -> str:
    """How the glossary compares names: lowercase, with runs of spaces and hyphens as one space ('CAR-T' == 'car t')."""
    return re.sub(r"[\s\-]+", " ", name.lower()).strip()


def test_glossary_no_duplicate_variants(glossary):
    """A variant belongs to one entry only (compared as the glossary does, ignoring case, hyphens and spaces)."""
    terms = {_variant_key(str(e["term"])): e["term"] for e in glossary}
    assert len(terms) == len(glossary), "two glossary entries have the same term"
    owner: dict[str, str] = {}
    clashes = []
    for entry in glossary:
        seen_here = set()
        for variant in entry.get("variants") or []:
            key = _variant_key(variant)
            if variant.strip().lower() in seen_here:
                clashes.append(f"{variant!r} twice in {entry['term']!r}")
            seen_here.add(variant.strip().lower())
            if key in owner and owner[key] != entry["term"]:
                clashes.append(f"{variant!r} in both {owner[key]!r} and {entry['term']!r}")
            owner.setdefault(key, entry["term"])
            if key in terms and terms[key] != entry["term"]:
                clashes.append(f"variant {variant!r} of {entry['term']!r} is the term {terms[key]!r}")
    assert not clashes, "duplicate glossary variants:\n" + "\n".join(clashes)
