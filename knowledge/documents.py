"""Value types that flow from loaders to chunking to the index."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


def page_at(offset: int, page_breaks: tuple[tuple[int, int], ...], first_page: int | None = None) -> int | None:
    """The PDF page of the character at `offset` of a text that starts on `first_page` and has `page_breaks`
    (offset where a page starts, its number) inside it; None for text without pages.

    The one rule from a PDF page to a quote: the loader records page starts in a section, chunking asks this for
    a chunk's first and last page and keeps the breaks inside it, and a quote asks it for its own first character.
    """
    page = first_page
    for start, number in page_breaks:
        if start <= offset:
            page = number
    return page


@dataclass(frozen=True)
class Section:
    """A run of body text under one heading path; `pages` maps char offsets to PDF page numbers."""

    heading_path: tuple[str, ...]
    text: str
    pages: tuple[tuple[int, int], ...] = ()  # (char offset where the page starts, page number)

    def page_at(self, offset: int) -> int | None:
        """Page number of the character at `offset`, or None for non-paginated sources."""
        return page_at(offset, self.pages)


@dataclass(frozen=True)
class Document:
    """One loaded source file, with its metadata and its sections in reading order."""

    title: str
    source_path: str
    sections: tuple[Section, ...]
    url: str = ""
    reviewed: str = ""
    summary: str = ""
    kind: str = "markdown"
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def stem(self) -> str:
        """The file name without extension: the `article` field of a quote."""
        name = self.source_path.replace("\\", "/").rsplit("/", 1)[-1]
        return name.rsplit(".", 1)[0] if "." in name else name

    @property
    def content_hash(self) -> str:
        """Identity of the content: the same text at two paths is one document."""
        digest = hashlib.sha256()
        digest.update(self.title.encode())
        for section in self.sections:
            digest.update(b"\x00" + "\x01".join(section.heading_path).encode())
            digest.update(b"\x02" + section.text.encode())
        keys = self.meta.get("questions") if isinstance(self.meta, dict) else None
        if keys:  # new or changed question keys rebuild the document like changed text
            import json

            digest.update(b"\x03" + json.dumps(keys, sort_keys=True, ensure_ascii=False, default=str).encode())
        return digest.hexdigest()[:32]


@dataclass(frozen=True)
class Chunk:
    """A sentence-aligned span of one section; `sentences` are (start, end) offsets into `text`."""

    doc_id: str
    heading_path: tuple[str, ...]
    text: str
    sentences: tuple[tuple[int, int], ...]
    page_start: int | None = None
    page_end: int | None = None
    page_breaks: tuple[tuple[int, int], ...] = ()  # (offset in text where a new page starts, its number)

    def page_at(self, offset: int) -> int | None:
        """The PDF page of the character at `offset` in this chunk, so a quote cites its own page."""
        return page_at(offset, self.page_breaks, self.page_start)

    def sentence_texts(self) -> list[str]:
        """The chunk's sentences, verbatim."""
        return [self.text[s:e] for s, e in self.sentences]
