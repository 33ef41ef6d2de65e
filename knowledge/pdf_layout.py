"""Reading order and structure of PDF pages from the position, size and weight of each text run.

pypdf's `extract_text(visitor_text=...)` reports every text run with its matrix and font; from those this module
rebuilds lines, reads two-column pages column by column and tables row by row, drops running headers and
footers, and tells headings (short lines set larger or bolder than the body) from body text.
No PDF library is imported here: the input is plain `Run`s, so the rules are tested without drawing a PDF.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from knowledge.settings import PdfSettings
from knowledge.text import squash_whitespace

# A typographic fact, not a knob: a sans-serif character is about half an em wide, enough to tell a gap between
# cells from a word space. The tunable ratios (gaps, heading sizes, the header band) are `PdfSettings`.
CHAR_WIDTH_EM = 0.5
TABLE_CELL_SEPARATOR = " | "

_BOLD_FONT = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)
_ITALIC_FONT = re.compile(r"italic|oblique", re.IGNORECASE)
PAGE_NUMBER = re.compile(r"^\s*(?:page\s*)?[-–]?\s*\d{1,4}\s*[-–]?(?:\s*(?:of|/)\s*\d{1,4})?\s*$", re.IGNORECASE)
_LIST_ITEM = re.compile(r"^(?:[-*+•●▪◦‣–]|\d{1,3}[.)])\s")
_SENTENCE_END = re.compile(r"[.!?:][\"'”’)\]]*\Z")
_NOT_A_HEADING_END = re.compile(r"[.,;]\Z")


@dataclass(frozen=True)
class Run:
    """One piece of text as drawn: where its baseline starts, its font size and whether the font is bold."""

    text: str
    x: float
    y: float  # PDF space: y grows upwards
    size: float
    bold: bool = False
    italic: bool = False


@dataclass(frozen=True)
class Line:
    """One line of the page in reading order; a table row has its cells joined by `TABLE_CELL_SEPARATOR`."""

    text: str
    page: int
    x: float
    y: float
    size: float
    bold: bool = False
    table_row: bool = False

    @property
    def is_list_item(self) -> bool:
        """A bulleted or numbered item: it keeps its own line in the text."""
        return bool(_LIST_ITEM.match(self.text))


@dataclass(frozen=True)
class Block:
    """A heading (with its level, 1 the largest) or a body line, with the gap before it marked."""

    line: Line
    heading_level: int = 0  # 0 for body text
    new_paragraph: bool = False


def font_flags(base_font: str, weight: float | None = None) -> tuple[bool, bool]:
    """(bold, italic) from a font's name ('ABCDEF+DejaVuSans-BoldOblique') and its descriptor's weight."""
    name = base_font.split("+", 1)[-1]
    bold = bool(_BOLD_FONT.search(name)) or (weight is not None and weight >= 600)
    return bold, bool(_ITALIC_FONT.search(name))


def device_position(cm: Sequence[float], tm: Sequence[float], font_size: float) -> tuple[float, float, float]:
    """(x, y, rendered size) of a run from pypdf's current and text matrices."""
    _, _, c, d, e, f = (float(v) for v in tm)
    ca, cb, cc, cd, ce, cf = (float(v) for v in cm)
    x = e * ca + f * cc + ce
    y = e * cb + f * cd + cf
    scale_y = math.hypot(c * ca + d * cc, c * cb + d * cd) or 1.0
    return x, y, abs(float(font_size) * scale_y)


def _clean(text: str) -> str:
    """NFKC (ligatures, no-break spaces) and single spaces: justified text is drawn with wide gaps."""
    return squash_whitespace(unicodedata.normalize("NFKC", text))


def _width(text: str, size: float) -> float:
    return len(text) * size * CHAR_WIDTH_EM


@dataclass
class _Segment:
    text: str
    x: float
    y: float
    size: float
    bold: bool
    italic: bool
    chars: Counter

    @property
    def end(self) -> float:
        return self.x + _width(self.text, self.size)


def _segments(runs: Sequence[Run]) -> list[_Segment]:
    """Runs that share one origin (a Td), concatenated; bold counts only when most characters are bold."""
    segments: list[_Segment] = []
    for run in runs:
        if not run.text:
            continue
        last = segments[-1] if segments else None
        if last is not None and abs(last.x - run.x) < 0.5 and abs(last.y - run.y) < 0.5:
            last.text += run.text
            last.chars[(run.bold, run.italic, round(run.size, 1))] += len(run.text.strip())
            continue
        if not run.text.strip():
            if last is not None:
                last.text += run.text
            continue
        segments.append(_Segment(run.text, run.x, run.y, run.size, run.bold, run.italic,
                                 Counter({(run.bold, run.italic, round(run.size, 1)): len(run.text.strip())})))
    for seg in segments:
        (_, italic, size), _ = seg.chars.most_common(1)[0]
        seg.bold = all(b for (b, _, _), n in seg.chars.items() if n)
        seg.italic, seg.size = italic, size
        seg.text = _clean(seg.text)
    return [s for s in segments if s.text]


def _rows(segments: list[_Segment], layout: PdfSettings) -> list[list[_Segment]]:
    """Segments on one baseline, top to bottom, left to right; touching segments merged into one."""
    rows: list[list[_Segment]] = []
    for seg in sorted(segments, key=lambda s: (-s.y, s.x)):
        if rows and abs(rows[-1][0].y - seg.y) <= 0.3 * max(seg.size, rows[-1][0].size):
            rows[-1].append(seg)
        else:
            rows.append([seg])
    merged_rows = []
    for row in rows:
        row.sort(key=lambda s: s.x)
        merged = [row[0]]
        for seg in row[1:]:
            prev = merged[-1]
            if seg.x <= prev.end + layout.cell_gap_em * prev.size:
                joiner = "" if prev.text.endswith(("-", "/")) else " "
                prev.text = prev.text + joiner + seg.text
                prev.chars.update(seg.chars)
                prev.bold = prev.bold and seg.bold
            else:
                merged.append(seg)
        merged_rows.append(merged)
    return merged_rows


def _line(seg: _Segment, page: int) -> Line:
    return Line(seg.text, page, seg.x, seg.y, seg.size, seg.bold)


def _mode_x(segments: list[_Segment]) -> float:
    """The x most lines start at: a column's left edge (centred or indented lines start elsewhere)."""
    return Counter(round(seg.x) for seg in segments).most_common(1)[0][0]


def _columns(segments: list[_Segment], middle: float, layout: PdfSettings) -> tuple[float, float] | None:
    """(left, right) column edges when the page sets running text in two columns, else None.

    Lines of running text (`column_min_words` on average) starting right of the middle make a right column; short
    cells there are a table's, read row by row instead.
    """
    right = [seg for seg in segments if seg.x >= middle * 0.8]
    if len(right) < layout.column_min_rows:
        return None
    if sum(len(seg.text.split()) for seg in right) / len(right) < layout.column_min_words:
        return None
    right_x = _mode_x(right)
    left = [seg for seg in segments if seg.x < right_x - 2 and seg.end <= right_x + 2 * seg.size]
    if not left:
        return None  # nothing on the left: an indented page, not two columns
    return _mode_x(left), right_x


def page_lines(runs: Sequence[Run], page: int, page_width: float, layout: PdfSettings = PdfSettings()) -> list[Line]:
    """The lines of one page in reading order: two-column parts column by column, tables row by row."""
    segments = _segments(runs)
    edges = _columns(segments, page_width / 2, layout)
    if edges is None:
        return _plain_lines(_rows(segments, layout), page)
    left_x, right_x = edges
    right = [seg for seg in segments if seg.x >= right_x - 2]
    left = [seg for seg in segments
            if left_x - 2 <= seg.x < right_x - 2 and seg.end <= right_x + 2 * seg.size]
    top = max(seg.y for seg in right + left)
    bottom = min(seg.y for seg in right + left)
    # Everything else (a title, a centred header or footer, a full-width paragraph) is placed by height.
    others = [seg for seg in segments if seg not in right and seg not in left]
    above = [seg for seg in others if seg.y > top]
    below = [seg for seg in others if seg.y < bottom]
    inside = [seg for seg in others if bottom <= seg.y <= top]
    return (_plain_lines(_rows(above, layout), page) + _plain_lines(_rows(left + inside, layout), page)
            + _plain_lines(_rows(right, layout), page) + _plain_lines(_rows(below, layout), page))


def _plain_lines(rows: list[list[_Segment]], page: int) -> list[Line]:
    """Rows as lines; a row of separate cells is a table row, its cells joined left to right."""
    lines = []
    for row in rows:
        if len(row) == 1:
            lines.append(_line(row[0], page))
            continue
        first = row[0]
        text = TABLE_CELL_SEPARATOR.join(seg.text for seg in row)
        lines.append(Line(text, page, first.x, first.y, first.size, all(s.bold for s in row), table_row=True))
    return lines


def _edge_key(text: str) -> str:
    """Header/footer identity: digits vary from page to page ("Page 3"), the rest repeats."""
    return re.sub(r"\d+", "#", text.strip().lower())


def repeated_edge_keys(pages: Sequence[Sequence[str]]) -> set[str]:
    """Lines among the first or last two of a page that recur on at least half the pages (two at least)."""
    counts: Counter[str] = Counter()
    for lines in pages:
        content = [line for line in lines if line.strip()]
        counts.update({_edge_key(line) for line in content[:2] + content[-2:]})
    threshold = max(2, (len(pages) + 1) // 2)
    return {key for key, count in counts.items() if count >= threshold and key}


def drop_running_lines(pages: Sequence[Sequence[Line]], heights: Sequence[float] = (),
                       layout: PdfSettings = PdfSettings()) -> list[list[Line]]:
    """Pages without running headers, footers and page numbers (only ever among a page's first or last two lines).

    A line is running text when it recurs on half the pages, is a page number, or (for a leaflet too short
    for repetition to show) sits in the page's outer band (`edge_band`) in print smaller than the body's.
    """
    repeated = repeated_edge_keys([[line.text for line in page] for page in pages])
    body_size, _ = _body_style([line for page in pages for line in page])
    kept_pages = []
    for number, page in enumerate(pages):
        height = heights[number] if number < len(heights) else 0.0
        edges = set(range(min(2, len(page)))) | set(range(max(0, len(page) - 2), len(page)))
        kept_pages.append([line for i, line in enumerate(page)
                           if not (_at_edge(i, line, edges, height, layout)
                                   and _running(line, repeated, height, body_size, layout))])
    return kept_pages


def _in_margin(line: Line, height: float, layout: PdfSettings) -> bool:
    """In the page's top or bottom band (never, when the page height is unknown)."""
    band = layout.edge_band
    return height > 0 and not height * band <= line.y <= height * (1 - band)


def _at_edge(i: int, line: Line, edges: set[int], height: float, layout: PdfSettings) -> bool:
    """Among the first or last two lines; two columns put a page's last line mid-order, so margins count too."""
    return i in edges or _in_margin(line, height, layout)


def _running(line: Line, repeated: set[str], height: float, body_size: float, layout: PdfSettings) -> bool:
    """A repeated edge line, a page number, or small print in the margin."""
    if _edge_key(line.text) in repeated or PAGE_NUMBER.match(line.text):
        return True
    return _in_margin(line, height, layout) and line.size < body_size * layout.small_print_ratio


def most_repeated_line(pages: Sequence[Sequence[Line]]) -> tuple[str, int, int]:
    """(text, count, total) of the commonest line: a PDF that is mostly one line is a stamp, not an article."""
    texts = [line.text for page in pages for line in page]
    if not texts:
        return "", 0, 0
    key, count = Counter(_edge_key(t) for t in texts).most_common(1)[0]
    return next(t for t in texts if _edge_key(t) == key), count, len(texts)


def _body_style(lines: Sequence[Line]) -> tuple[float, bool]:
    """The size and weight most characters are set in."""
    sizes: Counter[float] = Counter()
    bold = 0
    for line in lines:
        sizes[round(line.size, 1)] += len(line.text)
        bold += len(line.text) if line.bold else 0
    total = sum(sizes.values()) or 1
    return (sizes.most_common(1)[0][0] if sizes else 0.0), bold > total / 2


def _looks_like_heading(line: Line, body_size: float, body_bold: bool, layout: PdfSettings) -> bool:
    """A short line, not a sentence or a list item, set larger than the body or bold where the body is not."""
    text = line.text
    if (line.table_row or line.is_list_item or len(text) > layout.heading_max_chars
            or len(text.split()) > layout.heading_max_words
            or _NOT_A_HEADING_END.search(text) or not any(c.isalpha() for c in text)):
        return False
    larger = line.size >= body_size * layout.heading_size_ratio
    bolder = line.bold and not body_bold and line.size >= body_size * 0.95
    return larger or bolder


def structure(pages: Sequence[Sequence[Line]], layout: PdfSettings = PdfSettings()) -> list[Block]:
    """Body lines and headings in reading order; consecutive lines of one heading (a wrapped heading) merged."""
    lines = [line for page in pages for line in page]
    body_size, body_bold = _body_style(lines)
    styles: list[tuple[float, bool]] = []
    flagged = [(line, _looks_like_heading(line, body_size, body_bold, layout)) for line in lines]
    for line, heading in flagged:
        if heading:
            styles.append((round(line.size, 1), line.bold))
    ranked = sorted(set(styles), key=lambda s: (-s[0], not s[1]))
    level_of = {style: rank + 1 for rank, style in enumerate(ranked)}
    pitches = [round(a.y - b.y, 1) for a, b in itertools.pairwise(lines)
               if a.page == b.page and 0 < a.y - b.y < 3 * max(a.size, 1) and not a.table_row]
    pitch = Counter(pitches).most_common(1)[0][0] if pitches else body_size * 1.2
    blocks: list[Block] = []
    previous: Line | None = None
    for line, heading in flagged:
        gap = previous is not None and previous.page == line.page and previous.y - line.y > layout.paragraph_gap_ratio * pitch
        level = level_of[(round(line.size, 1), line.bold)] if heading else 0
        last = blocks[-1] if blocks else None
        if (level and last is not None and last.heading_level == level and last.line.page == line.page
                and 0 < last.line.y - line.y <= 1.5 * line.size and not last.line.text.endswith("?")):
            joined = Line(f"{last.line.text} {line.text}", line.page, last.line.x, line.y, line.size, line.bold)
            blocks[-1] = Block(joined, level, last.new_paragraph)
        else:
            blocks.append(Block(line, level, bool(gap)))
        previous = line
    return blocks


def join_lines(lines: Sequence[Block]) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Body lines as text with (offset, page) marks: list items and table rows on their own lines, words cut
    by a line-end hyphen rejoined, a blank line between paragraphs."""
    parts: list[str] = []
    pages: list[tuple[int, int]] = []
    cursor = 0
    previous: Block | None = None
    for block in lines:
        line = block.line
        text = line.text
        if previous is not None:
            before = parts[-1]
            if re.search(r"[A-Za-z]-\Z", before) and text[:1].islower() and not line.is_list_item \
                    and not block.new_paragraph:
                parts[-1] = before[:-1]  # "tocilizu-" + "mab": one word
                cursor -= 1
                joint = ""
            elif line.table_row or previous.line.table_row or (block.new_paragraph and _SENTENCE_END.search(before)) or line.page != previous.line.page and _SENTENCE_END.search(before) and not line.is_list_item:
                joint = "\n\n"
            else:
                joint = "\n"
            parts.append(joint)
            cursor += len(joint)
        if not pages or pages[-1][1] != line.page:
            pages.append((cursor, line.page))
        parts.append(text)
        cursor += len(text)
        previous = block
    return "".join(parts), tuple(pages)
