"""Reading order and structure rules of `knowledge.pdf_layout`, on runs as pypdf reports them (no PDF drawn)."""

from __future__ import annotations

from knowledge.pdf_layout import (
    Run,
    drop_running_lines,
    font_flags,
    join_lines,
    page_lines,
    structure,
)
from knowledge.settings import Settings

WIDTH = 595.0


def _texts(lines) -> list[str]:
    return [line.text for line in lines]


def test_font_names_and_weights_say_bold_and_italic() -> None:
    assert font_flags("/ABCDEF+DejaVuSans-Bold") == (True, False)
    assert font_flags("/Helvetica-BoldOblique") == (True, True)
    assert font_flags("/Arial-ItalicMT") == (False, True)
    assert font_flags("/Calibri", weight=700) == (True, False)
    assert font_flags("/TimesNewRomanPSMT") == (False, False)


def test_two_columns_are_read_left_column_first_even_when_their_lines_do_not_align() -> None:
    runs = [Run("A Leaflet Title For Patients", 30, 780, 18, bold=True)]
    left = ["Left one starts the story and goes on", "left two carries on with more words here",
            "left three ends the first column of text."]
    right = ["Right one continues the text after that", "right two has several more words too",
             "right three closes the second column now."]
    runs += [Run(t, 30, 740 - 12 * i, 10) for i, t in enumerate(left)]
    runs += [Run(t, 310, 735 - 12 * i, 10) for i, t in enumerate(right)]  # baselines offset from the left's

    assert _texts(page_lines(runs, 1, WIDTH)) == ["A Leaflet Title For Patients", *left, *right]


def test_short_cells_side_by_side_are_a_table_read_row_by_row() -> None:
    rows = [("Medicine", "Used for"), ("Tocilizumab", "Cytokine release"), ("Steroids", "ICANS")]
    runs = [Run(cell, 30 + 250 * col, 700 - 20 * r, 11) for r, row in enumerate(rows) for col, cell in enumerate(row)]

    lines = page_lines(runs, 1, WIDTH)

    assert _texts(lines) == ["Medicine | Used for", "Tocilizumab | Cytokine release", "Steroids | ICANS"]
    assert all(line.table_row for line in lines)


def test_runs_of_one_line_in_different_fonts_are_one_line() -> None:
    runs = [Run("Call the team", 30, 700, 11), Run("at once", 30 + 14 * 5.5, 700, 11, bold=True),
            Run("if you have a fever.", 30 + 22 * 5.5, 700, 11)]

    assert _texts(page_lines(runs, 1, WIDTH)) == ["Call the team at once if you have a fever."]


def _page(number: int, body: list[str], header: str = "Skin Cancer Prevention", size: float = 11):
    runs = [Run(header, 200, 800, 9, italic=True)]
    runs += [Run(text, 30, 760 - 14 * i, size) for i, text in enumerate(body)]
    runs.append(Run(f"Page {number} of 3", 270, 30, 9))
    return page_lines(runs, number, WIDTH)


def test_running_header_and_page_footer_go_before_anything_is_read() -> None:
    bodies = ["Wear sunscreen every day.", "Check your skin once a month.", "See a doctor about a changing spot."]
    pages = [_page(n, [body]) for n, body in enumerate(bodies, start=1)]

    kept = drop_running_lines(pages, [842.0] * 3)

    assert [_texts(p) for p in kept] == [[body] for body in bodies]


def test_a_one_page_leaflets_small_print_in_the_top_margin_is_a_header() -> None:
    (page,) = drop_running_lines([_page(1, ["Melanoma", "Signs of melanoma include a new spot."])], [842.0])

    assert _texts(page) == ["Melanoma", "Signs of melanoma include a new spot."]


def test_headings_are_short_lines_set_larger_or_bolder_and_get_levels_by_size() -> None:
    runs = [Run("Melanoma", 30, 780, 18, bold=True), Run("Symptoms", 30, 750, 13, bold=True),
            Run("Signs of melanoma include a new spot on the skin.", 30, 735, 11),
            Run("What to watch", 30, 715, 11, bold=True),
            Run("A spot that changes size, shape or colour.", 30, 700, 11),
            Run("Prevention", 30, 680, 13, bold=True), Run("Wear sunscreen every day.", 30, 665, 11),
            Run("A bold sentence in the body is not a heading.", 30, 650, 11, bold=True)]

    blocks = structure([page_lines(runs, 1, WIDTH)])

    assert [(b.line.text, b.heading_level) for b in blocks if b.heading_level] == [
        ("Melanoma", 1), ("Symptoms", 2), ("What to watch", 3), ("Prevention", 2)]


def test_how_much_larger_a_heading_is_set_is_a_setting() -> None:
    runs = [Run("Side effects", 30, 760, 12.5), Run("Fever is the most common side effect after CAR-T.", 30, 740, 11),
            Run("Most fevers start in the first week after the infusion.", 30, 725, 11)]
    lines = [page_lines(runs, 1, WIDTH)]

    assert [b.heading_level for b in structure(lines)] == [1, 0, 0]  # 12.5 pt is 1.14 times the body's 11 pt
    stricter = Settings().updated(heading_size_ratio=1.2).pdf
    assert [b.heading_level for b in structure(lines, stricter)] == [0, 0, 0]


def test_a_heading_wrapped_over_two_lines_is_one_heading() -> None:
    runs = [Run("What happens after the infusion and", 30, 760, 14, bold=True),
            Run("in the weeks that follow", 30, 744, 14, bold=True),
            Run("Most people stay near the hospital for four weeks after the infusion.", 30, 725, 11)]

    (heading, body) = structure([page_lines(runs, 1, WIDTH)])

    assert heading.line.text == "What happens after the infusion and in the weeks that follow"
    assert heading.heading_level == 1 and body.heading_level == 0


def test_list_items_keep_their_own_lines_and_a_hyphen_at_a_line_end_rejoins_the_word() -> None:
    runs = [Run("Signs to watch for include:", 30, 760, 11), Run("• fever above 38 degrees", 30, 746, 11),
            Run("• confusion or trouble speaking", 30, 732, 11), Run("Your team may give you tocilizu-", 30, 718, 11),
            Run("mab for it.", 30, 704, 11)]

    text, pages = join_lines(structure([page_lines(runs, 4, WIDTH)]))

    assert text == ("Signs to watch for include:\n• fever above 38 degrees\n• confusion or trouble speaking\n"
                    "Your team may give you tocilizumab for it.")
    assert pages == ((0, 4),)
