"""`Assistant.ask`: the one pipeline that chat, CLI, batch runs and evals all call."""

from __future__ import annotations

import time
from collections.abc import Sequence

from knowledge.glossary import load_glossary
from knowledge.index import KnowledgeIndex
from knowledge.settings import Settings
from qa import safety
from qa.answer import Weights, compose, suggested_questions
from qa.conversation import focus_question, rewrite_query, user_turns
from qa.render import EMPTY_MESSAGE, readable_text, render_answer
from qa.retrieval import Retriever
from qa.types import Answer

MAX_QUESTION_CHARS = 2000
# Calibrated on eval/gold/default.jsonl (in-scope vs out-of-scope questions); see eval/ and the README.
DEFAULT_ABSTAIN_THRESHOLD = 0.30
DEFAULT_SCOPE_THRESHOLD = 0.40
# Quotes sharing no informative word with the question need stronger evidence (calibrated like the above:
# every in-scope gold answer without shared words scored >= 0.475; uncovered topics 0.35-0.45).
NO_SHARED_WORDS_THRESHOLD = 0.46
EMERGENCY_QUERY = "when to call the care team's 24-hour number right away or 911"
EMERGENCY_QUESTIONS = (
    "What number do I call at night or on weekends, and what should I have ready when I call?",
    "Which symptoms mean I should call 911 instead of the treatment center?",
)
GENERIC_QUESTIONS = (
    "How does this apply to my situation?",
    "What should I watch for at home, and who do I call if it happens?",
)


def embedder_matches(index_model: str, triage_model: str) -> bool:
    """Whether the index's embedding model is the one the triage model was trained on."""
    from knowledge.embedding import resolve_model_path

    return index_model == triage_model or resolve_model_path(index_model) == resolve_model_path(triage_model)


def empty_answer(question: str = "", id: str | None = None) -> Answer:
    """The friendly prompt for an empty or small-talk message; needs no index, so `ask "" --json` is instant."""
    markdown = render_answer((), notice=EMPTY_MESSAGE)
    return Answer(question=question, triage="general", abstained=True, quotes=(), suggested_questions=(),
                  markdown=markdown, notice=EMPTY_MESSAGE, timings_ms={"total": 0.0}, id=id)


class Assistant:
    """Answers questions with verbatim quotes from the index; load once, ask many times (thread-safe reads)."""

    def __init__(self, settings: Settings | None = None, index: KnowledgeIndex | None = None, embedder=None,
                 mode: str = "hybrid", weights: Weights = Weights()) -> None:
        self.settings = settings or Settings.from_env()
        self.index = index or KnowledgeIndex.load(self.settings.index_dir)
        if embedder is None:
            from knowledge.embedding import query_embedder

            embedder = query_embedder(self.index.directory, self.index.manifest, self.settings.embedding_backend,
                                      self.settings.threads)
        self.embedder = embedder
        self.glossary = load_glossary(self.settings.glossary) if self.settings.glossary.exists() else None
        self.retriever = Retriever(self.index, embedder, self.glossary, mode=mode)
        self.weights = weights
        from knowledge.embedding import shared_embedder
        from qa.triage_model import load_model

        model_path = self.settings.triage_model
        self.triage_model = load_model(model_path, model_path.with_suffix(".json"))
        # The triage model reads MiniLM vectors; with another index model it gets its own (rare) embedder.
        same = embedder_matches(self.index.model, self.triage_model.embedding_model)
        self.triage_embedder = embedder if same else shared_embedder(self.triage_model.embedding_model, 1)
        self.abstain_threshold = self.settings.abstain_threshold or DEFAULT_ABSTAIN_THRESHOLD
        self.scope_threshold = DEFAULT_SCOPE_THRESHOLD

    def check_model(self) -> None:
        """Load the embedding model now and check it fits the index, so a bad model fails at start, not mid-batch."""
        from knowledge.index import REBUILD_HINT, IndexMismatchError

        dimension = self.embedder.dimension  # loads the model: a ModelLoadError says how to fix it
        built = self.index.manifest.get("dimension")
        if built != dimension or self.index.vectors.d != dimension:
            raise IndexMismatchError(
                f"index at {self.index.directory} holds {built}-dimensional vectors, but model "
                f"'{self.index.model}' makes {dimension}; {REBUILD_HINT}"
            )

    def warm_up(self) -> None:
        """Load the model and run one query so the first person to ask does not wait."""
        self.ask("What is CAR-T?")

    def concepts(self, text: str) -> list[str]:
        """Glossary names in a text, as the patient wrote them (used to carry a topic into follow-ups)."""
        return [m.name for m in self.glossary.find(text)] if self.glossary else []

    def ask(self, question: str, history: Sequence = (), id: str | None = None) -> Answer:
        """Triage, retrieve, compose and render one answer."""
        started = time.perf_counter()
        question = readable_text(question or "").strip()
        if not question or safety.is_small_talk(question):
            return empty_answer(question, id)
        note = ""
        if len(question) > MAX_QUESTION_CHARS:
            question = question[:MAX_QUESTION_CHARS]
            note = f"Your question was long, so I answered its first {MAX_QUESTION_CHARS:,} characters."
        turns = [readable_text(turn) for turn in user_turns(history)]

        t0 = time.perf_counter()
        decision = safety.triage(question, turns, self.glossary, embed=self.triage_embedder.encode_query,
                                 model=self.triage_model)
        t1 = time.perf_counter()
        timings = {"triage": (t1 - t0) * 1000}

        if decision.self_harm:
            # A crisis gets the crisis message alone: no article quotes, nothing to read past it.
            timings["compose"] = 0.0
            return self._finish(question, "emergency", (), (), decision.notice, False, note, (), "", timings,
                                started, id, self_harm=True)
        if decision.kind == "out_of_scope":
            return self._finish(question, "out_of_scope", (), (), safety.OUT_OF_SCOPE_MESSAGE, False, note,
                                safety.SCOPE_EXAMPLES, "", timings, started, id)

        query = rewrite_query(focus_question(question, self.concepts), turns, self.concepts)
        if decision.kind == "emergency":
            # Someone with a symptom now needs what to do first: steer retrieval to when-to-call advice.
            named = ", ".join(s.replace("_", " ") for s in decision.symptoms)
            query = f"{query} ({named + ': ' if named else ''}{EMERGENCY_QUERY})"
        result = self.retriever.retrieve(query, k=8)
        t2 = time.perf_counter()
        timings["retrieval"] = (t2 - t1) * 1000
        composition = compose(result, self.index, query, self.weights)
        kind = decision.kind
        abstained = (
            not composition.quotes
            or composition.confidence < self.abstain_threshold
            or (not composition.shares_words and composition.confidence < NO_SHARED_WORDS_THRESHOLD)
        )
        if kind == "general" and not decision.in_scope and composition.confidence < self.scope_threshold:
            timings["compose"] = (time.perf_counter() - t2) * 1000
            return self._finish(question, "out_of_scope", (), (), safety.OUT_OF_SCOPE_MESSAGE, False, note,
                                safety.SCOPE_EXAMPLES, query, timings, started, id)
        quotes = () if abstained and kind == "general" else composition.quotes
        if kind in ("emergency", "defer") and abstained:
            quotes = ()
        articles = list(dict.fromkeys(q.article for q in quotes))
        suggested = tuple(suggested_questions(self.index, result, articles)) if quotes else ()
        if kind == "emergency":
            suggested = EMERGENCY_QUESTIONS
        elif quotes and not suggested:
            suggested = GENERIC_QUESTIONS
        notice = decision.notice
        timings["compose"] = (time.perf_counter() - t2) * 1000
        return self._finish(question, kind, quotes, suggested, notice, abstained and not quotes, note, (), query,
                            timings, started, id)

    def _finish(self, question, kind, quotes, suggested, notice, abstained, note, examples, query, timings,
                started, id, self_harm: bool = False) -> Answer:
        markdown = render_answer(tuple(quotes), tuple(suggested), notice, abstained and kind == "general", note,
                                 tuple(examples))
        timings["total"] = (time.perf_counter() - started) * 1000
        return Answer(
            question=question, triage=kind, abstained=abstained or (kind == "out_of_scope"), quotes=tuple(quotes),
            suggested_questions=tuple(suggested), markdown=markdown, notice=notice, query=query,
            timings_ms={k: round(v, 2) for k, v in timings.items()}, id=id, self_harm=self_harm,
        )
