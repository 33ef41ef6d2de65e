"""`patient-qa articles check`: what a maintainer sees for a good article and for each kind of problem (fast, no model)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from knowledge.article_check import Rules, check_article, opening_pointer, source_problem
from ui.cli import main

TODAY = dt.date(2026, 11, 29)
GOOD_BODY = """
# Eating well after CAR-T

Many people lose their appetite after CAR-T cell therapy. Small meals every few hours can help you eat enough.
Your care team can tell you which foods are safe while your blood counts are low.

## Which foods should I avoid?

Raw or undercooked meat, eggs and fish can carry germs that are risky when blood counts are low.
Wash fruit and vegetables well before you eat them.

## Questions to ask your care team

- Which foods should I avoid, and for how long?
- Can I eat at restaurants?
- Should I see a dietitian?
"""
GOOD_META = """---
title: "Eating well after CAR-T"
summary: "How to eat safely while blood counts are low."
topics: [food, diet]
audience: patients
reviewed: 2026-10-01
sources:
  - https://www.cancer.gov/about-cancer/treatment/side-effects/appetite-loss
questions:
  "Which foods should I avoid?":
    - can i eat sushi after car t
    - what foods are off limits after cart
    - my husband had car-t, can he have runny eggs
    - is deli meat ok with low counts
---
"""


def _write(tmp_path: Path, text: str, name: str = "article.md") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _checks(report) -> set[tuple[str, str]]:
    return {(f.level, f.check) for f in report.findings}


def test_a_good_article_has_no_findings(tmp_path):
    report = check_article(_write(tmp_path, GOOD_META + GOOD_BODY), Rules(today=TODAY))
    assert report.findings == (), report.findings
    assert report.title == "Eating well after CAR-T"
    assert report.grade is not None and report.grade <= 8


@pytest.mark.parametrize("url, reason", [
    ("https://en.wikipedia.org/wiki/CAR_T_cell", "blocklist"),
    ("https://www.droracle.ai/articles/123", "blocklist"),
    ("http://47.251.13.51:8081/39887747", "bare IP"),
    ("ftp://example.org/file", "not an http(s) URL"),
])
def test_untrusted_sources_are_errors(url, reason):
    assert reason in source_problem(url)


def test_trusted_sources_pass():
    assert source_problem("https://www.fda.gov/vaccines-blood-biologics/kymriah") is None
    assert source_problem("https://notwikipedia.org.example.com/page") is None  # only the host and its subdomains


def test_blocked_source_in_an_article_is_an_error(tmp_path):
    text = GOOD_META.replace("https://www.cancer.gov/about-cancer/treatment/side-effects/appetite-loss",
                             "https://eatsip365.com/car-t-foods")
    report = check_article(_write(tmp_path, text + GOOD_BODY), Rules(today=TODAY))
    assert ("error", "sources") in _checks(report)


def test_stale_review_date_is_a_warning_only(tmp_path):
    text = GOOD_META.replace("reviewed: 2026-10-01", "reviewed: 2025-06-01")
    report = check_article(_write(tmp_path, text + GOOD_BODY), Rules(today=TODAY))
    assert _checks(report) == {("warning", "stale")}
    assert report.errors == 0


def test_missing_front_matter_fields_are_errors(tmp_path):
    text = GOOD_META.replace('summary: "How to eat safely while blood counts are low."\n', "").replace(
        "audience: patients", "audience: doctors")
    messages = [f.message for f in check_article(_write(tmp_path, text + GOOD_BODY), Rules(today=TODAY)).findings]
    assert any("`summary:`" in m for m in messages)
    assert any("`audience:`" in m for m in messages)


def test_no_front_matter_at_all(tmp_path):
    report = check_article(_write(tmp_path, GOOD_BODY), Rules(today=TODAY))
    assert report.errors == 1 and "no YAML front matter" in report.findings[0].message


@pytest.mark.parametrize("sentence, expected", [
    ("These can last for weeks.", ("error", "these")),
    ("That study found fewer side effects.", ("error", "that")),
    ("However, they usually go away.", ("error", "they")),
    ("In addition, those symptoms need a call.", ("error", "those")),
    ("- Another reason is that the cells fade.", ("error", "another")),
    ("Both can cause a fever.", ("error", "both")),
    ("It usually starts within a week.", ("warning", "it")),
    ("Both patients and caregivers need rest.", None),
    ("CRS usually starts within a week of the infusion.", None),
    ("Thin hair often grows back.", None),
])
def test_sentences_that_point_back(sentence, expected):
    assert opening_pointer(sentence) == expected


def test_pointing_sentence_is_reported_with_its_line(tmp_path):
    body = GOOD_BODY.replace("Wash fruit", "These germs are killed by cooking. Wash fruit")
    report = check_article(_write(tmp_path, GOOD_META + body), Rules(today=TODAY))
    lone = [f for f in report.findings if f.check == "stands-alone"]
    assert len(lone) == 1 and lone[0].level == "error" and '"These germs' in lone[0].message
    file_lines = (GOOD_META + body).split("\n")
    assert "These germs" in file_lines[lone[0].line - 1]  # the line an editor shows


def test_hard_reading_grade_is_an_error(tmp_path):
    body = GOOD_BODY.replace(
        "Wash fruit and vegetables well before you eat them.",
        "Immunocompromised individuals experiencing chemotherapy-associated neutropenia should meticulously avoid "
        "unpasteurized dairy preparations, inadequately refrigerated charcuterie, and insufficiently "
        "thermally-processed shellfish, notwithstanding considerable gastronomic inconvenience and dissatisfaction.")
    report = check_article(_write(tmp_path, GOOD_META + body), Rules(today=TODAY, max_grade=6.0))
    assert ("error", "reading-grade") in _checks(report)


def test_question_keys_missing_or_naming_a_heading_that_is_not_there(tmp_path):
    text = GOOD_META.replace('"Which foods should I avoid?"', '"Which foods are banned?"')
    report = check_article(_write(tmp_path, text + GOOD_BODY), Rules(today=TODAY))
    messages = [f.message for f in report.findings if f.check == "question-keys"]
    assert any("not a '##' heading" in m for m in messages)  # a stale key is an error: it would attach nowhere
    assert any("has 0 question keys" in m for m in messages)


def test_cli_exit_codes_and_json(tmp_path, capsys):
    good = _write(tmp_path, GOOD_META + GOOD_BODY, "good.md")
    assert main(["articles", "check", str(good), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["errors"] == 0 and data["articles"][0]["path"] == str(good)

    stale = _write(tmp_path, GOOD_META.replace("2026-10-01", "2020-01-01") + GOOD_BODY, "stale.md")
    assert main(["articles", "check", str(stale)]) == 0  # warnings alone do not fail
    out = capsys.readouterr().out
    assert "1 warnings" in out and "--warnings" in out

    _write(tmp_path, GOOD_META + GOOD_BODY.replace("Wash fruit", "They wash fruit"), "bad.md")
    assert main(["articles", "check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "bad.md" in out and 'opens with "they"' in out


def test_cli_missing_folder_is_one_line(tmp_path, capsys):
    assert main(["articles", "check", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("patient-qa: ") and "does not exist" in err and "Traceback" not in err


# The bundled articles are checked with `check_article` in tests/knowledge/test_articles.py, one test per article.
