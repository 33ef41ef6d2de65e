"""Helpers for the web-chat tests: canned answers shaped like Assistant.ask builds them, a fake assistant,
free ports, and the articles of the browser test's index."""

from __future__ import annotations

import socket
import time

from knowledge.settings import Settings
from qa import safety
from qa.render import render_answer
from qa.types import Answer, Quote

# A few bundled articles are enough for the browser test and index in seconds.
BROWSER_ARTICLES = (
    "cytokine-release-syndrome.md",
    "what-is-car-t.md",
    "red-flag-symptoms-and-wallet-card.md",
    "staying-near-the-center-and-driving.md",
    "caregivers-guide.md",
    "checkpoint-inhibitor-side-effects.md",
)

# An article whose title and text carry markup that must never run in the page.
HOSTILE_ARTICLE = """---
title: "Tiredness <img src=x onerror=\\"window.__xss=5\\"> after CAR-T"
---

Tiredness after CAR-T cell therapy is common and can last for weeks. Gentle walks help with tiredness after CAR-T <img src=y onerror="window.__xss=7"> for many people. Tell your care team if tiredness after CAR-T gets worse <script>window.__xss=6</script>.
"""

CRS_CONTEXT = (
    "Cytokine release syndrome (CRS) is one of the most common side effects of CAR-T. "
    "Many people hear CRS called a \"cytokine storm.\" CRS can sound frightening, but CAR-T centers treat it every day."
)
CRS_QUOTE = Quote(
    text="Many people hear CRS called a \"cytokine storm.\"",
    article="cytokine-release-syndrome", title="Cytokine release syndrome (CRS): what to know",
    section="What is CRS?", url="", source_path="/x/knowledge/articles/cytokine-release-syndrome.md",
    score=0.7, chunk_id=3, context=CRS_CONTEXT,
)
FEVER_QUOTE = Quote(
    text="Call your treatment center right away for a fever of 100.4°F (38°C) or higher.",
    article="long-term-follow-up", title="Long-term follow-up after CAR-T", section="What should I report?",
    url="https://example.org/follow-up", source_path="/x/long-term-follow-up.md", score=0.6, chunk_id=9,
    context="Report new symptoms. Call your treatment center right away for a fever of 100.4°F (38°C) or higher.",
)


def make_answer(question: str, triage: str = "general", quotes: tuple[Quote, ...] = (CRS_QUOTE,),
                suggested: tuple[str, ...] = ("How likely is CRS with my product?",), abstained: bool = False) -> Answer:
    """An Answer shaped exactly like Assistant.ask builds it (same renderer, same notices)."""
    notice = {"emergency": safety.EMERGENCY_MESSAGE, "defer": safety.DEFER_MESSAGE,
              "out_of_scope": safety.OUT_OF_SCOPE_MESSAGE}.get(triage, "")
    if triage == "out_of_scope":
        quotes, suggested, abstained = (), (), True
    examples = safety.SCOPE_EXAMPLES if triage == "out_of_scope" else ()
    markdown = render_answer(quotes, suggested, notice, abstained and triage == "general", "", examples)
    return Answer(question=question, triage=triage, abstained=abstained, quotes=quotes,
                  suggested_questions=suggested, markdown=markdown, notice=notice, timings_ms={"total": 1.0},
                  examples=examples)


class FakeAssistant:
    """Answers from a table (by keyword), optionally slowly; records what it was asked."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[tuple[str, list]] = []
        self.settings = Settings.from_env(feedback=False)

    def ask(self, question: str, history=(), id=None) -> Answer:
        self.calls.append((question, list(history)))
        if self.delay:
            time.sleep(self.delay)
        text = question.lower()
        if "fever" in text:
            return make_answer(question, "emergency", (FEVER_QUOTE,))
        if "stop" in text:
            return make_answer(question, "defer")
        if "pizza" in text:
            return make_answer(question, "out_of_scope")
        if "unknown" in text:
            return make_answer(question, "general", (), (), abstained=True)
        return make_answer(question)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
