"""Turn Markdown, HTML, PDF and plain-text files into `Document`s; bad files raise `LoadError`.

The readers live beside this module (`html_loader`, `pdf_loader` with `pdf_layout`, `markdown_sections`);
this one chooses among them by extension and is the import every caller uses.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from knowledge.documents import Document
from knowledge.html_loader import load_html, running_text_words  # noqa: F401 - re-exported
from knowledge.loading import SIZE_HINT, LoadError, megabytes, title_from_path
from knowledge.markdown_sections import sections_from_markdown
from knowledge.pdf_loader import clean_pdf_pages, load_pdf  # noqa: F401 - re-exported
from knowledge.settings import PdfSettings

MARKDOWN_SUFFIXES = (".md", ".markdown")
HTML_SUFFIXES = (".html", ".htm")
PDF_SUFFIXES = (".pdf",)
TEXT_SUFFIXES = (".txt", ".text")
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES + HTML_SUFFIXES + PDF_SUFFIXES + TEXT_SUFFIXES

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)


def load_document(path: Path, max_bytes: int | None = None, html_min_words: int = 0,
                  pdf: PdfSettings = PdfSettings()) -> Document:
    """Load any supported file, choosing the reader by extension; `max_bytes` caps the text a file may hold."""
    suffix = path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        return load_pdf(path, max_text_bytes=max_bytes, layout=pdf)
    if suffix not in SUPPORTED_SUFFIXES:
        raise LoadError(
            f"unsupported file type '{suffix or path.name}' (supported: {', '.join(SUPPORTED_SUFFIXES)})"
        )
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        # Checked before reading: a 30 MB text file costs gigabytes of memory and hours of embedding.
        raise LoadError(f"too large: {megabytes(size)} MB, the limit is {megabytes(max_bytes)} MB ({SIZE_HINT}); "
                        "split the file or raise the limit")
    text = read_text(path)
    if suffix in HTML_SUFFIXES:
        return load_html(text, str(path), min_words=html_min_words)
    if suffix in MARKDOWN_SUFFIXES:
        return load_markdown(text, str(path))
    return load_plain_text(text, str(path))


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

    from knowledge.yaml_text import load_yaml

    try:
        meta = load_yaml(match.group(1)) or {}
    except yaml.YAMLError as err:
        raise LoadError(f"front matter is not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(meta, dict):
        raise LoadError("front matter must be a YAML mapping (key: value lines)")
    return meta, text[match.end() :]


def load_markdown(text: str, source_path: str) -> Document:
    """Markdown with optional YAML front matter (title, summary, url, reviewed, sources, topics)."""
    meta, body = split_front_matter(text)
    heading_title, sections = sections_from_markdown(body)
    if not sections:
        raise LoadError("no body text after the headings and front matter")
    title = _as_text(meta.get("title")) or heading_title or title_from_path(source_path)
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
        title=heading_title or title_from_path(source_path),
        source_path=source_path,
        sections=tuple(sections),
        kind="text",
    )
