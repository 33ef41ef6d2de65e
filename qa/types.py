"""The Answer contract between `qa` and everything that shows or scores answers (see DESIGN.md)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

TRIAGE_KINDS = ("general", "emergency", "defer", "out_of_scope")

DISCLAIMER = (
    "This is general information, not medical advice. Your care team knows your situation: "
    "ask them about your own care. In an emergency, call your treatment center's 24-hour number "
    "or emergency services (911 in the US)."
)


@dataclass(frozen=True)
class Quote:
    """A verbatim span of a source article, with everything needed to cite it."""

    text: str
    article: str
    title: str
    section: str
    url: str
    source_path: str
    score: float
    page: int | None = None
    chunk_id: int = 0
    context: str = ""  # the whole chunk the quote came from, for the sources panel

    def citation(self) -> str:
        """'Title, Section (p. 3)' as shown in the Sources list."""
        where = self.title if self.section in ("", self.title) else f"{self.title}, {self.section}"
        return f"{where} (p. {self.page})" if self.page else where


@dataclass(frozen=True)
class Answer:
    """What `Assistant.ask` returns; `to_json` is the documented JSON contract."""

    question: str
    triage: str
    abstained: bool
    quotes: tuple[Quote, ...]
    suggested_questions: tuple[str, ...]
    markdown: str
    disclaimer: str = DISCLAIMER
    notice: str = ""  # the urgent / defer / scope message shown above the quotes, if any
    query: str = ""  # the self-contained query actually searched (follow-ups rewritten)
    timings_ms: dict = field(default_factory=dict)
    id: str | None = None
    self_harm: bool = False  # the crisis message was given: the chat keeps its banner until cleared
    note: str = ""  # how the question was read (a long one was cut): shown under the notice
    examples: tuple[str, ...] = ()  # questions the articles do answer, offered when this one is out of scope

    def to_json(self) -> dict:
        """The `patient-qa ask --json` object."""
        data = {
            "id": self.id,
            "question": self.question,
            "triage": self.triage,
            "self_harm": self.self_harm,
            "abstained": self.abstained,
            "quotes": [
                {k: v for k, v in asdict(q).items() if k not in ("chunk_id", "context") and not (k == "page" and v is None)}
                for q in self.quotes
            ],
            "suggested_questions": list(self.suggested_questions),
            "disclaimer": self.disclaimer,
            "markdown": self.markdown,
            "timings_ms": self.timings_ms,
        }
        if self.id is None:
            del data["id"]
        return data
