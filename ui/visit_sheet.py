"""The caregiver's visit sheet: saved answers, own questions and notes, exported as Markdown or PDF.

State is a frozen `VisitSheet`; every change returns a new sheet, so the handlers stay pure and testable:

    sheet = add_answer(VisitSheet(), answer)
    sheet = with_user_text(sheet, questions="Can he drive next month?", notes="Fever log in the blue folder")
    Path("sheet.md").write_text(to_markdown(sheet))
    write_pdf(sheet, Path("sheet.pdf"))
"""

from __future__ import annotations

import datetime as dt
import os
import re
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

from knowledge.settings import ChatSettings
from knowledge.text import is_web_url, squash_whitespace
from qa.render import citation_numbers, numbered_sources, source_key
from qa.types import DISCLAIMER, Answer, Quote

SHEET_TITLE = "Visit sheet: questions for the care team"


@dataclass(frozen=True)
class SavedSource:
    """One numbered source of a saved answer: where its quotes come from."""

    number: int
    title: str
    section: str
    location: str  # the article's URL, or its file name when it has none

    def line(self) -> str:
        where = self.title if self.section in ("", self.title) else f"{self.title} — {self.section}"
        return f"{where} · {self.location}"


@dataclass(frozen=True)
class SavedQuote:
    text: str
    source: int  # the number of its SavedSource


@dataclass(frozen=True)
class SavedAnswer:
    """An answer as the caregiver saved it: the question, the quotes with their sources, the safety notice."""

    question: str
    triage: str
    notice: str
    quotes: tuple[SavedQuote, ...]
    sources: tuple[SavedSource, ...]
    suggested_questions: tuple[str, ...]
    abstained: bool = False


@dataclass(frozen=True)
class VisitSheet:
    """Everything the caregiver wants to take to the next visit."""

    answers: tuple[SavedAnswer, ...] = ()
    questions: tuple[str, ...] = ()  # the caregiver's own questions
    notes: str = ""
    suggested: tuple[str, ...] = ()  # suggested questions offered by saved answers, in order
    chosen: tuple[str, ...] = ()  # the suggested questions the caregiver kept

    @property
    def is_empty(self) -> bool:
        return not (self.answers or self.questions or self.notes.strip() or self.chosen)


def quote_location(quote: Quote) -> str:
    """A link for a quote: its URL when the article has one, else the article's file name."""
    if is_web_url(quote.url):
        return quote.url
    if quote.source_path:
        return Path(quote.source_path).name
    return quote.article


def saved_answer(answer: Answer) -> SavedAnswer:
    """The parts of an Answer worth printing, numbered like the chat's citations."""
    sources = numbered_sources(answer.quotes)
    numbers = citation_numbers(answer.quotes)
    saved_sources = tuple(
        SavedSource(numbers[source_key(s)], s.title, s.section + (f", p. {s.page}" if s.page else ""),
                    quote_location(s))
        for s in sources
    )
    quotes = [SavedQuote(squash_whitespace(q.text), numbers[source_key(q)]) for q in answer.quotes]
    return SavedAnswer(
        question=answer.question,
        triage=answer.triage,
        notice=plain_text(answer.notice),
        quotes=tuple(quotes),
        sources=saved_sources,
        suggested_questions=tuple(answer.suggested_questions),
        abstained=answer.abstained,
    )


def add_answer(sheet: VisitSheet, answer: Answer) -> VisitSheet:
    """Save an answer (once per question); its suggested questions are offered and kept by default."""
    saved = saved_answer(answer)
    if any(a.question == saved.question and a.quotes == saved.quotes for a in sheet.answers):
        return sheet
    new = tuple(q for q in saved.suggested_questions if q not in sheet.suggested)
    return replace(sheet, answers=sheet.answers + (saved,), suggested=sheet.suggested + new,
                   chosen=sheet.chosen + new)


def remove_answer(sheet: VisitSheet, position: int) -> VisitSheet:
    """Drop the saved answer at `position` (0-based); suggestions only it offered go too."""
    if not 0 <= position < len(sheet.answers):
        return sheet
    answers = sheet.answers[:position] + sheet.answers[position + 1:]
    offered = {q for a in answers for q in a.suggested_questions}
    suggested = tuple(q for q in sheet.suggested if q in offered)
    return replace(sheet, answers=answers, suggested=suggested,
                   chosen=tuple(q for q in sheet.chosen if q in offered))


def parse_questions(text: str) -> tuple[str, ...]:
    """One question per line; list markers and blank lines are dropped."""
    lines = (re.sub(r"^\s*(?:[-*•]|\d+[.)])\s*", "", line).strip() for line in (text or "").splitlines())
    return tuple(line for line in lines if line)


def with_user_text(sheet: VisitSheet, questions: str | None = None, notes: str | None = None,
                   chosen: list[str] | tuple[str, ...] | None = None) -> VisitSheet:
    """The sheet with the caregiver's own questions, notes and kept suggestions as typed in the form."""
    if questions is not None:
        sheet = replace(sheet, questions=parse_questions(questions))
    if notes is not None:
        sheet = replace(sheet, notes=notes.strip())
    if chosen is not None:
        sheet = replace(sheet, chosen=tuple(q for q in sheet.suggested if q in set(chosen)))
    return sheet


def clear_sheet() -> VisitSheet:
    return VisitSheet()


def plain_text(markdown: str) -> str:
    """Notices are short Markdown (bold only); the sheet prints them as text."""
    return re.sub(r"\*\*(.+?)\*\*", r"\1", markdown or "").strip()


def _today(date: dt.date | None) -> str:
    return (date or dt.date.today()).strftime("%d %B %Y").lstrip("0")


WRITE_LINE = "_" * 60


def question_groups(sheet: VisitSheet) -> list[tuple[str, tuple[str, ...]]]:
    """The caregiver's own questions first, then the suggestions they kept; empty groups are left out."""
    groups = [("My questions", sheet.questions), ("Suggested questions for the care team", sheet.chosen)]
    return [(title, questions) for title, questions in groups if questions]


def to_markdown(sheet: VisitSheet, date: dt.date | None = None, settings: ChatSettings = ChatSettings()) -> str:
    """The sheet as Markdown: title, date, questions with space for answers, saved answers with sources, notes."""
    out: list[str] = [f"# {SHEET_TITLE}", "", f"Date: {_today(date)}", ""]
    for title, questions in question_groups(sheet):
        out += [f"## {title}", ""]
        for i, question in enumerate(questions, start=1):
            out += [f"{i}. {question}", "", "   Answer:", *(["   " + WRITE_LINE] * settings.sheet_lines_per_question), ""]
    if sheet.answers:
        out += ["## What I read (saved answers, quoted from the articles)", ""]
        for i, answer in enumerate(sheet.answers, start=1):
            out += [f"### {i}. {answer.question}", ""]
            if answer.notice:
                out += [f"**{answer.notice}**", ""]
            if not answer.quotes:
                out += ["_Our articles did not answer this; ask the care team._", ""]
            for quote in answer.quotes:
                out += [f"> {quote.text} [{quote.source}]", ""]
            if answer.sources:
                out += ["Sources:", ""]
                out += [f"{s.number}. {s.line()}" for s in answer.sources]
                out += [""]
            out += ["What the care team said:", *([WRITE_LINE] * settings.sheet_lines_per_question), ""]
    out += ["## Notes", ""]
    if sheet.notes:
        out += [sheet.notes, ""]
    out += [*([WRITE_LINE] * settings.sheet_lines_for_notes), ""]
    out += ["---", "", f"_{DISCLAIMER}_", ""]
    return "\n".join(out)


# ---------------------------------------------------------------- PDF

_FONT_DIRS = (
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/TTF"),
    Path("/usr/local/share/fonts"),
    Path("/Library/Fonts"),
)
_FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf"}


def find_unicode_font() -> dict[str, Path] | None:
    """DejaVu Sans (regular, bold, oblique) from the system, or the copy that ships inside matplotlib."""
    dirs = list(_FONT_DIRS)
    try:
        from importlib.util import find_spec

        spec = find_spec("matplotlib")
        if spec and spec.submodule_search_locations:
            dirs += [Path(p) / "mpl-data" / "fonts" / "ttf" for p in spec.submodule_search_locations]
    except (ImportError, ValueError):
        pass
    for folder in dirs:
        files = {style: folder / name for style, name in _FONT_FILES.items()}
        if all(f.is_file() for f in files.values()):
            return files
    return None


_TRANSLITERATE = str.maketrans({
    "‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "...", "•": "-",
    "≥": ">=", "≤": "<=", "→": "->", "−": "-", "\u00a0": " ", "\u2009": " ", "\u202f": " ",
})


def latin1(text: str) -> str:
    """Fallback for the PDF core fonts, which only know Latin-1."""
    text = text.translate(_TRANSLITERATE)
    text = "".join(c for c in unicodedata.normalize("NFKC", text))
    out = []
    for char in text:
        try:
            char.encode("latin-1")
            out.append(char)
        except UnicodeEncodeError:
            stripped = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
            out.append(stripped if stripped and stripped.isascii() else "?")
    return "".join(out)


def to_pdf_bytes(sheet: VisitSheet, date: dt.date | None = None, font_files: dict[str, Path] | None = None,
                 use_unicode_font: bool = True, settings: ChatSettings = ChatSettings()) -> bytes:
    """The sheet as an A4 PDF, with ruled lines to write the care team's answers on."""
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    files = (font_files or find_unicode_font()) if use_unicode_font else None
    text = (lambda s: s) if files else latin1
    family = "DejaVu" if files else "Helvetica"

    class SheetPDF(FPDF):
        def footer(self) -> None:
            self.set_y(-12)
            self.set_font(family, "I", 8)
            self.set_text_color(90, 90, 90)
            self.cell(0, 6, text(f"patient-qa visit sheet · {_today(date)} · page {self.page_no()}"),
                      align="C")

    pdf = SheetPDF(format="A4")
    pdf.set_title(SHEET_TITLE)
    pdf.set_creator("patient-qa")
    pdf.set_auto_page_break(True, margin=16)
    pdf.set_margins(18, 16, 18)
    if files:
        for style, path in files.items():
            pdf.add_font("DejaVu", style, str(path))
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin
    newline = dict(new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def para(body: str, size: float = 11, style: str = "", indent: float = 0, height: float = 5.6,
             color: tuple[int, int, int] = (0, 0, 0)) -> None:
        pdf.set_font(family, style, size)
        pdf.set_text_color(*color)
        pdf.set_x(pdf.l_margin + indent)
        pdf.multi_cell(width - indent, height, text(body), align="L", **newline)

    def heading(body: str, size: float) -> None:
        if pdf.get_y() > pdf.h - 50:
            pdf.add_page()
        pdf.ln(3)
        para(body, size, "B", height=size * 0.5)
        pdf.ln(1.5)

    def writing_lines(count: int, indent: float = 0) -> None:
        pdf.set_draw_color(150, 150, 150)
        for _ in range(count):
            pdf.ln(8)
            if pdf.get_y() > pdf.h - 20:
                pdf.add_page()
            y = pdf.get_y()
            pdf.line(pdf.l_margin + indent, y, pdf.l_margin + width, y)
        pdf.ln(4)

    para(SHEET_TITLE, 18, "B", height=9)
    para(f"Date: {_today(date)}", 11, color=(60, 60, 60))
    pdf.ln(2)

    for title, questions in question_groups(sheet):
        heading(title, 14)
        for i, question in enumerate(questions, start=1):
            para(f"{i}. {question}", 11, "B")
            para("Answer:", 9, "I", indent=5, color=(90, 90, 90))
            writing_lines(settings.sheet_lines_per_question, indent=5)

    if sheet.answers:
        heading("What I read (saved answers, quoted from the articles)", 14)
        for i, answer in enumerate(sheet.answers, start=1):
            para(f"{i}. {answer.question}", 12, "B")
            pdf.ln(1)
            if answer.notice:
                para(answer.notice, 10.5, "B", color=(160, 0, 0) if answer.triage == "emergency" else (0, 0, 0))
                pdf.ln(1)
            if not answer.quotes:
                para("Our articles did not answer this; ask the care team.", 10.5, "I")
            for quote in answer.quotes:
                top = pdf.get_y()
                para(f"“{quote.text}” [{quote.source}]" if files else f"\"{quote.text}\" [{quote.source}]",
                     10.5, indent=6)
                pdf.set_draw_color(120, 120, 200)
                pdf.set_line_width(0.8)
                if pdf.get_y() > top:  # the quote did not cross a page break
                    pdf.line(pdf.l_margin + 2, top, pdf.l_margin + 2, pdf.get_y())
                pdf.set_line_width(0.2)
                pdf.ln(1.5)
            if answer.sources:
                para("Sources", 9.5, "B", color=(60, 60, 60))
                for source in answer.sources:
                    para(f"{source.number}. {source.line()}", 9.5, indent=3, height=4.8, color=(60, 60, 60))
            pdf.ln(1)
            para("What the care team said:", 9, "I", color=(90, 90, 90))
            writing_lines(settings.sheet_lines_per_question)

    heading("Notes", 14)
    if sheet.notes:
        para(sheet.notes, 11)
    writing_lines(settings.sheet_lines_for_notes)

    pdf.ln(2)
    para(DISCLAIMER, 9, "I", color=(60, 60, 60), height=4.6)
    return bytes(pdf.output())


def write_private(path: Path, data: bytes) -> Path:
    """Write a file only its owner can read (0600): a visit sheet holds a patient's questions and notes."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(data)
    os.chmod(path, 0o600)  # an older file of the same name keeps its mode otherwise
    return path


def write_pdf(sheet: VisitSheet, path: Path, date: dt.date | None = None,
              settings: ChatSettings = ChatSettings()) -> Path:
    return write_private(path, to_pdf_bytes(sheet, date, settings=settings))


def write_markdown(sheet: VisitSheet, path: Path, date: dt.date | None = None,
                   settings: ChatSettings = ChatSettings()) -> Path:
    return write_private(path, to_markdown(sheet, date, settings).encode("utf-8"))


def export_files(sheet: VisitSheet, folder: Path, date: dt.date | None = None,
                 settings: ChatSettings = ChatSettings()) -> tuple[Path, Path]:
    """Both exports in `folder`, named with the date: (visit-sheet-YYYY-MM-DD.md, ... .pdf)."""
    stamp = (date or dt.date.today()).isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    md = write_markdown(sheet, folder / f"visit-sheet-{stamp}.md", date, settings)
    pdf = write_pdf(sheet, folder / f"visit-sheet-{stamp}.pdf", date, settings)
    return md, pdf
