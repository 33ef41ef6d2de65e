"""Web pages as `Document`s: the main text only (no menus, scripts or cookie walls), under the page's headings.

trafilatura finds the main content and gives it as Markdown (`<h1>`-`<h4>` as `#` headings, list items as
lines, table rows as lines), which the Markdown section splitter then reads.
"""

from __future__ import annotations

import re

from knowledge.documents import Document
from knowledge.loading import LoadError, title_from_path
from knowledge.markdown_sections import ATX_HEADING, sections_from_markdown

_LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_SENTENCE_PUNCTUATION = re.compile(r"[.!?:;][\"'”’)\]]*$")
_SITE_SUFFIX = re.compile(r"\s+[|\-–—:·]\s+[^|\-–—:·]{2,60}$")


def running_text_words(markdown: str) -> int:
    """Words on the lines that read as prose (a sentence, or 8+ words), not headings or short link labels."""
    words = 0
    for line in markdown.split("\n"):
        line = _LIST_MARKER.sub("", line).strip()
        if not line or ATX_HEADING.match(line):
            continue
        count = len(line.split())
        if count >= 8 or (count >= 3 and _SENTENCE_PUNCTUATION.search(line)):
            words += count
    return words


def page_title(html_title: str) -> str:
    """A `<title>` without the site's name: 'CRS explained | Cancer Center' -> 'CRS explained'."""
    title = " ".join(html_title.split())
    return _SITE_SUFFIX.sub("", title) or title


def load_html(html: str, source_path: str, min_words: int = 0) -> Document:
    """Main content of an HTML page (no navigation, scripts or cookie banners), headings kept.

    A page with fewer than `min_words` words of running text (a menu, a list of links, a cookie wall) is a
    `LoadError`: indexed, it would become a document called "Menu" that answers nothing.
    """
    import trafilatura

    markdown = trafilatura.extract(
        html,
        output_format="markdown",
        include_formatting=True,
        include_links=False,
        include_images=False,
        include_tables=True,
        include_comments=False,
        favor_recall=True,
    )
    if not markdown or not markdown.strip():
        raise LoadError("no main text found in the HTML page")
    prose = running_text_words(markdown)
    if prose < min_words:
        raise LoadError(f"too little main text: {prose} words of running text, at least {min_words} needed "
                        "(a page of menus, links or a cookie notice is not an article; PATIENT_QA_HTML_MIN_WORDS)")
    # No extensive date search: it reads "Copyright 2023" in a footer as a review date.
    metadata = trafilatura.extract_metadata(html, extensive=False)
    heading_title, sections = sections_from_markdown(markdown)
    if not sections:
        raise LoadError("no main text found in the HTML page")
    html_title = page_title(metadata.title) if metadata and metadata.title else ""
    return Document(
        title=heading_title or html_title or title_from_path(source_path),
        source_path=source_path,
        sections=tuple(sections),
        url=(metadata.url or "") if metadata else "",
        reviewed=(metadata.date or "") if metadata else "",
        kind="html",
    )
