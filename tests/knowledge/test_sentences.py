"""Sentence boundaries: every quote is one of these spans, so they must be right and exact."""

from __future__ import annotations

import pytest

from knowledge.sentences import split_sentences


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Dr. Lee will see you. Mr. and Mrs. Park came too.", ["Dr. Lee will see you.", "Mr. and Mrs. Park came too."]),
        ("Steroids, e.g. dexamethasone, are used. Ask i.e. your nurse.", ["Steroids, e.g. dexamethasone, are used.", "Ask i.e. your nurse."]),
        ("The U.S. FDA approved it in 2017. It was the first.", ["The U.S. FDA approved it in 2017.", "It was the first."]),
        ("Give 10 mg. Then wait.", ["Give 10 mg. Then wait."]),  # "mg." is a unit, not a sentence end
        ("J. R. R. Tolkien wrote books. He was British.", ["J. R. R. Tolkien wrote books.", "He was British."]),
    ],
)
def test_abbreviations_and_initials_do_not_end_a_sentence(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Call if your temperature is 38.5 degrees or more. Do not wait.", ["Call if your temperature is 38.5 degrees or more.", "Do not wait."]),
        ("Take 2.5 mg daily. Then rest.", ["Take 2.5 mg daily.", "Then rest."]),
        ("About 0.1% of people. Version 3.2.1 is out.", ["About 0.1% of people.", "Version 3.2.1 is out."]),
    ],
)
def test_decimal_numbers_do_not_end_a_sentence(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_bulleted_list_items_are_sentences_without_their_markers() -> None:
    text = "Call right away for:\n- a fever of 38 degrees\n* shaking chills\n+ confusion or trouble speaking\n• a seizure"

    assert sentences(text) == [
        "Call right away for:", "a fever of 38 degrees", "shaking chills", "confusion or trouble speaking", "a seizure",
    ]


def test_numbered_list_items_do_not_produce_sentences_that_are_just_numbers() -> None:
    text = "1. Referral and evaluation.\n2. Cell collection. It takes a day.\n10) Follow-up for 15 years"

    assert sentences(text) == [
        "Referral and evaluation.", "Cell collection.", "It takes a day.", "Follow-up for 15 years",
    ]


def test_a_number_ending_a_sentence_is_not_mistaken_for_a_list_marker() -> None:
    assert sentences("1. Rest for grade 2. Then drink water.") == ["Rest for grade 2.", "Then drink water."]


def test_question_and_exclamation_marks_and_closing_quotes() -> None:
    text = 'Is it safe? Yes! The nurse said "Call us." (Day or night.) Then hang up.'

    assert sentences(text) == ["Is it safe?", "Yes!", 'The nurse said "Call us."', "(Day or night.)", "Then hang up."]


def test_paragraphs_and_hard_wrapped_lines() -> None:
    text = "First paragraph ends without a period\n\nSecond paragraph is wrapped\nacross two lines. Done."

    assert sentences(text) == [
        "First paragraph ends without a period", "Second paragraph is wrapped\nacross two lines.", "Done.",
    ]


def test_lowercase_after_a_period_is_not_a_new_sentence() -> None:
    assert sentences("See the CRS section. you may also read on.") == ["See the CRS section. you may also read on."]


def test_offsets_are_exact_spans_in_order() -> None:
    text = "  Fever is common.  Call us!\n\n- Item one.\n- Item two\n"

    spans = split_sentences(text)

    assert spans == [(2, 18), (20, 28), (32, 41), (44, 52)]
    assert [text[s:e] for s, e in spans] == ["Fever is common.", "Call us!", "Item one.", "Item two"]


def test_spans_never_overlap_and_carry_no_outer_whitespace() -> None:
    text = (
        "CAR-T is a one-time treatment. Dr. Smith, M.D., explains it.\n"
        "Most people stay 2 weeks near the center, e.g. in a hotel.\n\n"
        "## Not a heading here\n1. First.\n2. Second? Yes.\n"
    )
    spans = split_sentences(text)

    assert all(a_end <= b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:]))
    for start, end in spans:
        assert text[start:end] == text[start:end].strip()
        assert text[start:end] not in {"1.", "2."}


def test_empty_and_punctuation_only_text_has_no_sentences() -> None:
    assert split_sentences("") == []
    assert split_sentences("   \n\n  ") == []
    assert split_sentences("- \n* ...\n") == []


def test_inline_numbered_items_do_not_produce_number_only_sentences() -> None:
    text = "Do this first. 2. The absence of spread. 3. The presence of lesions."

    assert sentences(text) == ["Do this first.", "The absence of spread.", "The presence of lesions."]
