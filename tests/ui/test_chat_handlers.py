"""The chat without a browser: a turn, banners, the sources panel, feedback, the visit sheet."""

from __future__ import annotations

import re
from dataclasses import replace

from pypdf import PdfReader
from ui_fixtures import CRS_QUOTE, FEVER_QUOTE, FakeAssistant, make_answer

from knowledge.text import squash_whitespace
from qa import safety
from qa.render import ABSTAIN_MESSAGE
from qa.types import DISCLAIMER
from ui import chat_handlers as chat
from ui import chat_render as render
from ui import visit_sheet as vs
from ui.feedback import FeedbackStore


def _turn(assistant, question, history=None, answers=None):
    return list(chat.answer_turn(assistant, question, history or [], answers or []))


# ---------------------------------------------------------------- a turn


def test_a_turn_shows_it_is_working_then_the_whole_answer(fake_assistant):
    steps = _turn(fake_assistant, "What is CRS?")
    texts = [history[-1]["content"] for _, history, _, _ in steps]
    assert texts[0] == render.THINKING_MESSAGE  # something shows before the answer is ready
    assert len(steps) == 2, "a finished answer is shown at once, not replayed block by block"
    final = texts[-1]
    answer = steps[-1][2][-1]
    assert final == render.render_message(answer, chat.articles_root(fake_assistant))
    assert f"> {CRS_QUOTE.text} [1]" in final  # a blockquote with its numbered citation
    assert DISCLAIMER in final


def test_the_turn_holds_an_answer_slot_only_while_computing(fake_assistant):
    import threading

    slots = threading.BoundedSemaphore(1)
    turn = chat.answer_turn(fake_assistant, "What is CRS?", [], [], slots=slots)
    next(turn)  # the thinking message: no slot taken yet
    assert slots.acquire(blocking=False)
    slots.release()
    next(turn)  # the answer: computed, and the slot given back
    assert slots.acquire(blocking=False)


def test_a_turn_clears_the_box_keeps_the_question_and_records_the_answer(fake_assistant):
    box, history, answers, panel = _turn(fake_assistant, "  What is CRS?  ")[-1]
    assert box == ""
    assert history[0] == {"role": "user", "content": "What is CRS?"}
    assert history[1]["role"] == "assistant"
    assert [a.question for a in answers] == ["What is CRS?"]
    assert "Cytokine release syndrome (CRS): what to know" in panel


def test_follow_up_questions_pass_the_earlier_questions_as_history(fake_assistant):
    *_, (_, history, answers, _) = _turn(fake_assistant, "What is CRS?")
    _turn(fake_assistant, "how long does it last?", history, answers)
    assert fake_assistant.calls[-1] == ("how long does it last?", ["What is CRS?"])


def test_gradio6_content_lists_are_read_as_text():
    history = [{"role": "user", "content": [{"type": "text", "text": "What is CRS?"}], "metadata": None}]
    assert chat.plain_history(history) == [{"role": "user", "content": "What is CRS?"}]


def test_empty_question_asks_nothing(fake_assistant):
    steps = _turn(fake_assistant, "   ")
    assert len(steps) == 1 and steps[0][1] == []
    assert fake_assistant.calls == []


def test_an_error_shows_an_apology_not_a_traceback():
    class Broken(FakeAssistant):
        def ask(self, question, history=(), id=None):
            raise RuntimeError("index on fire")

    *_, (_, history, answers, _) = _turn(Broken(), "What is CRS?")
    assert history[-1]["content"] == render.ERROR_MESSAGE
    assert answers == []


def test_the_question_is_shown_as_text_not_html(fake_assistant):
    question = '<script>alert(1)</script><img src=x onerror="alert(2)"> what is CRS?'
    _, history, _, panel = _turn(fake_assistant, question)[-1]
    assert "<script" not in history[0]["content"] and "<img" not in history[0]["content"]
    assert "&lt;script&gt;" in history[0]["content"]
    assert "<script" not in panel and "<img" not in panel and "&lt;img" in panel


# ---------------------------------------------------------------- banners


def test_banner_per_triage():
    assert render.banner_kind(make_answer("fever now", "emergency", (FEVER_QUOTE,))) == "emergency"
    assert render.banner_kind(make_answer("stop my pills?", "defer")) == "defer"
    assert render.banner_kind(make_answer("pizza?", "out_of_scope")) == "out_of_scope"
    assert render.banner_kind(make_answer("unknown", "general", (), (), abstained=True)) == "no_answer"
    assert render.banner_kind(make_answer("What is CRS?")) is None


def test_the_emergency_banner_comes_first_is_red_and_is_announced(fake_assistant):
    final = _turn(fake_assistant, "my husband had car t 3 days ago and now has a fever of 39")[-1][1][-1]["content"]
    assert final.startswith('<div class="pqa-banner pqa-banner-emergency" role="alert">')
    assert "call your treatment center's 24-hour number right away" in final.split("</div>")[0]
    assert "<strong>" in final.split("</div>")[0] and "**" not in final.split("</div>")[0]
    assert final.count("pqa-banner-emergency") == 1  # the notice is shown once, as the banner
    assert final.index("pqa-banner") < final.index(FEVER_QUOTE.text)


def test_the_message_is_built_from_the_answer_fields_not_its_markdown():
    for answer in (make_answer("What is CRS?"), make_answer("fever now", "emergency", (FEVER_QUOTE,)),
                   make_answer("stop my pills?", "defer"), make_answer("pizza?", "out_of_scope"),
                   make_answer("unknown", "general", (), (), abstained=True)):
        assert render.render_message(replace(answer, markdown="")) == render.render_message(answer)
    scope = render.render_message(make_answer("best pizza?", "out_of_scope"))
    assert all(example in scope for example in safety.SCOPE_EXAMPLES)  # from Answer.examples
    crs = render.render_message(make_answer("What is CRS?"))
    assert "**Questions you could ask your care team**\n- How likely is CRS with my product?" in crs
    assert "1. *Cytokine release syndrome (CRS): what to know*" in crs  # the numbered Sources list


def test_a_long_question_note_shows_under_the_banner():
    answer = replace(make_answer("fever now", "emergency", (FEVER_QUOTE,)), note="Your question was long.")
    blocks = render.message_blocks(answer)
    assert "pqa-banner-emergency" in blocks[0] and blocks[1] == "*Your question was long.*"


def test_small_talk_gets_the_prompt_without_a_not_covered_banner():
    from qa.assistant import empty_answer

    message = render.render_message(empty_answer("hello"))
    assert "pqa-banner" not in message and "Ask me anything" in message
    abstained = render.render_message(make_answer("unknown thing", "general", (), (), abstained=True))
    assert ABSTAIN_MESSAGE in abstained and abstained.count(ABSTAIN_MESSAGE) == 1


def test_every_banner_is_announced_to_screen_readers():
    for triage, role in (("defer", "status"), ("out_of_scope", "status"), ("emergency", "alert")):
        message = render.render_message(make_answer("q", triage, (FEVER_QUOTE,)))
        assert message.startswith('<div class="pqa-banner ')
        assert f'role="{role}"' in message.split(">")[0]


def test_defer_and_out_of_scope_look_different_from_answers_and_from_each_other():
    defer = render.render_message(make_answer("Should I stop my steroids?", "defer"))
    scope = render.render_message(make_answer("best pizza?", "out_of_scope"))
    plain = render.render_message(make_answer("What is CRS?"))
    none = render.render_message(make_answer("unknown thing", "general", (), (), abstained=True))
    assert "pqa-banner-defer" in defer and "A decision for your care team" in defer
    assert "pqa-banner-scope" in scope and "Outside what our articles cover" in scope
    assert "pqa-banner-scope" in none and "Not covered by our articles" in none
    assert "pqa-banner" not in plain
    assert "pqa-banner-emergency" not in defer + scope + none


def test_the_page_disclaimer_is_the_answers_disclaimer():
    page = render.disclaimer_html()
    assert re.sub(r"</?strong>", "", page).count(DISCLAIMER) == 1
    assert "<strong>This is general information, not medical advice.</strong>" in page
    assert "<strong>In an emergency" in page


# ---------------------------------------------------------------- sources panel


def test_sources_panel_highlights_the_quote_inside_its_passage():
    panel = render.sources_html(make_answer("What is CRS?"))
    assert "<mark>Many people hear CRS called a \"cytokine storm.\"</mark>" in panel
    assert "CRS can sound frightening" in panel  # the passage around the quote
    assert "What is CRS?" in panel  # the section
    assert "Article file: <code>cytokine-release-syndrome.md</code>" in panel  # no URL: the file name


def test_sources_panel_links_to_the_original_when_there_is_a_url():
    panel = render.sources_html(make_answer("fever", "emergency", (FEVER_QUOTE,)))
    assert 'href="https://example.org/follow-up"' in panel and 'rel="noopener noreferrer"' in panel


def test_passage_is_escaped_before_quoted_spans_are_marked():
    context = 'Intro <img src=x onerror="alert(1)"> text. Rest   helps <b>a lot</b>. End.'
    html = render.highlight_passage(context, ["Rest helps <b>a lot</b>."])
    assert "<img" not in html and "<b>" not in html
    assert "&lt;img src=x onerror=\"alert(1)\"&gt;" in html
    assert "<mark>Rest   helps &lt;b&gt;a lot&lt;/b&gt;.</mark>" in html  # whitespace-tolerant match
    assert re.sub(r"</?mark>", "", html).count("<") == 0


def test_overlapping_quotes_make_one_mark():
    html = render.highlight_passage("One two three four.", ["One two three", "two three four."])
    assert html == "<mark>One two three four.</mark>"


def test_sources_numbering_matches_the_citations():
    second = CRS_QUOTE.__class__(**{**CRS_QUOTE.__dict__, "section": "How is CRS treated?",
                                     "text": "CRS can sound frightening, but CAR-T centers treat it every day."})
    answer = make_answer("What is CRS?", quotes=(CRS_QUOTE, second))
    message, panel = render.render_message(answer), render.sources_html(answer)
    assert "cytokine storm.\" [1]" in message and "every day. [2]" in message
    assert panel.index('id="pqa-source-1"') < panel.index("What is CRS?</p>") < panel.index('id="pqa-source-2"')


def test_sources_panel_for_an_answer_without_quotes_says_why():
    panel = render.sources_html(make_answer("best pizza?", "out_of_scope"))
    assert "outside what our articles cover" in panel
    assert render.sources_html(None) == render.SOURCES_PLACEHOLDER


def test_clicking_an_earlier_message_selects_its_answer(fake_assistant):
    *_, (_, history, answers, _) = _turn(fake_assistant, "What is CRS?")
    *_, (_, history, answers, _) = _turn(fake_assistant, "fever of 39 now", history, answers)
    assert chat.select_answer(answers, history, 1)[0] == 0  # first answer
    assert chat.select_answer(answers, history, 0)[0] == 0  # its question
    position, panel = chat.select_answer(answers, history, 3)
    assert position == 1 and "Long-term follow-up after CAR-T" in panel
    assert chat.current_answer(answers, None).question == "fever of 39 now"


# ---------------------------------------------------------------- feedback


def test_like_dislike_comment_and_take_back(tmp_path, fake_assistant):
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    *_, (_, history, answers, _) = _turn(fake_assistant, "What is CRS?")
    rows, row, message = chat.record_feedback(store, answers, history, 1, True, {})
    assert row is not None and "Thank you" in message
    assert chat.record_comment(store, row, "clear and short") != ""
    rows, _, _ = chat.record_feedback(store, answers, history, 1, False, rows)  # changed their mind
    [saved] = store.rows()
    assert (saved.rating, saved.question, saved.quotes, saved.comment) == (
        "dislike", "What is CRS?", (CRS_QUOTE.text,), "clear and short")
    rows, _, _ = chat.record_feedback(store, answers, history, 1, "", rows)  # thumb clicked again: taken back
    assert store.rows() == [] and rows == {}


def test_no_store_means_no_feedback(fake_assistant):
    *_, (_, history, answers, _) = _turn(fake_assistant, "What is CRS?")
    assert chat.record_feedback(None, answers, history, 1, True, {}) == ({}, None, "")


# ---------------------------------------------------------------- visit sheet from the chat


def test_save_latest_or_selected_answer_to_the_sheet(fake_assistant):
    sheet = vs.VisitSheet()
    sheet, message = chat.save_to_sheet(sheet, [], None, [])
    assert "Ask a question first" in message and sheet.answers == ()
    answers = [fake_assistant.ask("What is CRS?"), fake_assistant.ask("fever of 39 now")]
    sheet, message = chat.save_to_sheet(sheet, answers, None, [])
    assert [a.question for a in sheet.answers] == ["fever of 39 now"] and "1 answer" in message
    sheet, _ = chat.save_to_sheet(sheet, answers, 0, list(sheet.chosen))
    assert [a.question for a in sheet.answers] == ["fever of 39 now", "What is CRS?"]
    _, message = chat.save_to_sheet(sheet, answers, 0, list(sheet.chosen))
    assert "already" in message


def test_export_writes_markdown_and_a_pdf_with_the_quote_and_the_questions(tmp_path, fake_assistant):
    sheet, _ = chat.save_to_sheet(vs.VisitSheet(), [fake_assistant.ask("What is CRS?")], None, [])
    sheet, paths, message = chat.export_sheet(sheet, "When can he drive again?\n\n", "Fever log in the blue folder",
                                              ["How likely is CRS with my product?"], tmp_path)
    md_path, pdf_path = paths
    assert md_path.endswith(".md") and pdf_path.endswith(".pdf") and "ready" in message
    markdown = open(md_path, encoding="utf-8").read()
    assert "When can he drive again?" in markdown and CRS_QUOTE.text in markdown
    pdf_text = " ".join(squash_whitespace(page.extract_text()) for page in PdfReader(pdf_path).pages)
    assert "When can he drive again?" in pdf_text
    assert "Many people hear CRS called a “cytokine storm.”" in pdf_text or "cytokine storm" in pdf_text
    assert "How likely is CRS with my product?" in pdf_text
    assert "Fever log in the blue folder" in pdf_text


def test_export_of_an_empty_sheet_says_so(tmp_path):
    _, paths, message = chat.export_sheet(vs.VisitSheet(), "", "", [], tmp_path)
    assert paths == [] and "empty" in message


def test_the_crisis_banner_follows_any_self_harm_answer_until_cleared():
    calm = make_answer("What is CRS?")
    crisis = replace(make_answer("i want to die", triage="emergency", quotes=()), self_harm=True,
                     notice=safety.SELF_HARM_MESSAGE)
    assert render.crisis_html([calm]) == ""
    shown = render.crisis_html([calm, crisis, calm])  # later ordinary answers do not take it away
    assert "988" in shown and 'role="alert"' in shown and "<strong>" in shown
    spanish = replace(crisis, notice=safety.SELF_HARM_MESSAGE_ES)
    assert "Ayuda ahora mismo" in render.crisis_html([spanish]) and "2 para español" in render.crisis_html([spanish])
    assert chat.clear_conversation()[1] == []  # cleared answers leave nothing for the banner to show
