"""PDF loading: running headers, footers and page numbers gone, words and sentences rejoined, pages kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from kb_fixtures import DEJAVU, make_pdf, whitespace_tokens

from eval.leaflets import leaflet_pdf
from knowledge.chunking import chunk_document
from knowledge.loaders import LoadError, clean_pdf_pages, load_document, load_pdf
from knowledge.text import squash_whitespace

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


# ---------------------------------------------------------------- leaflets: structure from the layout

LEAFLET_HEADER = "Skin Cancer Prevention"  # the italic running header of issue 12: once, every title was this


def _leaflet(path: Path, title: str, sections: list[tuple[str, list[str]]], *, columns: bool = False,
             metadata_title: str = "", pages_apart: bool = False) -> Path:
    """A leaflet as a word processor prints it: italic running header, bold headings, "Page N of M" footer."""
    pdf = leaflet_pdf(LEAFLET_HEADER)
    if metadata_title:
        pdf.set_title(metadata_title)
    pdf.add_page()
    pdf.set_font("dejavu", "B", 18)
    pdf.multi_cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
    if columns:
        with pdf.text_columns(ncols=2, gutter=8, balance=True) as cols:
            for heading, paragraphs in sections:
                pdf.set_font("dejavu", "B", 13)
                with cols.paragraph(top_margin=3) as par:
                    par.write(heading)
                pdf.set_font("dejavu", "", 10)
                for paragraph in paragraphs:
                    with cols.paragraph(bottom_margin=2) as par:
                        par.write(paragraph)
    else:
        for number, (heading, paragraphs) in enumerate(sections):
            if pages_apart and number:
                pdf.add_page()
            pdf.set_font("dejavu", "B", 13)
            pdf.multi_cell(0, 8, heading, new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("dejavu", "", 11)
            for paragraph in paragraphs:
                pdf.multi_cell(0, 6, paragraph, align="J", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


needs_dejavu = pytest.mark.skipif(not DEJAVU.exists(), reason="fpdf2 needs the DejaVu fonts for bold and italic "
                                  "Unicode text (apt-get install fonts-dejavu-core; CI installs them)")

MELANOMA = [
    ("Symptoms", ["Signs of melanoma include a new spot on the skin or a mole that changes in size, shape or colour.",
                  "• a spot that bleeds or itches", "• a sore that does not heal"]),
    ("Prevention", ["Wear sunscreen every day and check your skin once a month."]),
]


@needs_dejavu
def test_three_leaflets_with_one_running_header_get_their_own_titles(tmp_path: Path) -> None:
    titles = ["Melanoma", "Basal cell carcinoma", "Sun safety for children"]
    docs = [load_pdf(_leaflet(tmp_path / f"leaflet{i}.pdf", title, MELANOMA, pages_apart=True))
            for i, title in enumerate(titles)]

    assert [doc.title for doc in docs] == titles


@needs_dejavu
def test_a_one_page_leaflet_is_titled_by_its_first_heading_not_its_header(tmp_path: Path) -> None:
    doc = load_pdf(_leaflet(tmp_path / "one.pdf", "Melanoma", MELANOMA, metadata_title="Microsoft Word - mel.docx"))

    assert doc.title == "Melanoma"
    assert not any(LEAFLET_HEADER in s.text or "Page 1" in s.text for s in doc.sections)


@needs_dejavu
def test_metadata_title_wins_over_the_first_heading(tmp_path: Path) -> None:
    doc = load_pdf(_leaflet(tmp_path / "meta.pdf", "Melanoma", MELANOMA, metadata_title="Melanoma: a guide"))

    assert doc.title == "Melanoma: a guide"
    assert [s.heading_path for s in doc.sections] == [("Symptoms",), ("Prevention",)]


@needs_dejavu
def test_headings_start_sections_and_never_glue_into_the_quoted_text(tmp_path: Path) -> None:
    doc = load_pdf(_leaflet(tmp_path / "mel.pdf", "Melanoma", MELANOMA, pages_apart=True))
    sections = {s.heading_path: s.text for s in doc.sections}

    assert list(sections) == [("Symptoms",), ("Prevention",)]
    assert sections[("Symptoms",)].startswith("Signs of melanoma include")
    assert sections[("Prevention",)] == "Wear sunscreen every day and check your skin once a month."
    assert not any(word in text for text in sections.values() for word in ("Melanoma\n", "Prevention", LEAFLET_HEADER))


@needs_dejavu
def test_bulleted_items_keep_one_item_per_line_and_are_quoted_alone(tmp_path: Path) -> None:
    from knowledge.sentences import split_sentences

    doc = load_pdf(_leaflet(tmp_path / "mel.pdf", "Melanoma", MELANOMA))
    text = doc.sections[0].text

    assert "colour.\n• a spot that bleeds or itches\n• a sore that does not heal" in text
    assert [text[s:e] for s, e in split_sentences(text)][-2:] == ["a spot that bleeds or itches", "a sore that does not heal"]


@needs_dejavu
def test_each_section_cites_the_page_it_is_on(tmp_path: Path) -> None:
    doc = load_pdf(_leaflet(tmp_path / "mel.pdf", "Melanoma", MELANOMA, pages_apart=True))
    symptoms, prevention = doc.sections

    assert symptoms.page_at(0) == 1 and symptoms.page_at(len(symptoms.text) - 1) == 1
    assert prevention.page_at(0) == 2


@needs_dejavu
def test_two_column_leaflet_is_read_in_column_order(tmp_path: Path) -> None:
    sections = [
        ("What CAR-T is", [("CAR-T cell therapy changes your own immune cells so that they can find and attack the "
                            "cancer. The cells are collected from your blood, changed in a laboratory and given back "
                            "to you through a drip a few weeks later.")]),
        ("Side effects", [("Fever is often the first sign of cytokine release syndrome, which usually starts in the "
                           "first week. Confusion or trouble speaking can be a sign of a nerve side effect called "
                           "ICANS, and your team will check your handwriting every day.")]),
        ("Staying close", [("Most people stay within two hours of the treatment centre for four weeks after the "
                            "infusion, with a carer who is with them day and night.")]),
    ]
    doc = load_pdf(_leaflet(tmp_path / "columns.pdf", "CAR-T cell therapy", sections, columns=True))
    found = {s.heading_path: squash_whitespace(s.text) for s in doc.sections}

    assert doc.title == "CAR-T cell therapy"
    assert list(found) == [(name,) for name, _ in sections]
    assert [found[(name,)] for name, _ in sections] == [paragraphs[0] for _, paragraphs in sections]


@needs_dejavu
def test_a_table_is_read_row_by_row(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_font("dejavu", fname=str(DEJAVU))
    pdf.add_font("dejavu", style="B", fname=str(DEJAVU.parent / "DejaVuSans-Bold.ttf"))
    pdf.add_page()
    pdf.set_font("dejavu", size=11)
    pdf.multi_cell(0, 6, "Your care team gives these medicines when a side effect starts.", new_x="LMARGIN", new_y="NEXT")
    rows = [("Medicine", "Used for"), ("Tocilizumab", "Cytokine release syndrome"), ("Dexamethasone", "ICANS")]
    with pdf.table() as table:
        for cells in rows:
            row = table.row()
            for cell in cells:
                row.cell(cell)
    pdf.output(str(tmp_path / "table.pdf"))

    text = load_pdf(tmp_path / "table.pdf").sections[0].text

    assert text.endswith("Medicine | Used for\n\nTocilizumab | Cytokine release syndrome\n\nDexamethasone | ICANS")


def test_a_scanned_pdf_without_a_text_layer_says_to_ocr_it(tmp_path: Path) -> None:
    from fpdf import FPDF
    from PIL import Image, ImageDraw

    scan = Image.new("L", (600, 200), 255)
    ImageDraw.Draw(scan).text((20, 80), "Fever after CAR-T: call the team", fill=0)
    pdf = FPDF()
    pdf.add_page()
    pdf.image(scan, x=10, y=10, w=180)
    pdf.output(str(tmp_path / "scan.pdf"))

    with pytest.raises(LoadError) as caught:
        load_pdf(tmp_path / "scan.pdf")
    assert str(caught.value).startswith("no text layer (scanned?): OCR it first")


def test_a_pdf_that_is_mostly_one_repeated_line_is_skipped_with_a_reason(tmp_path: Path) -> None:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=14)
    for _ in range(12):
        pdf.cell(0, 10, "DRAFT - NOT FOR DISTRIBUTION", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 10, "Fever is common.", new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(tmp_path / "stamp.pdf"))

    with pytest.raises(LoadError, match="repeated line") as caught:
        load_pdf(tmp_path / "stamp.pdf")
    assert "DRAFT" in str(caught.value) and "\n" not in str(caught.value)
