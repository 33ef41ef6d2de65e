"""Turn Markdown, HTML, PDF and plain-text files into `Document`s; bad files raise `LoadError`."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections import Counter
from pathlib import Path

from knowledge.documents import Document, Section
from knowledge.text import squash_whitespace

MARKDOWN_SUFFIXES = (".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
PDF_SUFFIXES = (".pdf",)
TEXT_SUFFIXES = (".txt", ".text")
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES + HTML_SUFFIXES + PDF_SUFFIXES + TEXT_SUFFIXES

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_ATX_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d{1,3}[.)])\s+")
_SENTENCE_PUNCTUATION = re.compile(r"[.!?:;][\"'”’)\]]*$")
SIZE_HINT = "PATIENT_QA_MAX_FILE_MB"


class LoadError(Exception):
    """A file that cannot be indexed; the message is the one-line reason shown to the maintainer."""


def load_document(path: Path, max_bytes: int | None = None, html_min_words: int = 0) -> Document:
    """Load any supported file, choosing the reader by extension; `max_bytes` caps the text a file may hold."""
    suffix = path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        return load_pdf(path, max_text_bytes=max_bytes)
    if suffix not in SUPPORTED_SUFFIXES:
        raise LoadError(
            f"unsupported file type '{suffix or path.name}' (supported: {', '.join(SUPPORTED_SUFFIXES)})"
        )
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        # Checked before reading: a 30 MB text file costs gigabytes of memory and hours of embedding.
        raise LoadError(f"too large: {_megabytes(size)} MB, the limit is {_megabytes(max_bytes)} MB ({SIZE_HINT}); "
                        "split the file or raise the limit")
    text = read_text(path)
    if suffix in HTML_SUFFIXES:
        return load_html(text, str(path), min_words=html_min_words)
    if suffix in MARKDOWN_SUFFIXES:
        return load_markdown(text, str(path))
    return load_plain_text(text, str(path))


def _megabytes(size: int) -> str:
    """A byte count as MB for a reason line: 1160000 -> '1.2', 5000000 -> '5'."""
    return f"{size / 1_000_000:.1f}".removesuffix(".0") if size >= 100_000 else f"{size / 1_000_000:.2g}"


def read_text(path: Path) -> str:
    """Read a text file as UTF-8, refusing binary data and other encodings with a fixable reason."""
    data = path.read_bytes()
    if not data.strip():
        raise LoadError("empty file")
    if b"\x00" in data[:8192]:
        raise LoadError("binary data, not text (is the extension wrong?)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise LoadError(
            f"not UTF-8 text (byte 0x{data[err.start]:02x} at position {err.start}); re-save the file as UTF-8"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _title_from_path(source_path: str) -> str:
    """A readable title from a file name: 'car-t_basics.md' -> 'Car t basics'."""
    stem = Path(source_path).stem.replace("_", " ").replace("-", " ").strip()
    return stem[:1].upper() + stem[1:] if stem else "Untitled"


def _as_text(value: object) -> str:
    """Front-matter scalars (dates included) as plain strings."""
    if value is None:
        return ""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value).strip()


def split_front_matter(text: str) -> tuple[dict, str]:
    """Split YAML front matter from a Markdown body; invalid YAML is a `LoadError`."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    import yaml

    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as err:
        raise LoadError(f"front matter is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(meta, dict):
        raise LoadError("front matter must be a YAML mapping (key: value lines)")
    return meta, text[match.end() :]


def sections_from_markdown(body: str) -> tuple[str, list[Section]]:
    """Split a Markdown body at ATX headings; returns (first level-1 heading, sections)."""
    title = ""
    path: list[tuple[int, str]] = []
    sections: list[Section] = []
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        text = "\n".join(lines).strip("\n")
        if text.strip():
            sections.append(Section(tuple(h for _, h in path), text))
        lines.clear()

    for line in body.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        heading = None if in_fence else _ATX_HEADING.match(line)
        if not heading:
            lines.append(line)
            continue
        flush()
        level, name = len(heading.group(1)), heading.group(2).strip()
        if level == 1 and not title:
            title = name
            continue
        path = [(lvl, h) for lvl, h in path if lvl < level] + [(level, name)]
    flush()
    return title, sections


def load_markdown(text: str, source_path: str) -> Document:
    """Markdown with optional YAML front matter (title, summary, url, reviewed, sources, topics)."""
    meta, body = split_front_matter(text)
    heading_title, sections = sections_from_markdown(body)
    if not sections:
        raise LoadError("no body text after the headings and front matter")
    title = _as_text(meta.get("title")) or heading_title or _title_from_path(source_path)
    return Document(
        title=title,
        source_path=source_path,
        sections=tuple(sections),
        url=_as_text(meta.get("url")),
        reviewed=_as_text(meta.get("reviewed")),
        summary=_as_text(meta.get("summary")),
        kind="markdown",
        meta={k: v for k, v in meta.items() if isinstance(k, str)},
    )


def load_plain_text(text: str, source_path: str) -> Document:
    """Plain text; a Markdown-style heading, if any, gives the title and sections."""
    heading_title, sections = sections_from_markdown(text)
    if not sections:
        raise LoadError("no text")
    return Document(
        title=heading_title or _title_from_path(source_path),
        source_path=source_path,
        sections=tuple(sections),
        kind="text",
    )


def running_text_words(markdown: str) -> int:
    """Words on the lines that read as prose (a sentence, or 8+ words), not headings or short link labels."""
    words = 0
    for line in markdown.split("\n"):
        line = _LIST_MARKER.sub("", line).strip()
        if not line or _ATX_HEADING.match(line):
            continue
        count = len(line.split())
        if count >= 8 or (count >= 3 and _SENTENCE_PUNCTUATION.search(line)):
            words += count
    return words


def load_html(html: str, source_path: str, min_words: int = 0) -> Document:
    """Main content of an HTML page (no navigation, scripts or cookie banners), headings kept.

    A page with fewer than `min_words` words of running text (a menu, a list of links) is a `LoadError`:
    indexed, it would become a document called "Menu" that answers nothing.
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
                        "(a page of menus or links is not an article; PATIENT_QA_HTML_MIN_WORDS)")
    # No extensive date search: it reads "Copyright 2023" in a footer as a review date.
    metadata = trafilatura.extract_metadata(html, extensive=False)
    heading_title, sections = sections_from_markdown(markdown)
    if not sections:
        raise LoadError("no main text found in the HTML page")
    title = heading_title or (metadata.title if metadata and metadata.title else "") or _title_from_path(source_path)
    return Document(
        title=title,
        source_path=source_path,
        sections=tuple(sections),
        url=(metadata.url or "") if metadata else "",
        reviewed=(metadata.date or "") if metadata else "",
        kind="html",
    )


# ---------------------------------------------------------------- PDF

_PAGE_NUMBER = re.compile(r"^\s*(?:page\s*)?\d{1,4}(?:\s*(?:of|/)\s*\d{1,4})?\s*$", re.I)
_HYPHEN_BREAK = re.compile(r"(\w)-\n[ \t]*([a-z])")
_SPACES = re.compile(r"[ \t\u00a0]{2,}")
_HYPHEN_END = re.compile(r"\w-\Z")
_SENTENCE_END = re.compile(r"[.!?:][\"'”’)\]]*\Z")


def _line_key(line: str) -> str:
    """Header/footer identity: digits vary from page to page ("Page 3"), the rest repeats."""
    return re.sub(r"\d+", "#", line.strip().lower())


def clean_pdf_pages(pages: list[str]) -> list[str]:
    """Remove running headers, footers and page numbers; fix ligatures, hyphenation and spacing."""
    pages = [unicodedata.normalize("NFKC", page) for page in pages]
    split = [[line for line in page.split("\n")] for page in pages]
    edge_counts: Counter[str] = Counter()
    for lines in split:
        content = [line for line in lines if line.strip()]
        edges = {_line_key(line) for line in content[:2] + content[-2:]}
        edge_counts.update(edges)
    threshold = max(2, (len(pages) + 1) // 2)
    repeated = {key for key, count in edge_counts.items() if count >= threshold and key}
    cleaned = []
    for lines in split:
        content_idx = [i for i, line in enumerate(lines) if line.strip()]
        edge_idx = set(content_idx[:2] + content_idx[-2:])
        kept = [
            line
            for i, line in enumerate(lines)
            if not (i in edge_idx and (_line_key(line) in repeated or _PAGE_NUMBER.match(line)))
        ]
        text = "\n".join(kept)
        text = _HYPHEN_BREAK.sub(r"\1\2", text)
        text = _SPACES.sub(" ", text)
        text = "\n".join(line.strip() for line in text.split("\n"))
        cleaned.append(text.strip())
    return cleaned


def load_pdf(path: Path, max_text_bytes: int | None = None) -> Document:
    """A PDF's text with page numbers kept; encrypted, corrupt, image-only and over-long PDFs are `LoadError`s."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if path.stat().st_size == 0:
        raise LoadError("empty file")
    try:
        reader = PdfReader(str(path))
        if reader.is_encrypted:
            try:
                unlocked = bool(reader.decrypt(""))
            except Exception:  # noqa: BLE001 - pypdf raises several types for unsupported crypto
                unlocked = False
            if not unlocked:
                raise LoadError("encrypted PDF (password protected); save an unprotected copy and rebuild")
        raw_pages = _extract_pages(reader, path, max_text_bytes)
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as err:
        raise LoadError(f"unreadable PDF ({type(err).__name__}: {str(err)[:80]})") from None
    pages = clean_pdf_pages(raw_pages)
    if not any(page.strip() for page in pages):
        raise LoadError("PDF has no extractable text (scanned images?); run OCR on it first")
    body_parts: list[str] = []
    offsets: list[tuple[int, int]] = []
    cursor = 0
    for number, page in enumerate(pages, start=1):
        if not page:
            continue
        if body_parts:
            # Text flows across pages: a sentence or a hyphenated word cut by the page break is one.
            if _HYPHEN_END.search(body_parts[-1]) and page[0].islower():
                body_parts[-1] = body_parts[-1][:-1]
                cursor -= 1
            else:
                joint = "\n\n" if _SENTENCE_END.search(body_parts[-1]) else "\n"
                body_parts.append(joint)
                cursor += len(joint)
        offsets.append((cursor, number))
        body_parts.append(page)
        cursor += len(page)
    body = "".join(body_parts)
    title = _pdf_title(reader) or _first_line_title(raw_pages) or _title_from_path(str(path))
    return Document(
        title=title,
        source_path=str(path),
        sections=(Section((), body, tuple(offsets)),),
        kind="pdf",
    )


def _extract_pages(reader, path: Path, max_text_bytes: int | None) -> list[str]:
    """The text of every page, stopping as soon as it passes the limit (the file size says little for a PDF)."""
    pages: list[str] = []
    total = 0
    for number, page in enumerate(_pages_with_progress(reader, path), start=1):
        pages.append(_extract_page(page))
        total += len(pages[-1].encode("utf-8", "surrogatepass"))
        if max_text_bytes is not None and total > max_text_bytes:
            raise LoadError(f"too large: more than {_megabytes(max_text_bytes)} MB of text by page {number} of "
                            f"{len(reader.pages)}, the limit is {_megabytes(max_text_bytes)} MB ({SIZE_HINT}); "
                            "split the file or raise the limit")
    return pages


def _pages_with_progress(reader, path: Path):
    """Iterate pages, with a progress bar for long PDFs; one page's text in memory at a time."""
    pages = reader.pages
    if len(pages) < 50:
        return pages
    from tqdm import tqdm

    return tqdm(pages, desc=f"reading {path.name}", unit="page", leave=False)


def _extract_page(page) -> str:
    """Text of one page; a page pypdf cannot parse contributes nothing rather than failing the file."""
    try:
        return page.extract_text() or ""
    except Exception:  # noqa: BLE001 - malformed content streams raise arbitrary errors
        return ""


def _first_line_title(raw_pages: list[str]) -> str:
    """A PDF's first line when it reads like a title (a few words, not a page number or a sentence)."""
    for page in raw_pages[:1]:
        for line in page.split("\n"):
            line = squash_whitespace(unicodedata.normalize("NFKC", line))
            if not line:
                continue
            words = line.split()
            if 2 <= len(words) <= 15 and any(c.isalpha() for c in line) and not _PAGE_NUMBER.match(line) \
                    and not line.endswith((".", ",", ";")):
                return line
            return ""
    return ""


def _pdf_title(reader) -> str:
    """The PDF's metadata title when it is a real title, not 'Microsoft Word - draft3.docx'."""
    try:
        title = (reader.metadata.title if reader.metadata else "") or ""
    except Exception:  # noqa: BLE001
        return ""
    title = title.strip()
    if not title or title.lower().startswith(("microsoft", "untitled")) or title.lower().endswith((".doc", ".docx", ".pdf")):
        return ""
    return title
