"""The visit sheet as pure state, and its Markdown and PDF exports."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from pypdf import PdfReader
from ui_fixtures import CRS_QUOTE, FEVER_QUOTE, make_answer

from knowledge.settings import Settings
from knowledge.text import squash_whitespace
from qa.types import DISCLAIMER
from ui import visit_sheet as vs

DATE = dt.date(2026, 3, 14)


def _pdf_text(data: bytes) -> str:
    return " ".join(squash_whitespace(page.extract_text()) for page in PdfReader(io.BytesIO(data)).pages)


@pytest.fixture
def sheet() -> vs.VisitSheet:
    sheet = vs.add_answer(vs.VisitSheet(), make_answer("What is CRS?"))
    sheet = vs.add_answer(sheet, make_answer("He has a fever of 39 now", "emergency", (FEVER_QUOTE,),
                                             suggested=("Who do we call at night?",)))
    return vs.with_user_text(sheet, questions="- When can he drive again?\n\n2) Can we travel home?",
                             notes="Temperature 38.5 °C at 6 pm — gave paracetamol")


def test_saving_keeps_question_quotes_sources_and_notice(sheet):
    crs, fever = sheet.answers
    assert crs.question == "What is CRS?"
    assert crs.quotes == (vs.SavedQuote(CRS_QUOTE.text, 1),)
    assert crs.sources[0].location == "cytokine-release-syndrome.md"  # no URL: the article's file name
    assert fever.sources[0].location == "https://example.org/follow-up"
    assert fever.notice.startswith("If this is happening now") and "**" not in fever.notice


def test_state_changes_return_new_sheets(sheet):
    assert vs.add_answer(sheet, make_answer("What is CRS?")) == sheet  # saved once
    assert sheet.questions == ("When can he drive again?", "Can we travel home?")
    assert sheet.suggested == ("How likely is CRS with my product?", "Who do we call at night?")
    assert sheet.chosen == sheet.suggested  # kept by default
    kept = vs.with_user_text(sheet, chosen=["Who do we call at night?"])
    assert kept.chosen == ("Who do we call at night?",) and sheet.chosen != kept.chosen
    removed = vs.remove_answer(sheet, 0)
    assert [a.question for a in removed.answers] == ["He has a fever of 39 now"]
    assert removed.suggested == ("Who do we call at night?",)
    assert vs.remove_answer(sheet, 7) == sheet
    assert vs.clear_sheet().is_empty and not sheet.is_empty


def test_markdown_export(sheet):
    text = vs.to_markdown(sheet, DATE)
    assert text.startswith(f"# {vs.SHEET_TITLE}\n\nDate: 14 March 2026")
    assert "## My questions\n\n1. When can he drive again?" in text
    assert "## Suggested questions for the care team" in text
    assert f"> {CRS_QUOTE.text} [1]" in text
    assert "1. Cytokine release syndrome (CRS): what to know — What is CRS? · cytokine-release-syndrome.md" in text
    assert "What the care team said:" in text and vs.WRITE_LINE in text  # room to write the answers
    assert "Temperature 38.5 °C at 6 pm — gave paracetamol" in text
    assert DISCLAIMER in text


def test_the_room_to_write_follows_the_settings(sheet):
    def ruled(text: str) -> int:
        return text.count(vs.WRITE_LINE)

    default = vs.to_markdown(sheet, DATE)
    questions = sum(len(group) for _, group in vs.question_groups(sheet))
    chat = Settings().chat
    per_item = questions + len(sheet.answers)  # a question on the sheet and each saved answer get writing room
    assert ruled(default) == per_item * chat.sheet_lines_per_question + chat.sheet_lines_for_notes
    roomy = Settings().updated(sheet_lines_per_question=5, sheet_lines_for_notes=10).chat
    assert ruled(vs.to_markdown(sheet, DATE, roomy)) == per_item * 5 + 10


def test_pdf_export_has_title_date_questions_quotes_sources_and_notes(sheet):
    text = _pdf_text(vs.to_pdf_bytes(sheet, DATE))
    for expected in (vs.SHEET_TITLE, "Date: 14 March 2026", "When can he drive again?", "Can we travel home?",
                     "Many people hear CRS called a", "cytokine-release-syndrome.md", "Who do we call at night?",
                     "call your treatment center's 24-hour number right away",
                     "Temperature 38.5 °C at 6 pm — gave paracetamol", "What the care team said:"):
        assert expected in text, expected


def test_pdf_without_a_unicode_font_falls_back_to_core_fonts(sheet):
    text = _pdf_text(vs.to_pdf_bytes(sheet, DATE, use_unicode_font=False))
    assert "When can he drive again?" in text
    assert "Temperature 38.5 °C at 6 pm - gave paracetamol" in text  # the dash transliterated
    assert vs.latin1("“quoted” — ≥ 38 °C → call") == '"quoted" - >= 38 °C -> call'


def test_export_files_are_named_by_date(tmp_path, sheet):
    md, pdf = vs.export_files(sheet, tmp_path, DATE)
    assert md.name == "visit-sheet-2026-03-14.md" and pdf.name == "visit-sheet-2026-03-14.pdf"
    assert pdf.read_bytes().startswith(b"%PDF")


def test_a_unicode_font_is_found_here():
    # the system DejaVu (fonts-dejavu-core) or the copy matplotlib ships
    assert vs.find_unicode_font() is not None


def test_long_sheets_flow_onto_more_pages():
    sheet = vs.VisitSheet()
    for i in range(12):
        sheet = vs.add_answer(sheet, make_answer(f"Question number {i}?"))
    text = _pdf_text(vs.to_pdf_bytes(sheet, DATE))
    assert "Question number 11?" in text and "page 2" in text
