"""What each chat event does, as plain functions (state in, state out): testable without a server or Gradio.

    for question_box, history, answers, sources in answer_turn(assistant, "What is CRS?", [], []):
        ...

The answer is not streamed: `Assistant.ask` computes it whole (tens of milliseconds once the model is warm), so
a turn shows "Looking through the articles…" while it computes, then the whole answer. Replaying a finished
answer block by block with pauses only made people wait longer and kept a worker busy.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from knowledge.settings import ChatSettings
from qa.types import Answer
from ui import visit_sheet as vs
from ui.chat_render import (
    ERROR_MESSAGE,
    SOURCES_PLACEHOLDER,
    THINKING_MESSAGE,
    render_message,
    sources_html,
    user_message,
)

log = logging.getLogger("patient_qa.chat")


# ------------------------------------------------------------------ the conversation


def message_text(content) -> str:
    """The text of a Chatbot message, whether plain or Gradio 6's list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text", ""))
    if isinstance(content, (list, tuple)):
        return "\n".join(message_text(part) for part in content)
    return ""


def plain_history(history: Sequence | None) -> list[dict]:
    """Chatbot messages as simple {"role", "content": text} dicts."""
    return [{"role": m.get("role", "user"), "content": message_text(m.get("content"))}
            for m in (history or []) if isinstance(m, dict)]


def articles_root(assistant) -> Path | None:
    """The articles folder the chat names sources relative to (the assistant's settings), if it has one."""
    settings = getattr(assistant, "settings", None)
    folder = getattr(settings, "articles", None)
    return Path(folder) if folder else None


def latest_sources(answers: Sequence[Answer], root: Path | None) -> str:
    return sources_html(answers[-1] if answers else None, root)


def answer_turn(assistant, question: str, history: Sequence | None, answers: Sequence[Answer] | None,
                slots: threading.Semaphore | None = None) -> Iterator[tuple[str, list[dict], list[Answer], str]]:
    """One turn: yield (question box, chat history, answers, sources panel) while computing, then with the answer.

    `slots` is held while computing only: a person waiting for a slot does not hold one.
    """
    answers = list(answers or [])
    history = plain_history(history)
    question = (question or "").strip()
    root = articles_root(assistant)
    if not question:
        yield "", history, answers, latest_sources(answers, root)
        return
    history = history + [user_message(question), {"role": "assistant", "content": THINKING_MESSAGE}]
    yield "", list(history), list(answers), latest_sources(answers, root)
    try:
        with slots or contextlib.nullcontext():
            answer = assistant.ask(question, history=[a.question for a in answers])
    except Exception:  # noqa: BLE001 - a person sees an apology, the log gets the traceback (no question text)
        log.exception("answering failed")
        history[-1] = {"role": "assistant", "content": ERROR_MESSAGE}
        yield "", list(history), list(answers), latest_sources(answers, root)
        return
    answers.append(answer)
    history[-1] = {"role": "assistant", "content": render_message(answer, root)}
    yield "", list(history), list(answers), sources_html(answer, root)


def answer_index_for_message(history: Sequence, message_index: int) -> int | None:
    """Which answer (0-based) the chat message at `message_index` is, counting assistant messages only."""
    if isinstance(message_index, (list, tuple)):
        message_index = message_index[0]
    if not isinstance(message_index, int) or not 0 <= message_index < len(history or []):
        return None
    message = history[message_index]
    if not isinstance(message, dict):
        return None
    if message.get("role") == "user":
        # a click on a question selects the answer that follows it
        after = [i for i in range(message_index + 1, len(history)) if history[i].get("role") == "assistant"]
        if not after:
            return None
        message_index = after[0]
    return sum(1 for m in history[:message_index] if isinstance(m, dict) and m.get("role") == "assistant")


def select_answer(answers: Sequence[Answer], history: Sequence, message_index,
                  root: Path | None = None) -> tuple[int | None, str]:
    """A click on a message: (selected answer index, its sources panel)."""
    position = answer_index_for_message(history, message_index)
    if position is None or position >= len(answers):
        return None, latest_sources(answers, root)
    return position, sources_html(answers[position], root)


def current_answer(answers: Sequence[Answer], selected: int | None) -> Answer | None:
    """The selected answer, else the latest."""
    if not answers:
        return None
    if selected is not None and 0 <= selected < len(answers):
        return answers[selected]
    return answers[-1]


def clear_conversation() -> tuple[list, list, None, str, dict, str]:
    """(history, answers, selected, sources panel, feedback rows, status)."""
    return [], [], None, SOURCES_PLACEHOLDER, {}, ""


# ------------------------------------------------------------------ feedback


def rating_of(liked) -> str | None:
    """Gradio's like payload: True = like, False = dislike, ""/None = the rating was taken back."""
    if liked is True or liked == "Like":
        return "like"
    if liked is False or liked == "Dislike":
        return "dislike"
    return None


def record_feedback(store, answers: Sequence[Answer], history: Sequence, message_index, liked,
                    rows: dict | None) -> tuple[dict, int | None, str]:
    """Store, change or take back the rating of one answer. Returns (rows, row id for a comment, status)."""
    rows = dict(rows or {})
    position = answer_index_for_message(history, message_index)
    if store is None or position is None or position >= len(answers):
        return rows, None, ""
    answer = answers[position]
    rating = rating_of(liked)
    row = rows.get(position)
    if rating is None:
        if row is not None:
            store.delete(row)
            rows.pop(position, None)
        return rows, None, "Your rating was removed."
    if row is None:
        row = store.record(rating, answer.question, [q.text for q in answer.quotes])
        rows[position] = row
    else:
        store.set_rating(row, rating)
    thanks = "Thank you: glad it helped." if rating == "like" else "Thank you: this helps us improve the articles."
    return rows, row, thanks + " You can add a comment below (optional)."


def record_comment(store, row: int | None, comment: str) -> str:
    """Attach a comment to a rating already stored; '' when there is nothing to attach."""
    if store is None or row is None or not (comment or "").strip():
        return ""
    store.add_comment(row, comment)
    return "Thank you, your comment was saved on this computer."


# ------------------------------------------------------------------ the visit sheet


def save_to_sheet(sheet: vs.VisitSheet, answers: Sequence[Answer], selected: int | None,
                  chosen: Sequence[str] | None) -> tuple[vs.VisitSheet, str]:
    """Save the selected (else the latest) answer; the caregiver's kept suggestions stay as they are."""
    answer = current_answer(answers, selected)
    if answer is None:
        return sheet, "Ask a question first, then save its answer to the visit sheet."
    if chosen is not None:
        sheet = vs.with_user_text(sheet, chosen=chosen)
    before = len(sheet.answers)
    sheet = vs.add_answer(sheet, answer)
    count = len(sheet.answers)
    if count == before:
        return sheet, "This answer is already on your visit sheet."
    plural = "answer" if count == 1 else "answers"
    return sheet, f"Saved to your visit sheet ({count} {plural}). Open the **Visit sheet** tab to add questions and export it."


def remove_from_sheet(sheet: vs.VisitSheet, position, chosen: Sequence[str] | None) -> vs.VisitSheet:
    """Remove one saved answer, keeping the suggestions the caregiver ticked."""
    if chosen is not None:
        sheet = vs.with_user_text(sheet, chosen=chosen)
    if position is None or position == "":
        return sheet
    return vs.remove_answer(sheet, int(position))


def export_sheet(sheet: vs.VisitSheet, questions: str, notes: str, chosen: Sequence[str] | None,
                 folder: Path, settings: ChatSettings = ChatSettings()) -> tuple[vs.VisitSheet, list[str], str]:
    """Write the Markdown and PDF files; returns (sheet with the form's text, [md, pdf], status)."""
    sheet = vs.with_user_text(sheet, questions=questions or "", notes=notes or "", chosen=list(chosen or []))
    if sheet.is_empty:
        return sheet, [], "The visit sheet is empty: save an answer or write a question first."
    md, pdf = vs.export_files(sheet, folder, settings=settings)
    return sheet, [str(md), str(pdf)], "Your visit sheet is ready: download the PDF to print or the Markdown to edit."
