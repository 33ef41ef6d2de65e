"""The web chat: a Gradio 6 Blocks app around `Assistant.ask`. It renders answers; it never decides them.

`build_app(assistant, settings)` returns the Blocks; `launch(app, ...)` serves it with the local theme and CSS.
The handlers are plain functions (state in, state out) so tests can call them without a browser:

    for question_box, history, answers, sources in stream_answer(assistant, "What is CRS?", [], []):
        ...
"""

from __future__ import annotations

import atexit
import contextlib
import html
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
import gradio as gr  # noqa: E402 - analytics must be off before gradio is imported

from qa.render import (ABSTAIN_MESSAGE, SOURCES_HEADING, display_path, numbered_sources, one_line, source_key,
                       sources_block)
from qa.safety import SELF_HARM_MESSAGE_ES
from qa.types import DISCLAIMER, Answer, Quote
from ui import visit_sheet as vs
from ui.guards import BodyLimitMiddleware, LoginThrottleMiddleware, hide_input_values

log = logging.getLogger("patient_qa.chat")

STATIC_DIR = Path(__file__).resolve().parent / "static"
CONCURRENCY_LIMIT = 4  # answers computed at once; one model in memory serves them all
# Chat events streaming at once. Only computing an answer takes one of the CONCURRENCY_LIMIT slots: an answer
# that is being streamed (pausing between blocks) must not keep the next person's question waiting.
STREAM_LIMIT = 16
STREAM_PAUSE_S = 0.05  # between streamed blocks: fast enough to feel instant, slow enough to see it arrive
APP_TITLE = "patient-qa: questions about CAR-T and immunotherapy"

EXAMPLE_QUESTIONS = (
    "What is CAR-T cell therapy and how does it work?",
    "What is cytokine release syndrome?",
    "How long do I need to stay near the treatment center?",
    "What should a caregiver watch for at home?",
    "What side effects can checkpoint inhibitors cause?",
)
THINKING_MESSAGE = "*Looking through the articles…*"
ERROR_MESSAGE = (
    "Sorry, something went wrong while answering. Please try again. If you are worried about symptoms, "
    "call your treatment center's 24-hour number or emergency services now."
)
SOURCES_PLACEHOLDER = (
    '<div class="pqa-sources pqa-sources-empty"><h2>Sources</h2>'
    "<p>Ask a question: the articles each answer is quoted from appear here, with the passage around "
    "every quote. Click an earlier answer to see its sources again.</p></div>"
)

BANNERS = {
    "emergency": ("pqa-banner-emergency", "Urgent: get help now", "alert"),
    "defer": ("pqa-banner-defer", "A decision for your care team", "note"),
    "out_of_scope": ("pqa-banner-scope", "Outside what our articles cover", "note"),
    "no_answer": ("pqa-banner-scope", "Not covered by our articles", "note"),
}


# ------------------------------------------------------------------ rendering


def banner_kind(answer: Answer) -> str | None:
    """Which banner sits above the answer: emergency, defer, out_of_scope, no_answer (abstained) or none."""
    if answer.triage in ("emergency", "defer", "out_of_scope"):
        return answer.triage
    if answer.abstained and answer.question:
        return "no_answer"
    return None


def _bold_to_html(escaped: str) -> str:
    """The safety notices use **bold** only; turn it into <strong> after escaping."""
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)


def banner_html(kind: str, text: str) -> str:
    css, label, role = BANNERS[kind]
    body = _bold_to_html(html.escape(text, quote=False))
    return (f'<div class="pqa-banner {css}" role="{role}"><p class="pqa-banner-label">{label}</p>'
            f"<p>{body}</p></div>")


def crisis_html(answers: Sequence[Answer]) -> str:
    """The crisis banner that stays above the chat, once any message spoke of self-harm, until it is cleared."""
    crisis = [a for a in answers or () if a.self_harm]
    if not crisis:
        return ""
    css, _, _ = BANNERS["emergency"]
    label = "Ayuda ahora mismo" if crisis[-1].notice == SELF_HARM_MESSAGE_ES else "Help is here, now"
    body = _bold_to_html(html.escape(crisis[-1].notice, quote=False))
    return (f'<div class="pqa-banner {css} pqa-crisis" role="alert" aria-live="assertive">'
            f'<p class="pqa-banner-label">{label}</p><p>{body}</p></div>')


def message_blocks(answer: Answer, articles_root: Path | None = None) -> list[str]:
    """The chat message in the order it streams: the banner first, then the answer's Markdown blocks.

    With `articles_root`, the Sources list names article files relative to it, never by the server's own path.
    """
    markdown = answer.markdown
    kind = banner_kind(answer)
    banner = ""
    if kind and answer.notice and markdown.startswith(answer.notice):
        banner, markdown = banner_html(kind, answer.notice), markdown[len(answer.notice):]
    elif kind == "no_answer" and ABSTAIN_MESSAGE in markdown:
        banner, markdown = banner_html(kind, ABSTAIN_MESSAGE), markdown.replace(ABSTAIN_MESSAGE, "", 1)
    elif kind and answer.notice:
        banner = banner_html(kind, answer.notice)
    blocks = [b for b in re.split(r"\n{2,}", markdown.strip()) if b.strip()]
    if articles_root is not None and answer.quotes:
        blocks = [sources_block(answer.quotes, articles_root) if b.startswith(SOURCES_HEADING + "\n") else b
                  for b in blocks]
    return ([banner] if banner else []) + blocks


def render_message(answer: Answer, articles_root: Path | None = None) -> str:
    """The full chat message for an answer (what the last streamed chunk shows)."""
    return "\n\n".join(message_blocks(answer, articles_root))


def highlight_passage(context: str, quote_texts: Sequence[str]) -> str:
    """The passage as escaped HTML with each quoted span wrapped in <mark>; no text from it can run as HTML."""
    spans: list[tuple[int, int]] = []
    for text in quote_texts:
        words = text.split()
        if not words:
            continue
        pattern = r"\s+".join(re.escape(w) for w in words)
        spans += [(m.start(), m.end()) for m in re.finditer(pattern, context)]
    spans.sort()
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, position = [], 0
    for start, end in merged:
        out.append(html.escape(context[position:start], quote=False))
        out.append(f"<mark>{html.escape(context[start:end], quote=False)}</mark>")
        position = end
    out.append(html.escape(context[position:], quote=False))
    return "".join(out)


def _link(quote: Quote, articles_root: Path | None = None) -> str:
    location = vs.quote_location(quote)
    if articles_root is not None and not location.startswith(("http://", "https://")) and quote.source_path:
        location = display_path(quote.source_path, articles_root)
    if location.startswith(("http://", "https://")):
        href = html.escape(location, quote=True)
        return (f'<a class="pqa-source-link" href="{href}" target="_blank" rel="noopener noreferrer">'
                f"Read the original article</a>")
    return f'<span class="pqa-source-file">Article file: <code>{html.escape(location, quote=False)}</code></span>'


def sources_html(answer: Answer | None, articles_root: Path | None = None) -> str:
    """The sources panel for one answer: per numbered source its title, section, passages and link.

    An article without a URL is named by its path relative to `articles_root` (else its file name).
    """
    if answer is None:
        return SOURCES_PLACEHOLDER
    asked = html.escape(one_line(answer.question), quote=False)
    head = f'<div class="pqa-sources"><h2>Sources</h2><p class="pqa-sources-for">For: <q>{asked}</q></p>'
    if not answer.quotes:
        why = {
            "out_of_scope": "This question is outside what our articles cover, so nothing was quoted.",
            "emergency": "No article passage was quoted. Follow the urgent-care message.",
        }.get(answer.triage, "Nothing in our articles answered this closely enough to quote.")
        return head + f"<p>{why}</p></div>"
    items = []
    for number, source in enumerate(numbered_sources(answer.quotes), start=1):
        quotes = [q for q in answer.quotes if source_key(q) == source_key(source)]
        passages = []
        for context in dict.fromkeys(q.context for q in quotes):
            texts = [q.text for q in quotes if q.context == context]
            body = highlight_passage(context, texts) if context else "<br>".join(
                f"<mark>{html.escape(one_line(t), quote=False)}</mark>" for t in texts)
            passages.append(f'<blockquote class="pqa-passage">{body}</blockquote>')
        section = ""
        if source.section and source.section != source.title:
            page = f", p. {source.page}" if source.page else ""
            section = f'<p class="pqa-source-section">{html.escape(source.section, quote=False)}{page}</p>'
        items.append(
            f'<li class="pqa-source" id="pqa-source-{number}"><p class="pqa-source-title">'
            f'<span class="pqa-source-number">[{number}]</span> {html.escape(source.title, quote=False)}</p>'
            f"{section}{''.join(passages)}<p>{_link(source, articles_root)}</p></li>"
        )
    return head + f'<ol class="pqa-source-list">{"".join(items)}</ol></div>'


def disclaimer_html(text: str = DISCLAIMER) -> str:
    """The always-visible disclaimer (the same words as in every answer), its emergency sentence in bold."""
    body = html.escape(text, quote=False)
    body = re.sub(r"^([^.]*\.)", r"<strong>\1</strong>", body)
    body = re.sub(r"(In an emergency[^.]*(?:\([^)]*\))?\.)", r"<strong>\1</strong>", body)
    return f'<div class="pqa-disclaimer" role="note">{body}</div>'


HEADER_HTML = (
    '<header class="pqa-header"><h1>Questions about CAR-T and immunotherapy</h1>'
    "<p>Answers are quoted word for word from our patient articles, with their sources.</p></header>"
)


# ------------------------------------------------------------------ chat handlers


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


# Markdown punctuation that makes images, links, emphasis, code, headings or tables (& < > become HTML entities),
# and what starts an autolink (scheme://, www., user@host): each gets a backslash, so it shows as typed.
_MARKDOWN_PUNCTUATION = re.compile(r"""[\\`*_{}\[\]()#!|~$]|:(?=//)|(?<=www)\.|@""", re.IGNORECASE)


def plain_text_markdown(text: str) -> str:
    """Text that Markdown shows as typed: no image, link, autolink, emphasis, code or HTML comes out of it.

    A Markdown image typed into a question would otherwise be fetched by every browser that shows it.
    """
    return html.escape(_MARKDOWN_PUNCTUATION.sub(lambda m: "\\" + m.group(), text), quote=False)


def user_message(question: str) -> dict:
    """The question as typed, shown as text: nothing in it runs as HTML or renders as Markdown."""
    return {"role": "user", "content": plain_text_markdown(question)}


def articles_root(assistant) -> Path | None:
    """The articles folder the chat names sources relative to (the assistant's settings), if it has one."""
    settings = getattr(assistant, "settings", None)
    folder = getattr(settings, "articles", None)
    return Path(folder) if folder else None


def stream_answer(assistant, question: str, history: Sequence | None, answers: Sequence[Answer] | None,
                  pause: float = STREAM_PAUSE_S, slots: threading.Semaphore | None = None,
                  ) -> Iterator[tuple[str, list[dict], list[Answer], str]]:
    """Ask, then yield (question box, chat history, answers, sources panel) as the answer grows block by block.

    The urgent banner is the first block, so it shows before anything else.
    """
    answers = list(answers or [])
    history = plain_history(history)
    question = (question or "").strip()
    root = articles_root(assistant)
    if not question:
        latest = answers[-1] if answers else None
        yield "", history, answers, sources_html(latest, root)
        return
    history = history + [user_message(question), {"role": "assistant", "content": THINKING_MESSAGE}]
    yield "", list(history), list(answers), sources_html(answers[-1] if answers else None, root)
    try:
        with slots or contextlib.nullcontext():  # held while computing only, not while streaming
            answer = assistant.ask(question, history=[a.question for a in answers])
    except Exception:  # noqa: BLE001 - a person sees an apology, the log gets the traceback (no question text)
        log.exception("answering failed")
        history[-1] = {"role": "assistant", "content": ERROR_MESSAGE}
        yield "", list(history), list(answers), sources_html(answers[-1] if answers else None, root)
        return
    answers.append(answer)
    blocks = message_blocks(answer, root)
    for shown in range(1, len(blocks) + 1):
        history[-1] = {"role": "assistant", "content": "\n\n".join(blocks[:shown])}
        yield "", list(history), list(answers), sources_html(answer, root)
        if pause and shown < len(blocks):
            time.sleep(pause)


def answer_index_for_message(history: Sequence, message_index: int) -> int | None:
    """Which answer (0-based) the chat message at `message_index` is, counting assistant messages only."""
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
    if isinstance(message_index, (list, tuple)):
        message_index = message_index[0]
    position = answer_index_for_message(history, message_index)
    if position is None or position >= len(answers):
        return None, sources_html(answers[-1] if answers else None, root)
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
    if isinstance(message_index, (list, tuple)):
        message_index = message_index[0]
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
    if store is None or row is None or not (comment or "").strip():
        return ""
    store.add_comment(row, comment)
    return "Thank you, your comment was saved on this computer."


# ------------------------------------------------------------------ visit sheet handlers


def saved_answers_html(sheet: vs.VisitSheet) -> str:
    """What the visit sheet holds, as escaped HTML."""
    if not sheet.answers:
        return ('<div class="pqa-saved pqa-saved-empty"><p>No saved answers yet. In the chat, use '
                "<strong>Save answer to visit sheet</strong> under an answer you want to discuss.</p></div>")
    items = []
    for answer in sheet.answers:
        esc = lambda s: html.escape(s, quote=False)  # noqa: E731
        quotes = "".join(f"<blockquote>{esc(q.text)} [{q.source}]</blockquote>" for q in answer.quotes)
        notice = f'<p class="pqa-saved-notice">{esc(answer.notice)}</p>' if answer.notice else ""
        sources = "".join(f"<li>{esc(s.line())}</li>" for s in answer.sources)
        sources = f'<ol class="pqa-saved-sources">{sources}</ol>' if sources else ""
        items.append(f'<li class="pqa-saved-answer"><p class="pqa-saved-question">{esc(answer.question)}</p>'
                     f"{notice}{quotes}{sources}</li>")
    return f'<div class="pqa-saved"><ol>{"".join(items)}</ol></div>'


def saved_choices(sheet: vs.VisitSheet) -> list[tuple[str, int]]:
    return [(f"{i}. {a.question[:80]}", i - 1) for i, a in enumerate(sheet.answers, start=1)]


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
    if chosen is not None:
        sheet = vs.with_user_text(sheet, chosen=chosen)
    if position is None or position == "":
        return sheet
    return vs.remove_answer(sheet, int(position))


class ExportFolder:
    """Exported visit sheets, kept per browser session: removed when the session ends or the server stops.

    Files are written 0600 in a private temporary folder, handed to Gradio's cache (the copy keeps the mode) for
    download, and the private copy is removed at once; the served copies are deleted by `end_session`/`close`.
    """

    def __init__(self) -> None:
        self.root: Path | None = None
        self.served: dict[str, set[Path]] = {}
        self.lock = threading.Lock()
        atexit.register(self.close)

    @classmethod
    def create(cls) -> "ExportFolder":
        return cls()

    def new(self) -> Path:
        """A fresh private folder to write one export into."""
        with self.lock:
            if self.root is None:
                self.root = Path(tempfile.mkdtemp(prefix="patient-qa-exports-"))
        folder = self.root / uuid.uuid4().hex
        folder.mkdir(mode=0o700, parents=True)
        return folder

    def track(self, session: str, paths: Sequence[str | Path]) -> None:
        """Remember files served to `session`, to delete them when it ends."""
        with self.lock:
            self.served.setdefault(session, set()).update(Path(p) for p in paths)

    def end_session(self, session: str) -> None:
        """The browser tab was closed: its exports go."""
        with self.lock:
            paths = self.served.pop(session, set())
        _remove_files(paths)

    def close(self) -> None:
        """The server stops: every export goes."""
        with self.lock:
            paths = set().union(*self.served.values()) if self.served else set()
            self.served.clear()
            root, self.root = self.root, None
        _remove_files(paths)
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


def _remove_files(paths: Sequence[Path] | set[Path]) -> None:
    """Delete files and their (Gradio cache) folder when it is left empty."""
    for path in paths:
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()
        except OSError:
            pass


def export_sheet(sheet: vs.VisitSheet, questions: str, notes: str, chosen: Sequence[str] | None,
                 folder: Path) -> tuple[vs.VisitSheet, list[str], str]:
    """Write the Markdown and PDF files; returns (sheet with the form's text, [md, pdf], status)."""
    sheet = vs.with_user_text(sheet, questions=questions or "", notes=notes or "", chosen=list(chosen or []))
    if sheet.is_empty:
        return sheet, [], "The visit sheet is empty: save an answer or write a question first."
    md, pdf = vs.export_files(sheet, folder)
    return sheet, [str(md), str(pdf)], "Your visit sheet is ready: download the PDF to print or the Markdown to edit."


# ------------------------------------------------------------------ the app


def theme():
    """The default look with system fonts only, so the page never fetches fonts from the internet.

    Text sizes are in rem, so a reader's larger browser font setting makes the whole page larger.
    """
    text_size = gr.themes.Size(name="text_rem", xxs="0.625rem", xs="0.75rem", sm="0.875rem", md="1rem",
                               lg="1.125rem", xl="1.375rem", xxl="1.625rem")
    return gr.themes.Default(
        primary_hue=gr.themes.colors.blue,
        neutral_hue=gr.themes.colors.slate,
        text_size=text_size,
        font=["system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"],
    ).set(
        button_primary_background_fill="*primary_700",
        button_primary_background_fill_hover="*primary_800",
        button_primary_text_color="white",
        body_text_color_subdued="*neutral_600",
    )


def app_css() -> str:
    return (STATIC_DIR / "chat.css").read_text(encoding="utf-8")


# Gradio scopes the `css` of an app to its content; the page margins around it need a plain <style>.
PAGE_HEAD = (
    "<style>@media (max-width: 640px) { .gradio-container .main.app "
    "{ padding-left: 10px !important; padding-right: 10px !important; } }</style>"
)


def build_app(assistant, settings=None, feedback_store=None):
    """The Gradio Blocks app. `feedback_store=None` with settings.feedback on opens the store under data_dir."""
    from ui.feedback import FeedbackStore, feedback_path

    if settings is None:
        settings = assistant.settings
    if feedback_store is None and getattr(settings, "feedback", False):
        feedback_store = FeedbackStore(feedback_path(settings))
    exports = ExportFolder.create()
    answer_slots = threading.BoundedSemaphore(CONCURRENCY_LIMIT)

    with gr.Blocks(title=APP_TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        answers = gr.State([])
        selected = gr.State(None)
        feedback_rows = gr.State({})
        comment_row = gr.State(None)
        sheet = gr.State(vs.VisitSheet())

        gr.HTML(HEADER_HTML, js_on_load=None, elem_id="pqa-header")
        gr.HTML(disclaimer_html(), js_on_load=None, elem_id="pqa-disclaimer")
        crisis = gr.HTML("", js_on_load=None, elem_id="pqa-crisis")

        with gr.Tabs(elem_id="pqa-tabs"):
            with gr.Tab("Ask a question", id="chat", elem_id="pqa-tab-chat"):
                with gr.Row(equal_height=False, elem_id="pqa-chat-row"):
                    with gr.Column(scale=3, min_width=300, elem_id="pqa-chat-column"):
                        chatbot = gr.Chatbot(
                            label="Conversation",
                            show_label=False,
                            elem_id="pqa-chat",
                            height="min(62vh, 640px)",
                            min_height=320,
                            examples=[{"text": q} for q in EXAMPLE_QUESTIONS],
                            placeholder="**Ask anything about CAR-T or immunotherapy**, or start with an example:",
                            feedback_options=("Like", "Dislike") if feedback_store is not None else None,
                            latex_delimiters=[],  # "$5,000 to $10,000" in the costs article is money, not maths
                            sanitize_html=True,
                            buttons=["copy"],
                            autoscroll=True,
                        )
                        with gr.Row(elem_id="pqa-ask-row"):
                            question = gr.Textbox(
                                show_label=False,
                                label="Your question",
                                placeholder="Type your question and press Enter",
                                lines=1,
                                max_lines=5,
                                scale=5,
                                min_width=180,
                                elem_id="pqa-question",
                                autofocus=True,
                            )
                            ask_button = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="pqa-ask")
                        with gr.Row(elem_id="pqa-chat-actions"):
                            save_button = gr.Button("Save answer to visit sheet", size="md", elem_id="pqa-save",
                                                    min_width=160)
                            clear_button = gr.Button("Clear conversation", size="md", elem_id="pqa-clear",
                                                     min_width=160)
                        status = gr.Markdown("", elem_id="pqa-status")
                        with gr.Row(visible=False, elem_id="pqa-comment-row") as comment_box:
                            comment = gr.Textbox(label="Comment (optional): what was helpful or missing?",
                                                 lines=2, max_lines=6, scale=4, min_width=200,
                                                 elem_id="pqa-comment")
                            comment_button = gr.Button("Send comment", scale=1, min_width=120,
                                                       elem_id="pqa-comment-send")
                    with gr.Column(scale=2, min_width=300, elem_id="pqa-sources-column"):
                        sources = gr.HTML(SOURCES_PLACEHOLDER, js_on_load=None, elem_id="pqa-sources",
                                          max_height=900)

            with gr.Tab("Visit sheet", id="sheet", elem_id="pqa-tab-sheet"):
                gr.Markdown(
                    "Prepare your next visit: answers you saved from the chat, your own questions and notes, "
                    "and questions suggested by the articles. Export it as a PDF to print (with space to write "
                    "the doctor's answers) or as Markdown to edit. It stays in this browser tab until you clear "
                    "it or close the page.",
                    elem_id="pqa-sheet-intro",
                )
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=300):
                        my_questions = gr.Textbox(label="My questions for the care team (one per line)", lines=4,
                                                  max_lines=20, elem_id="pqa-my-questions",
                                                  placeholder="When can he drive again?")
                        notes = gr.Textbox(label="Notes (symptoms, medicines, dates)", lines=4, max_lines=20,
                                           elem_id="pqa-notes")
                        suggested = gr.CheckboxGroup(
                            label="Suggested questions from the saved answers (untick the ones to leave out)",
                            choices=[], value=[], elem_id="pqa-suggested")
                    with gr.Column(scale=2, min_width=300):
                        gr.Markdown("**Saved answers**")
                        saved_view = gr.HTML(saved_answers_html(vs.VisitSheet()), js_on_load=None,
                                             elem_id="pqa-saved")
                        with gr.Row():
                            remove_choice = gr.Dropdown(label="Remove a saved answer", choices=[], value=None,
                                                        scale=3, min_width=180, elem_id="pqa-remove-choice")
                            remove_button = gr.Button("Remove", scale=1, min_width=90, elem_id="pqa-remove")
                with gr.Row():
                    export_button = gr.Button("Export PDF and Markdown", variant="primary", elem_id="pqa-export",
                                              min_width=200)
                    clear_sheet_button = gr.Button("Clear the visit sheet", variant="stop", elem_id="pqa-clear-sheet",
                                                   min_width=200)
                with gr.Row(visible=False, elem_id="pqa-confirm-clear") as confirm_row:
                    gr.Markdown("**Clear everything on the visit sheet?** Saved answers, questions and notes go.")
                    confirm_yes = gr.Button("Yes, clear it", variant="stop", elem_id="pqa-confirm-yes", min_width=120)
                    confirm_no = gr.Button("Keep it", elem_id="pqa-confirm-no", min_width=120)
                sheet_status = gr.Markdown("", elem_id="pqa-sheet-status")
                files = gr.File(label="Your visit sheet (download)", file_count="multiple", interactive=False,
                                elem_id="pqa-files")

        # ---- chat events
        def respond(message, history, answer_list):
            for box, chat, new_answers, panel in stream_answer(assistant, message, history, answer_list,
                                                               slots=answer_slots):
                yield box, chat, new_answers, None, panel, gr.update(visible=False), "", crisis_html(new_answers)

        ask_outputs = [question, chatbot, answers, selected, sources, comment_box, status, crisis]
        ask_args = dict(fn=respond, inputs=[question, chatbot, answers], outputs=ask_outputs,
                        concurrency_limit=STREAM_LIMIT, concurrency_id="chat", show_progress="hidden")
        question.submit(api_name="chat", **ask_args)
        ask_button.click(api_visibility="private", **ask_args)

        def use_example(evt: gr.SelectData):
            value = evt.value
            return value.get("text", "") if isinstance(value, dict) else str(value)

        chatbot.example_select(use_example, None, question, api_visibility="private", queue=False).then(
            api_visibility="private", **ask_args)

        def on_select(answer_list, history, evt: gr.SelectData):
            return select_answer(answer_list, history, evt.index, articles_root(assistant))

        chatbot.select(on_select, [answers, chatbot], [selected, sources], api_visibility="private")

        clear_outputs = [chatbot, answers, selected, sources, feedback_rows, status, comment_box, crisis]
        clear_button.click(lambda: (*clear_conversation(), gr.update(visible=False), ""), None, clear_outputs,
                           api_visibility="private", queue=False)
        # the Chatbot's own trash icon clears the messages; the answers and sources go with them
        chatbot.clear(lambda: (*clear_conversation(), gr.update(visible=False), ""), None, clear_outputs,
                      api_visibility="private", queue=False)

        if feedback_store is not None:
            def on_like(answer_list, history, rows, evt: gr.LikeData):
                rows, row, message = record_feedback(feedback_store, answer_list, history, evt.index, evt.liked, rows)
                return rows, row, message, gr.update(visible=row is not None), ""

            chatbot.like(on_like, [answers, chatbot, feedback_rows],
                         [feedback_rows, comment_row, status, comment_box, comment], api_visibility="private")

            def on_comment(row, text):
                message = record_comment(feedback_store, row, text)
                return message or "Write a comment first.", gr.update(visible=not message), ""

            comment_button.click(on_comment, [comment_row, comment], [status, comment_box, comment],
                                 api_visibility="private")

        # ---- visit sheet events
        def sheet_outputs(new_sheet: vs.VisitSheet):
            return (new_sheet, saved_answers_html(new_sheet),
                    gr.update(choices=list(new_sheet.suggested), value=list(new_sheet.chosen)),
                    gr.update(choices=saved_choices(new_sheet), value=None))

        sheet_views = [sheet, saved_view, suggested, remove_choice]

        def on_save(current, answer_list, selected_index, chosen):
            new_sheet, message = save_to_sheet(current, answer_list, selected_index, chosen)
            return (*sheet_outputs(new_sheet), message)

        save_button.click(on_save, [sheet, answers, selected, suggested], [*sheet_views, status],
                          api_visibility="private")

        def on_remove(current, position, chosen):
            return sheet_outputs(remove_from_sheet(current, position, chosen))

        remove_button.click(on_remove, [sheet, remove_choice, suggested], sheet_views, api_visibility="private")

        def on_export(current, questions_text, notes_text, chosen, request: gr.Request):
            folder = exports.new()
            try:
                new_sheet, paths, message = export_sheet(current, questions_text, notes_text, chosen, folder)
                # served from Gradio's cache (the copy keeps mode 0600); the private copy goes at once
                served = [files.move_resource_to_block_cache(p) for p in paths]
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            exports.track(request.session_hash or "", served)
            return new_sheet, served or None, message

        def on_unload(request: gr.Request):
            exports.end_session(request.session_hash or "")

        export_button.click(on_export, [sheet, my_questions, notes, suggested], [sheet, files, sheet_status],
                            api_visibility="private", concurrency_limit=CONCURRENCY_LIMIT)
        app.unload(on_unload)

        clear_sheet_button.click(lambda: gr.update(visible=True), None, confirm_row, api_visibility="private",
                                 queue=False)
        confirm_no.click(lambda: gr.update(visible=False), None, confirm_row, api_visibility="private", queue=False)

        def on_clear_sheet():
            return (*sheet_outputs(vs.clear_sheet()), "", "", None, "The visit sheet was cleared.",
                    gr.update(visible=False))

        confirm_yes.click(on_clear_sheet, None, [*sheet_views, my_questions, notes, files, sheet_status, confirm_row],
                          api_visibility="private")

        # ---- the API: the same Answer object `patient-qa ask --json` prints
        def ask(question: str, history: list[str] | None = None) -> dict:
            """Answer one question with verbatim quotes from the articles (the JSON Answer contract)."""
            with answer_slots:
                return assistant.ask(question, history=list(history or [])).to_json()

        gr.api(ask, api_name="ask", concurrency_limit=CONCURRENCY_LIMIT, concurrency_id="answer")

    app.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=64)
    app.exports = exports  # launch() and tests reach the session exports through the app
    hide_input_values(app)
    return app


def launch(app, host: str = "127.0.0.1", port: int | None = 7860, auth: tuple[str, str] | None = None,
           prevent_thread_lock: bool = False, quiet: bool = False, max_request_bytes: int | None = None):
    """Serve the app on `host:port` with the local theme; nothing is fetched from or sent to the internet.

    Request bodies over `max_request_bytes` (default: the setting's default) are refused unread, and failed
    sign-ins make the client wait longer each time.
    """
    from starlette.middleware import Middleware

    from knowledge.settings import LimitsSettings

    limit = max_request_bytes or LimitsSettings().max_request_bytes
    middleware = [Middleware(BodyLimitMiddleware, max_bytes=limit), Middleware(LoginThrottleMiddleware)]
    return app.launch(
        app_kwargs={"middleware": middleware},
        server_name=host,
        server_port=port,
        auth=auth,
        auth_message="patient-qa: please sign in with the name and password you were given." if auth else None,
        share=False,
        inbrowser=False,
        prevent_thread_lock=prevent_thread_lock,
        quiet=quiet,
        show_error=False,
        theme=theme(),
        css=app_css(),
        head=PAGE_HEAD,
        footer_links=["api", "settings"],
        run_history=False,  # questions are personal: keep no history of runs in the browser
        enable_monitoring=False,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        max_file_size="5mb",
    )
