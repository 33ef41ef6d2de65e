"""Markdown bodies split at their ATX headings into `Section`s; shared by the Markdown, text and HTML readers."""

from __future__ import annotations

import re

from knowledge.documents import Section

ATX_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")


def heading_lines(body: str) -> dict[int, tuple[int, str]]:
    """Line index -> (level, text) of every ATX heading outside code fences: the one reading of headings."""
    found: dict[int, tuple[int, str]] = {}
    in_fence = False
    for i, line in enumerate(body.split("\n")):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        heading = None if in_fence else ATX_HEADING.match(line)
        if heading:
            found[i] = (len(heading.group(1)), heading.group(2).strip())
    return found


def sections_from_markdown(body: str) -> tuple[str, list[Section]]:
    """Split a Markdown body at ATX headings; returns (first level-1 heading, sections)."""
    title = ""
    path: list[tuple[int, str]] = []
    sections: list[Section] = []
    lines: list[str] = []

    def flush() -> None:
        text = "\n".join(lines).strip("\n")
        if text.strip():
            sections.append(Section(tuple(h for _, h in path), text))
        lines.clear()

    headings = heading_lines(body)
    for i, line in enumerate(body.split("\n")):
        if i not in headings:
            lines.append(line)
            continue
        flush()
        level, name = headings[i]
        if level == 1 and not title:
            title = name
            continue
        path = [(lvl, h) for lvl, h in path if lvl < level] + [(level, name)]
    flush()
    return title, sections
