"""PDF leaflets as `Document`s: sections under the headings the layout shows, each sentence citing its page.

pypdf reads the runs (text, position, font, size) through its `extract_text` visitor; `knowledge.pdf_layout`
turns them into reading-order lines, drops running headers and footers, and finds the headings.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

from knowledge.documents import Document, Section
from knowledge.loading import SIZE_HINT, LoadError, megabytes, title_from_path
from knowledge.pdf_layout import (
    PAGE_NUMBER,
    Block,
    Line,
    Run,
    device_position,
    drop_running_lines,
    font_flags,
    join_lines,
    most_repeated_line,
    page_lines,
    repeated_edge_keys,
    structure,
)
from knowledge.settings import PdfSettings
from knowledge.text import squash_whitespace

NO_TEXT_LAYER = "no text layer (scanned?): OCR it first (the PDF has no extractable text)"

_HYPHEN_BREAK = re.compile(r"(\w)-\n[ \t]*([a-z])")
_SPACES = re.compile(r"[ \t\u00a0]{2,}")


def load_pdf(path: Path, max_text_bytes: int | None = None, layout: PdfSettings = PdfSettings()) -> Document:
    """A PDF's sections and title from its layout; encrypted, corrupt, scanned and over-long PDFs are `LoadError`s."""
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
        raw_pages = _read_pages(reader, path, max_text_bytes, layout)
        heights = [_page_height(page) for page in reader.pages]
    except LoadError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as err:
        raise LoadError(f"unreadable PDF ({type(err).__name__}: {str(err)[:80]})") from None
    return document_from_lines(raw_pages, str(path), _metadata_title(reader), heights, layout)


def _page_height(page) -> float:
    """The page's height in points (0 when the box is unreadable: only repetition finds headers then)."""
    try:
        return float(page.mediabox.top)
    except Exception:  # noqa: BLE001
        return 0.0


def document_from_lines(raw_pages: list[list[Line]], source_path: str, metadata_title: str = "",
                        heights: list[float] | tuple[float, ...] = (), layout: PdfSettings = PdfSettings()) -> Document:
    """Sections, headings and title from reading-order lines; the reasons a PDF is not an article are `LoadError`s."""
    if not any(raw_pages):
        raise LoadError(NO_TEXT_LAYER)
    text, count, total = most_repeated_line(raw_pages)
    if count >= 3 and count >= layout.repeated_line_share * total:
        raise LoadError(f"text is mostly one repeated line ({text[:40]!r} is {count} of {total} lines): "
                        "a stamp or watermark, not an article")
    pages = drop_running_lines(raw_pages, heights, layout)
    if not any(pages):
        raise LoadError("only running headers, footers and page numbers, no body text")
    blocks = structure(pages, layout)
    first_heading = next((b for b in blocks if b.heading_level and b.line.page == _first_page(blocks)), None)
    title = metadata_title or (first_heading.line.text if first_heading else "") or title_from_path(source_path)
    # The first heading names the document, not a section, when it is the only one set that large.
    title_block = first_heading if first_heading is not None and first_heading.heading_level == 1 and not any(
        b.heading_level == 1 for b in blocks if b is not first_heading) else None
    sections = _sections([b for b in blocks if b is not title_block])
    if not sections:
        raise LoadError("no body text under the headings")
    return Document(title=title, source_path=source_path, sections=tuple(sections), kind="pdf")


def _first_page(blocks: list[Block]) -> int:
    """The first page with body text or a heading (page 1 unless it held only a header)."""
    return blocks[0].line.page if blocks else 1


def _sections(blocks: list[Block]) -> list[Section]:
    """Body lines grouped under their heading path, as `sections_from_markdown` does for Markdown."""
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    body: list[Block] = []

    def flush() -> None:
        if body:
            text, pages = join_lines(body)
            if text.strip():
                sections.append(Section(tuple(h for _, h in path), text, pages))
        body.clear()

    for block in blocks:
        if not block.heading_level:
            body.append(block)
            continue
        flush()
        path = [(lvl, h) for lvl, h in path if lvl < block.heading_level] + [(block.heading_level, block.line.text)]
    flush()
    return sections


def _read_pages(reader, path: Path, max_text_bytes: int | None, layout: PdfSettings) -> list[list[Line]]:
    """Reading-order lines of every page, stopping as soon as the text passes the limit."""
    pages: list[list[Line]] = []
    total = 0
    for number, page in enumerate(_pages_with_progress(reader, path), start=1):
        lines = _page_lines(page, number, layout)
        pages.append(lines)
        total += sum(len(line.text.encode("utf-8", "surrogatepass")) + 1 for line in lines)
        if max_text_bytes is not None and total > max_text_bytes:
            raise LoadError(f"too large: more than {megabytes(max_text_bytes)} MB of text by page {number} of "
                            f"{len(reader.pages)}, the limit is {megabytes(max_text_bytes)} MB ({SIZE_HINT}); "
                            "split the file or raise the limit")
    return pages


def _pages_with_progress(reader, path: Path):
    """Iterate pages, with a progress bar for long PDFs; one page's text in memory at a time."""
    pages = reader.pages
    if len(pages) < 50:
        return pages
    from tqdm import tqdm

    return tqdm(pages, desc=f"reading {path.name}", unit="page", leave=False)


def _page_lines(page, number: int, layout: PdfSettings) -> list[Line]:
    """One page's lines; a page pypdf cannot parse contributes nothing rather than failing the file."""
    runs: list[Run] = []
    fonts: dict[int, tuple[bool, bool]] = {}

    def visit(text: str, cm, tm, font, size) -> None:
        if not text:
            return
        key = id(font)
        if key not in fonts:
            fonts[key] = _font_flags(font)
        bold, italic = fonts[key]
        x, y, rendered = device_position(cm, tm, size)
        pieces = text.split("\n")
        for i, piece in enumerate(pieces):
            if piece:
                # Text after a newline inside one run sits on the next line down.
                runs.append(Run(piece, x, y - i * rendered * 1.2, rendered, bold, italic))

    try:
        page.extract_text(visitor_text=visit)
        width = float(page.mediabox.width)
    except Exception:  # noqa: BLE001 - malformed content streams raise arbitrary errors
        return []
    return page_lines(runs, number, width, layout)


def _font_flags(font) -> tuple[bool, bool]:
    """(bold, italic) of a pypdf font dictionary; an unreadable one counts as regular."""
    try:
        if not font:
            return False, False
        name = str(font.get("/BaseFont", ""))
        weight = None
        descriptor = font.get("/FontDescriptor")
        if descriptor is None and "/DescendantFonts" in font:
            descriptor = font["/DescendantFonts"][0].get_object().get("/FontDescriptor")
        if descriptor is not None:
            weight = descriptor.get_object().get("/FontWeight")
        return font_flags(name, float(weight) if weight is not None else None)
    except Exception:  # noqa: BLE001 - fonts in the wild are often malformed
        return False, False


def _metadata_title(reader) -> str:
    """The PDF's metadata title when it is a real title, not 'Microsoft Word - draft3.docx'."""
    try:
        title = (reader.metadata.title if reader.metadata else "") or ""
    except Exception:  # noqa: BLE001
        return ""
    title = squash_whitespace(str(title))
    if not title or title.lower().startswith(("microsoft", "untitled")) or title.lower().endswith((".doc", ".docx", ".pdf")):
        return ""
    return title


def clean_pdf_pages(pages: list[str]) -> list[str]:
    """Plain page texts without running headers, footers and page numbers; ligatures, hyphens and spaces fixed.

    For text that comes without layout (one string per page); `load_pdf` does the same from the layout.
    """
    pages = [unicodedata.normalize("NFKC", page) for page in pages]
    split = [page.split("\n") for page in pages]
    repeated = repeated_edge_keys(split)
    cleaned = []
    for lines in split:
        content_idx = [i for i, line in enumerate(lines) if line.strip()]
        edge_idx = set(content_idx[:2] + content_idx[-2:])
        kept = [line for i, line in enumerate(lines)
                if not (i in edge_idx and (re.sub(r"\d+", "#", line.strip().lower()) in repeated
                                           or PAGE_NUMBER.match(line)))]
        text = _HYPHEN_BREAK.sub(r"\1\2", "\n".join(kept))
        text = _SPACES.sub(" ", text)
        cleaned.append("\n".join(line.strip() for line in text.split("\n")).strip())
    return cleaned
