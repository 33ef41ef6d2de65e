"""PDF loading: running headers, footers and page numbers gone, words and sentences rejoined, pages kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from kb_fixtures import DEJAVU, make_pdf, whitespace_tokens

from knowledge.chunking import chunk_document
from knowledge.loaders import clean_pdf_pages, load_document, load_pdf

HEADER = "Cancer Center Patient Guide"
PAGE_1 = [
    "Fever after the infusion is common. Call the team if you feel unwell. "
    "The doctors will check your blood every day while you stay near the hospital.",
    "Your care team will give you tocilizu-",
    "mab if cytokine release syndrome starts.",
]
PAGE_2 = [
    "The \ufb01nal check happens at the clinic before you go home. Bring your medication list and the "
    "phone number of your care team, and ask which symptoms mean you should call them at night.",
]


@pytest.fixture(scope="module")
def guide(tmp_path_factory: pytest.TempPathFactory):
    """A two-page justified PDF with a running header, 'Page n of 2' footers, a hyphenated word and a ligature."""
    path = tmp_path_factory.mktemp("pdf") / "infusion-guide.pdf"
    make_pdf(path, [PAGE_1, PAGE_2], header=HEADER, footer_page_numbers=True, title="Infusion day guide")
    return load_document(path)


def test_running_header_footer_and_page_numbers_are_removed(guide) -> None:
    text = guide.sections[0].text

    assert HEADER not in text
    assert "Page" not in text and "of 2" not in text
    assert text.startswith("Fever after the infusion is common.")
    assert text.endswith("call them at night.")


def test_word_hyphenated_at_a_line_end_is_joined(guide) -> None:
    text = guide.sections[0].text

    assert "give you tocilizumab if cytokine release syndrome starts." in text
    assert "tocilizu-" not in text


def test_justified_double_spaces_are_collapsed(guide) -> None:
    text = guide.sections[0].text

    assert "  " not in text
    assert "Call the team if you feel unwell." in text


@pytest.mark.skipif(not DEJAVU.exists(), reason="no DejaVu font to draw a ligature; NFKC is tested on clean_pdf_pages")
def test_ligature_is_unified(guide) -> None:
    text = guide.sections[0].text

    assert "\ufb01" not in text
    assert "The final check happens at the clinic" in text


def test_title_comes_from_pdf_metadata(guide) -> None:
    assert guide.title == "Infusion day guide"
    assert guide.kind == "pdf"


def test_each_passage_keeps_its_page_number(guide) -> None:
    section = guide.sections[0]
    text = section.text

    assert section.page_at(text.index("Fever after")) == 1
    assert section.page_at(text.index("tocilizumab")) == 1
    assert section.page_at(text.index("check happens")) == 2
    assert section.page_at(len(text) - 1) == 2


def test_chunks_cite_the_page_they_start_and_end_on(guide) -> None:
    chunks = chunk_document(guide, "d", whitespace_tokens, target_words=12, max_tokens=256, overlap=0)

    first = next(c for c in chunks if c.text.startswith("Fever after"))
    last = next(c for c in chunks if "call them at night" in c.text)
    assert (first.page_start, first.page_end) == (1, 1)
    assert last.page_start == 2 and last.page_end == 2
    assert [c.page_start for c in chunks] == sorted(c.page_start for c in chunks)


def test_sentence_and_word_cut_by_a_page_break_are_rejoined(tmp_path: Path) -> None:
    path = make_pdf(
        tmp_path / "flow.pdf",
        [["Most people stay within two hours of the treatment center for four"],
         ["weeks after the infusion. Your team gives you a wallet card with the hospi-"],
         ["tal phone number. Keep it with you."]],
        align="L",
    )

    doc = load_pdf(path)
    section = doc.sections[0]

    assert "for four\nweeks after the infusion." in section.text
    assert "with the hospital phone number." in section.text
    assert section.page_at(section.text.index("weeks after")) == 2
    assert section.page_at(section.text.index("Keep it")) == 3


def test_clean_pdf_pages_unifies_ligatures_and_drops_repeated_edges() -> None:
    pages = [
        "Hospital Guide 2025\n\ufb01rst page text is here and it is long.\n- 1 -",
        "Hospital Guide 2025\nThe o\ufb03ce is on the second \ufb02oor.\n- 2 -",
        "Hospital Guide 2025\nThird   page,\u00a0\u00a0with  wide spaces.\n3",
    ]

    cleaned = clean_pdf_pages(pages)

    assert cleaned == [
        "first page text is here and it is long.",
        "The office is on the second floor.",
        "Third page, with wide spaces.",
    ]


def test_body_lines_that_merely_look_alike_are_kept() -> None:
    pages = ["Call 911 for chest pain.\nPage 1", "Rest at home.\nPage 2"]

    assert clean_pdf_pages(pages) == ["Call 911 for chest pain.", "Rest at home."]


def test_word_document_metadata_title_is_ignored(tmp_path: Path) -> None:
    path = make_pdf(tmp_path / "wallet-card.pdf", [["Carry this card at all times."]], title="Microsoft Word - card.docx")

    assert load_pdf(path).title == "Wallet card"


def test_a_quote_cites_the_page_it_is_on_even_inside_a_chunk_that_crosses_pages() -> None:
    from knowledge.chunking import chunk_document
    from knowledge.documents import Document, Section

    first = "Fever is the first sign. Chills may follow. "
    second = "Tocilizumab treats it. Steroids help too."
    section = Section((), first + second, ((0, 3), (len(first), 4)))
    doc = Document(title="Guide", source_path="guide.pdf", sections=(section,), kind="pdf")
    (chunk,) = chunk_document(doc, "d", lambda texts: [len(t.split()) + 2 for t in texts], target_words=100)
    assert (chunk.page_start, chunk.page_end) == (3, 4)
    assert chunk.page_at(chunk.text.index("Chills")) == 3
    assert chunk.page_at(chunk.text.index("Tocilizumab")) == 4
