"""The default knowledge base: `patient-qa articles check` on every bundled article, plus what the checker does
not ask of any article (how many articles, their length, the closing questions section) and the glossary."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.article_check import QUESTIONS_HEADING, ArticleReport, check_article
from knowledge.glossary import name_key
from knowledge.loaders import split_front_matter
from knowledge.markdown_sections import heading_lines
from knowledge.yaml_text import load_yaml

KNOWLEDGE_DIR = Path(__file__).resolve().parents[2] / "knowledge"
ARTICLES_DIR = KNOWLEDGE_DIR / "articles"
GLOSSARY = KNOWLEDGE_DIR / "glossary.yaml"

MIN_WORDS, MAX_WORDS = 600, 1500
MIN_ARTICLES, MIN_TOTAL_WORDS = 50, 45_000
MIN_QUESTIONS = 3
MIN_GLOSSARY_ENTRIES = 80

ARTICLE_PATHS = sorted(ARTICLES_DIR.glob("*.md"))


@pytest.fixture(scope="module")
def reports() -> dict[Path, ArticleReport]:
    """The checker's report on every bundled article, made once (the reading grade takes a moment)."""
    return {path: check_article(path) for path in ARTICLE_PATHS}


@pytest.fixture(scope="module")
def glossary() -> list:
    return load_yaml(GLOSSARY.read_text(encoding="utf-8"))


def test_enough_articles_and_words(reports):
    assert len(ARTICLE_PATHS) >= MIN_ARTICLES, f"only {len(ARTICLE_PATHS)} articles in {ARTICLES_DIR}"
    total = sum(r.words for r in reports.values())
    assert total >= MIN_TOTAL_WORDS, f"only {total} words in all articles"


@pytest.mark.parametrize("path", ARTICLE_PATHS, ids=lambda p: p.stem)
def test_the_article_check_passes(reports, path: Path):
    """Front matter, title, sources, reading grade, stand-alone sentences and question keys, as the checker sees them.

    Errors and missing question keys fail the test; a stale review date (as the articles age) or a sentence opening
    with "it" only warns."""
    problems = [f"{f.check}: {f.message}" for f in reports[path].findings
                if f.level == "error" or f.check == "question-keys"]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", ARTICLE_PATHS, ids=lambda p: p.stem)
def test_one_title_and_a_length_a_patient_reads_in_one_sitting(reports, path: Path):
    _, body = split_front_matter(path.read_text(encoding="utf-8"))
    titles = [text for level, text in heading_lines(body).values() if level == 1]
    assert len(titles) == 1, f"expected exactly one '#' title, found {len(titles)}"
    words = reports[path].words
    assert MIN_WORDS <= words <= MAX_WORDS, f"{words} words (allowed {MIN_WORDS}-{MAX_WORDS})"


@pytest.mark.parametrize("path", ARTICLE_PATHS, ids=lambda p: p.stem)
def test_ends_with_questions_section(path: Path):
    _, body = split_front_matter(path.read_text(encoding="utf-8"))
    headings = heading_lines(body)
    sections = [(text, i) for i, (level, text) in headings.items() if level == 2]
    assert sections, "no '##' sections"
    last, start = sections[-1]
    assert last == QUESTIONS_HEADING, f"last '##' section is {last!r}, expected {QUESTIONS_HEADING!r}"
    assert max(headings) == start, "headings after the questions section"
    lines = body.split("\n")[start + 1 :]
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


def test_glossary_no_duplicate_variants(glossary):
    """A variant belongs to one entry only (compared as the glossary does, ignoring case, hyphens and spaces)."""
    terms = {name_key(str(e["term"])): e["term"] for e in glossary}
    assert len(terms) == len(glossary), "two glossary entries have the same term"
    owner: dict[str, str] = {}
    clashes = []
    for entry in glossary:
        seen_here = set()
        for variant in entry.get("variants") or []:
            key = name_key(variant)
            if variant.strip().lower() in seen_here:
                clashes.append(f"{variant!r} twice in {entry['term']!r}")
            seen_here.add(variant.strip().lower())
            if key in owner and owner[key] != entry["term"]:
                clashes.append(f"{variant!r} in both {owner[key]!r} and {entry['term']!r}")
            owner.setdefault(key, entry["term"])
            if key in terms and terms[key] != entry["term"]:
                clashes.append(f"variant {variant!r} of {entry['term']!r} is the term {terms[key]!r}")
    assert not clashes, "duplicate glossary variants:\n" + "\n".join(clashes)
