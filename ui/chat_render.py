"""How the chat shows an Answer: HTML and Markdown strings built from its fields, never from its Markdown.

Pure functions with no Gradio import, so the look of every banner, quote and source is testable in milliseconds.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path

from qa.render import ABSTAIN_MESSAGE, answer_body, display_path, note_block, numbered_sources, one_line, source_key
from qa.safety import SELF_HARM_MESSAGE_ES
from qa.types import DISCLAIMER, Answer, Quote
from ui import visit_sheet as vs

THINKING_MESSAGE = "*Looking through the articles…*"
ERROR_MESSAGE = (
    "Sorry, something went wrong while answering. Please try again. If you are worried about symptoms, "
    "call your treatment center's 24-hour number or emergency services now."
)

# The sources panel scrolls by itself, so it is a labelled region a keyboard can reach (tabindex) and scroll.
_SOURCES_OPEN = ('<section class="pqa-sources{extra}" tabindex="0" role="region" aria-labelledby="pqa-sources-title">'
                 '<h2 id="pqa-sources-title">Sources</h2>')
SOURCES_PLACEHOLDER = (
    _SOURCES_OPEN.format(extra=" pqa-sources-empty")
    + "<p>Ask a question: the articles each answer is quoted from appear here, with the passage around "
    "every quote. Click an earlier answer to see its sources again.</p></section>"
)

# kind: (css class, label, ARIA role). An alert is read out at once; a status when the reader is free.
BANNERS = {
    "emergency": ("pqa-banner-emergency", "Urgent: get help now", "alert"),
    "defer": ("pqa-banner-defer", "A decision for your care team", "status"),
    "out_of_scope": ("pqa-banner-scope", "Outside what our articles cover", "status"),
    "no_answer": ("pqa-banner-scope", "Not covered by our articles", "status"),
}

TEXT_SIZES = (("A", "100%", "Normal text"), ("A+", "125%", "Larger text"), ("A++", "150%", "Largest text"))

HEADER_HTML = (
    '<a class="pqa-skip" href="#pqa-question">Skip to the question box</a>'
    '<header class="pqa-header"><div class="pqa-header-text"><h1>Questions about CAR-T and immunotherapy</h1>'
    "<p>Answers are quoted word for word from our patient articles, with their sources.</p></div>"
    '<div class="pqa-text-size" role="group" aria-label="Text size">'
    '<span class="pqa-size-label" aria-hidden="true">Text size</span>'
    + "".join(f'<button type="button" class="pqa-size" data-size="{size}" aria-label="{name}" '
              f'aria-pressed="{str(size == "100%").lower()}">{label}</button>'
              for label, size, name in TEXT_SIZES)
    + "</div></header>"
)

# Runs once when the header mounts (Gradio's js_on_load, `element` is the header): the skip link focuses the
# question box, and the text size is applied to the page's root font (every size is in rem) and kept in the tab.
HEADER_JS = """
const key = 'pqa-text-size';
const apply = (size) => {
  document.documentElement.style.fontSize = size;
  element.querySelectorAll('button.pqa-size').forEach(
    (b) => b.setAttribute('aria-pressed', String(b.dataset.size === size)));
};
let saved = null;
try { saved = sessionStorage.getItem(key); } catch (e) {}
if (saved) apply(saved);
element.querySelectorAll('button.pqa-size').forEach((b) => b.addEventListener('click', () => {
  try { sessionStorage.setItem(key, b.dataset.size); } catch (e) {}
  apply(b.dataset.size);
}));
// Gradio's chat examples are a role="list" holding buttons, not list items (axe: aria-required-children,
// critical); a labelled group of buttons is what they are. They come back after every Clear, hence the observer.
const fixExamples = () => document.querySelectorAll('#pqa-chat .examples[role="list"]').forEach((e) => {
  e.setAttribute('role', 'group');
  e.setAttribute('aria-label', 'Example questions');
});
fixExamples();
new MutationObserver(fixExamples).observe(document.body, { childList: true, subtree: true });
const skip = element.querySelector('.pqa-skip');
if (skip) skip.addEventListener('click', (event) => {
  const box = document.querySelector('#pqa-question textarea');
  if (box) { event.preventDefault(); box.focus(); }
});
"""


# ------------------------------------------------------------------ banners


def banner_kind(answer: Answer) -> str | None:
    """Which banner sits above the answer: emergency, defer, out_of_scope, no_answer (abstained) or none.

    A general answer with a notice of its own (the prompt for an empty or small-talk message) gets no banner.
    """
    if answer.triage in ("emergency", "defer", "out_of_scope"):
        return answer.triage
    if answer.abstained and answer.question and not answer.notice:
        return "no_answer"
    return None


def banner_text(answer: Answer, kind: str) -> str:
    return ABSTAIN_MESSAGE if kind == "no_answer" else answer.notice


def _bold_to_html(escaped: str) -> str:
    """The safety notices use **bold** only; turn it into <strong> after escaping."""
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)


def banner_html(kind: str, text: str, label: str | None = None, extra: str = "") -> str:
    """A labelled banner that a screen reader announces: role alert (at once) or status (when it is free).

    The chat's sanitizer keeps `role` but drops `aria-live`; the role alone makes the announcement.
    """
    css, default_label, role = BANNERS[kind]
    body = _bold_to_html(html.escape(text, quote=False))
    return (f'<div class="pqa-banner {css}{extra}" role="{role}">'
            f'<p class="pqa-banner-label">{label or default_label}</p><p>{body}</p></div>')


def crisis_html(answers: Sequence[Answer]) -> str:
    """The crisis banner that stays above the chat, once any message spoke of self-harm, until it is cleared."""
    crisis = [a for a in answers or () if a.self_harm]
    if not crisis:
        return ""
    label = "Ayuda ahora mismo" if crisis[-1].notice == SELF_HARM_MESSAGE_ES else "Help is here, now"
    return banner_html("emergency", crisis[-1].notice, label, extra=" pqa-crisis")


# ------------------------------------------------------------------ the chat message


def message_blocks(answer: Answer, articles_root: Path | None = None) -> list[str]:
    """The chat message for an answer, block by block: its banner, then the Markdown blocks of its fields.

    With `articles_root`, the Sources list names article files relative to it, never by the server's own path.
    """
    kind = banner_kind(answer)
    blocks = [banner_html(kind, banner_text(answer, kind))] if kind else []
    if not kind and answer.notice:
        blocks.append(answer.notice)
    if answer.note:
        blocks.append(note_block(answer.note))
    return blocks + answer_body(answer.quotes, answer.suggested_questions, answer.examples, articles_root)


def render_message(answer: Answer, articles_root: Path | None = None) -> str:
    """The full chat message for an answer."""
    return "\n\n".join(message_blocks(answer, articles_root))


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


# ------------------------------------------------------------------ the sources panel


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


def _passages(quotes: Sequence[Quote]) -> str:
    """Each distinct passage once, its quoted sentences marked."""
    passages = []
    for context in dict.fromkeys(q.context for q in quotes):
        texts = [q.text for q in quotes if q.context == context]
        body = highlight_passage(context, texts) if context else "<br>".join(
            f"<mark>{html.escape(one_line(t), quote=False)}</mark>" for t in texts)
        passages.append(f'<blockquote class="pqa-passage">{body}</blockquote>')
    return "".join(passages)


def sources_html(answer: Answer | None, articles_root: Path | None = None) -> str:
    """The sources panel for one answer: per numbered source its title, section, passages and link.

    An article without a URL is named by its path relative to `articles_root` (else its file name).
    """
    if answer is None:
        return SOURCES_PLACEHOLDER
    asked = html.escape(one_line(answer.question), quote=False)
    head = _SOURCES_OPEN.format(extra="") + f'<p class="pqa-sources-for">For: <q>{asked}</q></p>'
    if not answer.quotes:
        why = {
            "out_of_scope": "This question is outside what our articles cover, so nothing was quoted.",
            "emergency": "No article passage was quoted. Follow the urgent-care message.",
        }.get(answer.triage, "Nothing in our articles answered this closely enough to quote.")
        return head + f"<p>{why}</p></section>"
    items = []
    for number, source in enumerate(numbered_sources(answer.quotes), start=1):
        quotes = [q for q in answer.quotes if source_key(q) == source_key(source)]
        section = ""
        if source.section and source.section != source.title:
            page = f", p. {source.page}" if source.page else ""
            section = f'<p class="pqa-source-section">{html.escape(source.section, quote=False)}{page}</p>'
        items.append(
            f'<li class="pqa-source" id="pqa-source-{number}"><p class="pqa-source-title">'
            f'<span class="pqa-source-number">[{number}]</span> {html.escape(source.title, quote=False)}</p>'
            f"{section}{_passages(quotes)}<p>{_link(source, articles_root)}</p></li>"
        )
    return head + f'<ol class="pqa-source-list">{"".join(items)}</ol></section>'


def disclaimer_html(text: str = DISCLAIMER) -> str:
    """The always-visible disclaimer (the same words as in every answer), its emergency sentence in bold."""
    body = html.escape(text, quote=False)
    body = re.sub(r"^([^.]*\.)", r"<strong>\1</strong>", body)
    body = re.sub(r"(In an emergency[^.]*(?:\([^)]*\))?\.)", r"<strong>\1</strong>", body)
    return f'<div class="pqa-disclaimer" role="note">{body}</div>'


# ------------------------------------------------------------------ the visit sheet tab


def saved_answers_html(sheet: vs.VisitSheet) -> str:
    """What the visit sheet holds, as escaped HTML."""
    if not sheet.answers:
        return ('<div class="pqa-saved pqa-saved-empty"><p>No saved answers yet. In the chat, use '
                "<strong>Save answer to visit sheet</strong> under an answer you want to discuss.</p></div>")

    def esc(text: str) -> str:
        return html.escape(text, quote=False)

    items = []
    for answer in sheet.answers:
        quotes = "".join(f"<blockquote>{esc(q.text)} [{q.source}]</blockquote>" for q in answer.quotes)
        notice = f'<p class="pqa-saved-notice">{esc(answer.notice)}</p>' if answer.notice else ""
        sources = "".join(f"<li>{esc(s.line())}</li>" for s in answer.sources)
        sources = f'<ol class="pqa-saved-sources">{sources}</ol>' if sources else ""
        items.append(f'<li class="pqa-saved-answer"><p class="pqa-saved-question">{esc(answer.question)}</p>'
                     f"{notice}{quotes}{sources}</li>")
    return f'<div class="pqa-saved"><ol>{"".join(items)}</ol></div>'


def saved_choices(sheet: vs.VisitSheet) -> list[tuple[str, int]]:
    """The 'remove a saved answer' choices: (numbered question, position)."""
    return [(f"{i}. {a.question[:80]}", i - 1) for i, a in enumerate(sheet.answers, start=1)]
