"""Web pages as `Document`s: the main text only (no menus, scripts or cookie walls), under the page's headings.

trafilatura finds the main content and gives it as Markdown (`<h1>`-`<h4>` as `#` headings, list items as
lines, table rows as lines), which the Markdown section splitter then reads.
"""

from __future__ import annotations

import re

from knowledge.documents import Document
from knowledge.loading import LoadError, title_from_path
from knowledge.markdown_sections import ATX_HEADING, sections_from_markdown
from knowledge.text import squash_whitespace

_LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_SENTENCE_PUNCTUATION = re.compile(r"[.!?:;][\"'”’)\]]*$")
_SITE_SUFFIX = re.compile(r"\s+[|\-–—:·]\s+[^|\-–—:·]{2,60}$")
_STRONG = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_EMPHASIS = re.compile(r"(?<![\w*\\])([*_])(?=\S)(.+?)(?<=\S)\1(?![\w*])")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")
_TABLE_DIVIDER = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$")
_TABLE_ROW = re.compile(r"^\s*\|(.*)\|\s*$")


def plain_lines(markdown: str) -> str:
    """trafilatura's Markdown as the page's words: no emphasis marks or backslash escapes, so quotes read as the
    page does; table rows as lines of cells ("a | b") set apart like paragraphs, as the PDF reader gives them."""
    out: list[str] = []
    for line in markdown.split("\n"):
        if _TABLE_DIVIDER.match(line):
            continue
        row = _TABLE_ROW.match(line)
        if row:
            cells = [cell.strip() for cell in row.group(1).split("|")]
            line = " | ".join(cell for cell in cells if cell)
            if out and out[-1].strip():
                out.append("")
            out.extend([line, ""])
            continue
        line = _STRONG.sub(r"\2", line)
        line = _EMPHASIS.sub(r"\2", line)
        out.append(_ESCAPE.sub(r"\1", line))
    return "\n".join(out)


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
    title = squash_whitespace(html_title)
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
    markdown = plain_lines(markdown)
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
