"""Markdown, HTML and plain-text loading: metadata, titles, sections and what must never reach the index."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.loaders import (
    LoadError,
    load_document,
    load_html,
    load_markdown,
    load_plain_text,
)

ARTICLE = """---
title: "Cytokine release syndrome (CRS)"
summary: Fever and low blood pressure in the first weeks after CAR-T.
url: https://example.org/crs
reviewed: 2025-03-01
sources:
  - https://www.cancer.gov/crs
  - https://example.org/nurses
topics: [side-effects, crs]
---

# Cytokine release syndrome

CRS is the most common side effect of CAR-T. It usually starts in the first week.

## Signs

Fever is usually the first sign.

### At home

Take your temperature twice a day.

```bash
# not a heading: a comment inside a code block
```

## Treatment

Doctors often give tocilizumab.
"""


def _sections(doc) -> dict[tuple[str, ...], str]:
    return {s.heading_path: s.text for s in doc.sections}


def test_markdown_front_matter_becomes_document_metadata() -> None:
    doc = load_markdown(ARTICLE, "articles/crs.md")

    assert doc.title == "Cytokine release syndrome (CRS)"
    assert doc.summary == "Fever and low blood pressure in the first weeks after CAR-T."
    assert doc.url == "https://example.org/crs"
    assert doc.reviewed == "2025-03-01"  # a YAML date, given back as the date the file shows
    assert doc.meta["sources"] == ["https://www.cancer.gov/crs", "https://example.org/nurses"]
    assert doc.meta["topics"] == ["side-effects", "crs"]
    assert doc.kind == "markdown"
    assert doc.stem == "crs"


def test_markdown_headings_become_sections_with_heading_paths() -> None:
    sections = _sections(load_markdown(ARTICLE, "crs.md"))

    assert list(sections) == [(), ("Signs",), ("Signs", "At home"), ("Treatment",)]
    assert sections[()] == "CRS is the most common side effect of CAR-T. It usually starts in the first week."
    assert sections[("Signs",)] == "Fever is usually the first sign."
    assert sections[("Signs", "At home")].startswith("Take your temperature twice a day.")
    assert "# not a heading" in sections[("Signs", "At home")]  # code blocks are not split at '#'
    assert sections[("Treatment",)] == "Doctors often give tocilizumab."
    assert not any("---" in text or "title:" in text for text in sections.values())


def test_markdown_title_falls_back_from_front_matter_to_first_heading_to_file_name() -> None:
    with_front_matter = load_markdown("---\ntitle: From front matter\n---\n# From heading\n\nBody text here.", "x.md")
    with_heading = load_markdown("# From heading\n\nBody text here.", "x.md")
    with_neither = load_markdown("Body text here, no heading at all.", "articles/car-t_basics.md")

    assert with_front_matter.title == "From front matter"
    assert with_heading.title == "From heading"
    assert with_neither.title == "Car t basics"


def test_markdown_with_windows_line_endings_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "crlf.md"
    path.write_bytes("\ufeff---\r\ntitle: Windows file\r\n---\r\n\r\n## Part\r\n\r\nLine one. Line two.\r\n".encode())

    doc = load_document(path)

    assert doc.title == "Windows file"
    assert _sections(doc) == {("Part",): "Line one. Line two."}


def test_markdown_with_invalid_front_matter_is_a_load_error() -> None:
    with pytest.raises(LoadError, match="front matter"):
        load_markdown("---\ntitle: [unclosed\n---\nBody.", "bad.md")


def test_markdown_with_only_front_matter_and_headings_is_a_load_error() -> None:
    with pytest.raises(LoadError, match="no body text"):
        load_markdown("---\ntitle: Empty\n---\n# Empty\n## Still empty\n", "empty.md")


PAGE_WITH_JUNK = """<!DOCTYPE html>
<html lang="en"><head><title>CRS explained | Cancer Center</title>
<style>.banner { color: red; } body { font-family: sans-serif; }</style>
<script>var tracking = "analytics-secret-code"; function track() {}</script>
</head>
<body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li><li><a href="/donate">Donate now</a></li></ul></nav>
<div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience. Accept all cookies?</div>
<main><article>
<h1>Cytokine release syndrome</h1>
<p>Cytokine release syndrome is a common side effect of CAR-T cell therapy. It usually starts within the first week after the infusion.</p>
<h2>Signs to watch for</h2>
<p>Fever is often the first sign. Some people also feel tired, dizzy or short of breath.</p>
<h2>How it is treated</h2>
<p>Doctors may give tocilizumab, a medicine that blocks interleukin 6. Most people recover fully within a few days.</p>
</article></main>
<footer><p>Copyright 2024 Cancer Center. All rights reserved. Privacy policy.</p></footer>
<script>console.log("footer-script-marker");</script>
</body></html>
"""

PAGE_WITHOUT_SEMANTIC_TAGS = """<html><head><title>Low blood counts</title><script>window.trackerId = 1;</script></head>
<body>
<div class="header"><div class="menu"><a href="/">Home</a> | <a href="/topics">Topics</a> | <a href="/contact">Contact</a></div></div>
<div class="cookie-notice">This website uses cookies. By continuing you agree to our cookie policy.</div>
<div class="content">
<h1>Low blood counts after CAR-T</h1>
<p>After CAR-T therapy your blood counts may stay low for weeks. This raises the risk of infections and bleeding.</p>
<h2>What you can do</h2>
<p>Wash your hands often and avoid crowds. Tell your team about any fever above 38 degrees.</p>
</div>
<div class="footer">Copyright 2023 Hospital. Terms of use. Sitemap.</div>
</body></html>
"""

JUNK = ["analytics-secret-code", "footer-script-marker", "trackerId", "font-family", "Donate now", "About us",
        "cookie", "Copyright", "Privacy policy", "Sitemap", "Contact"]


@pytest.mark.parametrize("html", [PAGE_WITH_JUNK, PAGE_WITHOUT_SEMANTIC_TAGS], ids=["semantic", "div-soup"])
def test_html_keeps_main_text_and_headings_and_drops_the_junk(html: str) -> None:
    doc = load_html(html, "pages/page.html")
    text = "\n".join(s.text for s in doc.sections)

    for word in JUNK:
        assert word.lower() not in text.lower(), f"{word!r} leaked into the indexed text"
    assert doc.kind == "html"
    assert all(len(s.heading_path) == 1 for s in doc.sections[1:])


def test_html_sections_follow_the_page_headings() -> None:
    doc = load_html(PAGE_WITH_JUNK, "pages/crs.html")

    assert doc.title == "Cytokine release syndrome"
    assert _sections(doc) == {
        (): "Cytokine release syndrome is a common side effect of CAR-T cell therapy. "
            "It usually starts within the first week after the infusion.",
        ("Signs to watch for",): "Fever is often the first sign. Some people also feel tired, dizzy or short of breath.",
        ("How it is treated",): "Doctors may give tocilizumab, a medicine that blocks interleukin 6. "
                                "Most people recover fully within a few days.",
    }


def test_html_review_date_comes_from_page_metadata_not_a_copyright_line() -> None:
    dated = PAGE_WITH_JUNK.replace("<head>", '<head><meta property="article:modified_time" content="2024-03-05">')

    assert load_html(dated, "a.html").reviewed == "2024-03-05"
    assert load_html(PAGE_WITH_JUNK, "a.html").reviewed == ""  # "Copyright 2024" is not a review date


def test_html_without_main_text_is_a_load_error() -> None:
    with pytest.raises(LoadError, match="no main text"):
        load_html("<html><head><script>var a = 1;</script></head><body><div id='root'></div></body></html>", "app.html")


def test_plain_text_keeps_its_text_and_takes_the_title_from_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "leukapheresis-day.txt"
    path.write_text("Leukapheresis collects your white blood cells.\nIt takes three to six hours.\n", encoding="utf-8")

    doc = load_document(path)

    assert doc.kind == "text"
    assert doc.title == "Leukapheresis day"
    assert [s.text for s in doc.sections] == ["Leukapheresis collects your white blood cells.\nIt takes three to six hours."]


def test_plain_text_title_falls_back_to_its_first_heading() -> None:
    doc = load_plain_text("# Staying near the center\n\nStay within two hours of the hospital.", "notes.txt")

    assert doc.title == "Staying near the center"
    assert [s.text for s in doc.sections] == ["Stay within two hours of the hospital."]


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("a.markdown", "# T\n\nSome text.", "markdown"),
        ("a.HTM", "<html><body><article><h1>T</h1><p>Some text that is long enough to be the main content of a page about CAR-T.</p></article></body></html>", "html"),
        ("a.TXT", "Some text.", "text"),
    ],
)
def test_the_reader_is_chosen_by_extension_in_any_case(tmp_path: Path, name: str, content: str, kind: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")

    assert load_document(path).kind == kind


def test_same_text_at_two_paths_has_one_identity_and_a_change_gives_another() -> None:
    a = load_markdown(ARTICLE, "one/crs.md")
    b = load_markdown(ARTICLE, "two/copy-of-crs.md")
    changed = load_markdown(ARTICLE.replace("tocilizumab", "steroids"), "one/crs.md")

    assert a.content_hash == b.content_hash
    assert changed.content_hash != a.content_hash


# ---------------------------------------------------------------- HTML structure (issue 12)

HOSPITAL_PAGE = """<!DOCTYPE html>
<html lang="en"><head><title>Life after CAR-T | City Hospital</title></head>
<body>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/services">Our services</a></li>
<li><a href="/visit">Plan your visit</a></li></ul></nav></header>
<div class="cookie-consent">We use cookies to make this site work. Accept all cookies?</div>
<main><article>
<h2>The first month</h2>
<p>Most people stay within two hours of the hospital for four weeks after the infusion. A carer stays with you
day and night during this time, because side effects can start <strong>suddenly</strong>.</p>
<h3>Signs to report at once</h3>
<ul><li>A temperature of 38 degrees or higher</li><li>Confusion or trouble finding words</li><li>Shaking you cannot stop</li></ul>
<h4>At night</h4>
<p>Call the ward on the number on your wallet card [1], even at night, if you notice any of these signs.</p>
<h2>Going home</h2>
<p>Your team checks your blood counts before you go home. You cannot drive for eight weeks after the infusion.</p>
<table><tr><th>Check</th><th>When</th></tr><tr><td>Blood counts</td><td>Every week</td></tr></table>
</article></main>
<footer>Copyright 2025 City Hospital. Privacy.</footer>
</body></html>"""


def test_html_headings_h2_to_h4_nest_and_the_title_comes_from_the_title_tag_without_the_site_name() -> None:
    doc = load_html(HOSPITAL_PAGE, "after-car-t.html", min_words=50)

    assert doc.title == "Life after CAR-T"
    assert [s.heading_path for s in doc.sections] == [
        ("The first month",), ("The first month", "Signs to report at once"),
        ("The first month", "Signs to report at once", "At night"), ("Going home",)]


def test_html_lists_are_one_item_per_line_and_quotes_carry_no_markdown_marks() -> None:
    from knowledge.sentences import split_sentences

    doc = load_html(HOSPITAL_PAGE, "after-car-t.html")
    sections = {s.heading_path[-1]: s.text for s in doc.sections}
    signs = sections["Signs to report at once"]

    assert [signs[s:e] for s, e in split_sentences(signs)] == [
        "A temperature of 38 degrees or higher", "Confusion or trouble finding words", "Shaking you cannot stop"]
    assert "side effects can start suddenly." in sections["The first month"]
    assert "wallet card [1], even at night" in sections["At night"]
    assert not any(mark in text for text in sections.values() for mark in ("**", "\\[", "|---"))


def test_html_table_rows_are_lines_of_cells() -> None:
    going_home = {s.heading_path[-1]: s.text for s in load_html(HOSPITAL_PAGE, "a.html").sections}["Going home"]

    assert going_home.endswith("Check | When\n\nBlood counts | Every week")


def test_a_cookie_wall_under_fifty_words_is_skipped_with_its_reason(tmp_path: Path) -> None:
    from knowledge.settings import Settings

    wall = tmp_path / "consent.html"
    wall.write_text("""<html><head><title>Before you continue</title></head><body><main>
<h1>Before you continue</h1>
<p>We use cookies and data to deliver and maintain our services, to measure audience engagement and site
statistics, and to show you relevant content. Select accept all to agree or reject all to decline.</p>
<button>Accept all</button><button>Reject all</button></main></body></html>""", encoding="utf-8")

    with pytest.raises(LoadError, match="too little main text") as caught:
        load_document(wall, html_min_words=Settings().html_min_words)
    assert Settings().html_min_words == 50
    assert "words of running text" in str(caught.value) and "\n" not in str(caught.value)
