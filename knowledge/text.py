"""Small text helpers every layer shares, so each rule is written once."""

from __future__ import annotations

import re

_WEB_URL = re.compile(r"https?://")


def squash_whitespace(text: str) -> str:
    """Runs of whitespace (newlines included) as one space, ends trimmed: how quotes are compared and shown."""
    return " ".join(text.split())


def is_web_url(url: str | None) -> bool:
    """Whether a source's url is a link a reader can follow (http or https), not a file path or a blank."""
    return bool(url) and bool(_WEB_URL.match(url or ""))
