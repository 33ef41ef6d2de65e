"""Markdown for people: lead-in, quotes as blockquotes with numbered citations, sources, questions, disclaimer."""

from __future__ import annotations

import html
import re
from pathlib import Path

from knowledge.text import is_web_url, squash_whitespace
from qa.types import DISCLAIMER, Quote

ABSTAIN_MESSAGE = (
    "Our articles don't cover this yet, so I can't answer it from a trusted source. "
    "Please ask your care team: they know your situation and can answer safely."
)
EMPTY_MESSAGE = (
    "Ask me anything about CAR-T cell therapy or other cancer immunotherapies — for example, "
    "\"What is cytokine release syndrome?\" or \"How long will I stay near the hospital?\""
)


_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 and C1 controls (ESC starts terminal escape sequences) and the bidi controls that reorder what is shown.
_TERMINAL_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def readable_text(text: str) -> str:
    """Text that can be encoded and printed: undecodable argv bytes and lone surrogates become U+FFFD."""
    if not _SURROGATE.search(text):
        return text
    try:  # sys.argv smuggles undecodable bytes as \udc80-\udcff: decode them as the bytes they were
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)


def terminal_text(text: str, keep_newlines: bool = True) -> str:
    """Text safe to print to a terminal: control characters are shown escaped (`\\x1b`), never obeyed."""
    def shown(match: re.Match[str]) -> str:
        char = match.group()
        return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"

    text = _TERMINAL_UNSAFE.sub(shown, readable_text(text))
    return text if keep_newlines else text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")


def escape(text: str) -> str:
    """Text from questions and articles is shown as text: no HTML from it ever runs in a page."""
    return html.escape(text, quote=False)


one_line = squash_whitespace  # quotes are shown on one line; kept under this name for the chat


def blockquote(text: str) -> str:
    """A quote as a Markdown blockquote; a quoted list keeps one item a line."""
    lines = [one_line(line) for line in text.split("\n") if line.strip()]
    items = [re.sub(r"^([-*+•]|\d{1,3}[.)])\s+", "- ", line) for line in lines]
    return "\n".join(f"> {escape(item)}" for item in items)


def display_path(source_path: str, root: Path | str | None = None) -> str:
    """A source path as a reader may see it.

    Without `root`: relative to the working folder when inside it (the command line). With `root` (the articles
    folder, for the chat that others may open): relative to it, else only the file name, never the server's path.
    """
    if root is not None:
        try:
            return Path(source_path).resolve().relative_to(Path(root).expanduser().resolve()).as_posix()
        except (ValueError, OSError):
            return Path(source_path).name
    try:
        return str(Path(source_path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return source_path


def source_key(quote: Quote) -> tuple:
    return (quote.article, quote.section, quote.page)


def numbered_sources(quotes: tuple[Quote, ...]) -> list[Quote]:
    """One entry per (article, section, page), in first-quoted order; citation n is entry n."""
    sources: list[Quote] = []
    for quote in quotes:
        if source_key(quote) not in {source_key(s) for s in sources}:
            sources.append(quote)
    return sources


def citation_numbers(quotes: tuple[Quote, ...]) -> dict[tuple, int]:
    """Each source's number in the Sources list (1, 2, ...), by `source_key`: a quote's [n] is looked up here."""
    return {source_key(s): i for i, s in enumerate(numbered_sources(quotes), start=1)}


def source_line(quote: Quote, root: Path | str | None = None) -> str:
    """'*Title* — Section, p. 3 · link' for the Sources list; `root` as in `display_path`."""
    parts = [f"*{escape(quote.title)}*"]
    if quote.section and quote.section != quote.title:
        parts.append(f" — {escape(quote.section)}")
    if quote.page:
        parts.append(f", p. {quote.page}")
    if is_web_url(quote.url):
        parts.append(f" · [{escape(quote.url)}]({quote.url})")
    else:
        parts.append(f" · `{escape(display_path(quote.source_path, root))}`")
    return "".join(parts)


SOURCES_HEADING = "**Sources**"


def sources_block(quotes: tuple[Quote, ...], root: Path | str | None = None) -> str:
    """The numbered Sources list that ends an answer; `root` as in `display_path`."""
    number = citation_numbers(quotes)
    lines = (f"{number[source_key(s)]}. {source_line(s, root)}" for s in numbered_sources(quotes))
    return SOURCES_HEADING + "\n" + "\n".join(lines)


def note_block(note: str) -> str:
    """A short remark about how the question was read (for example, that a long one was cut)."""
    return f"*{escape(note)}*"


def examples_block(examples: tuple[str, ...]) -> str:
    return "You could ask, for example:\n" + "\n".join(f"- {escape(e)}" for e in examples)


def lead_in(quotes: tuple[Quote, ...]) -> str:
    """'From our articles *A* and *B*:' above the quotes."""
    titles = list(dict.fromkeys(q.title for q in quotes))
    lead = " and ".join(f"*{escape(t)}*" for t in titles[:-1]) + (" and " if len(titles) > 1 else "") + f"*{escape(titles[-1])}*"
    return f"From our article{'s' if len(titles) > 1 else ''} {lead}:"


def quote_blocks(quotes: tuple[Quote, ...]) -> list[str]:
    """Each quote as a blockquote ending in its source number."""
    number = citation_numbers(quotes)
    return [f"{blockquote(quote.text)} [{number[source_key(quote)]}]" for quote in quotes]


def suggestions_block(suggested: tuple[str, ...]) -> str:
    return "**Questions you could ask your care team**\n" + "\n".join(f"- {escape(q)}" for q in suggested)


def disclaimer_block() -> str:
    return f"---\n*{DISCLAIMER}*"


def answer_body(quotes: tuple[Quote, ...], suggested: tuple[str, ...] = (), examples: tuple[str, ...] = (),
                root: Path | str | None = None) -> list[str]:
    """The Markdown blocks under the notice: examples, lead-in, quotes, sources, suggestions, disclaimer.

    The chat shows these under a banner it renders from the Answer's fields; `root` as in `display_path`.
    """
    blocks: list[str] = []
    if examples:
        blocks.append(examples_block(examples))
    if quotes:
        blocks += [lead_in(quotes), *quote_blocks(quotes), sources_block(quotes, root)]
    if suggested:
        blocks.append(suggestions_block(suggested))
    blocks.append(disclaimer_block())
    return blocks


def render_answer(
    quotes: tuple[Quote, ...],
    suggested: tuple[str, ...] = (),
    notice: str = "",
    abstained: bool = False,
    note: str = "",
    examples: tuple[str, ...] = (),
) -> str:
    """The full answer in Markdown, disclaimer always included."""
    blocks: list[str] = []
    if notice:
        blocks.append(notice)
    if note:
        blocks.append(note_block(note))
    if abstained:
        blocks.append(ABSTAIN_MESSAGE)
    return "\n\n".join(blocks + answer_body(quotes, suggested, examples))
