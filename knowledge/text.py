"""Small text helpers every layer shares, so each rule is written once."""

from __future__ import annotations

import re

_WEB_URL = re.compile(r"https?://\S+")


def squash_whitespace(text: str) -> str:
    """Runs of whitespace (newlines included) as one space, ends trimmed: how quotes are compared and shown."""
    return " ".join(text.split())


def is_web_url(url: str | None) -> bool:
    """Whether a source's url is a link a reader can follow (http or https, no spaces), not a file path or a blank.

    The one URL check: links in answers and visit sheets, and the article checker's `sources:`."""
    return isinstance(url, str) and bool(_WEB_URL.fullmatch(url.strip()))
