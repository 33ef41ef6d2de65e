"""Quotes are re-checked against the source file itself: verbatim after whitespace normalisation, section exists."""

from __future__ import annotations

from eval.faithfulness import SourceChecker

ARTICLE = """---
title: Cytokine release syndrome
---

# Cytokine release syndrome

## What CRS is

Cytokine release syndrome (CRS) is the most common
side effect of CAR-T.   It often starts with a fever.

## When to call

Call your team right away.
"""


def _checker(tmp_path):
    (tmp_path / "crs.md").write_text(ARTICLE, encoding="utf-8")
    return SourceChecker(base=tmp_path)


def test_a_quote_that_only_differs_in_whitespace_is_verbatim(tmp_path):
    check = _checker(tmp_path).check("Cytokine release syndrome (CRS) is the most common side effect of CAR-T.  It often",
                                     "crs.md", "What CRS is")
    assert check.ok and check.problem == ""


def test_an_altered_quote_is_not_verbatim(tmp_path):
    check = _checker(tmp_path).check("CRS is the rarest side effect of CAR-T.", "crs.md", "What CRS is")
    assert not check.verbatim and check.section_exists
    assert "not found verbatim" in check.problem


def test_a_cited_section_must_be_a_heading_or_the_title(tmp_path):
    checker = _checker(tmp_path)
    assert checker.check("Call your team right away.", "crs.md", "When to call").ok
    assert checker.check("Call your team right away.", "crs.md", "Cytokine release syndrome").section_exists
    wrong = checker.check("Call your team right away.", "crs.md", "Side effects")
    assert wrong.verbatim and not wrong.section_exists and "'Side effects'" in wrong.problem


def test_absolute_paths_and_missing_files(tmp_path):
    checker = _checker(tmp_path)
    assert checker.check("Call your team right away.", str(tmp_path / "crs.md"), "When to call").ok
    missing = checker.check("anything", "gone.md", "When to call")
    assert not missing.ok and "does not exist" in missing.problem
