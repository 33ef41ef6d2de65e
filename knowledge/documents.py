"""Value types that flow from loaders to chunking to the index."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Section:
    """A run of body text under one heading path; `pages` maps char offsets to PDF page numbers."""

    heading_path: tuple[str, ...]
    text: str
    pages: tuple[tuple[int, int], ...] = ()  # (char offset where the page starts, page number)

    def page_at(self, offset: int) -> int | None:
        """Page number of the character at `offset`, or None for non-paginated sources."""
        return page_at(None, self.pages, offset)


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
        return page_at(self.page_start, self.page_breaks, offset)

    def sentence_texts(self) -> list[str]:
        """The chunk's sentences, verbatim."""
        return [self.text[s:e] for s, e in self.sentences]


def page_at(page_start: int | None, page_breaks: tuple[tuple[int, int], ...], offset: int) -> int | None:
    """The one page lookup (sections, chunks and stored chunks all use it): the page of the character at
    `offset`, from the page the text starts on and the (offset, page) breaks inside it."""
    page = page_start
    for start, number in page_breaks:
        if start > offset:
            break
        page = number
    return page

