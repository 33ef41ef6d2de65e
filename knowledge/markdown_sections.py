"""Markdown bodies split at their ATX headings into `Section`s; shared by the Markdown, text and HTML readers."""

from __future__ import annotations

import re

from knowledge.documents import Section

ATX_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")


def sections_from_markdown(body: str) -> tuple[str, list[Section]]:
    """Split a Markdown body at ATX headings; returns (first level-1 heading, sections)."""
    title = ""
    path: list[tuple[int, str]] = []
    sections: list[Section] = []
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        text = "\n".join(lines).strip("\n")
        if text.strip():
            sections.append(Section(tuple(h for _, h in path), text))
        lines.clear()

    for line in body.split("\n"):
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
        heading = None if in_fence else ATX_HEADING.match(line)
        if not heading:
            lines.append(line)
            continue
        flush()
        level, name = len(heading.group(1)), heading.group(2).strip()
        if level == 1 and not title:
            title = name
            continue
        path = [(lvl, h) for lvl, h in path if lvl < level] + [(level, name)]
    flush()
    return title, sections
