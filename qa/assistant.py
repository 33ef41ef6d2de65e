"""`Assistant.ask`: the one pipeline that chat, CLI, batch runs and evals all call."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from knowledge.glossary import load_glossary
from knowledge.settings import Settings
from knowledge.store import KnowledgeStore, open_store
from qa import safety
from qa.answer import compose, suggested_questions
from qa.answerability import LibraryWords, TopicCheck, check_topic
from qa.conversation import focus_question, rewrite_query, user_turns
from qa.decide import Outcome, decide, needs_evidence
from qa.language import detect_language
from qa.render import EMPTY_MESSAGE, readable_text, render_answer
from qa.retrieval import Retriever
from qa.types import Answer

EMERGENCY_QUERY = "when to call the care team's 24-hour number right away or 911"
GENERIC_QUESTIONS = (
    "How does this apply to my situation?",
    "What should I watch for at home, and who do I call if it happens?",
)


@dataclass(frozen=True)
class Draft:
    """Everything an answer is made from, gathered as `ask` goes; `Assistant._finish` turns it into the Answer."""

    question: str
    outcome: Outcome
    started: float  # perf_counter when the question arrived
    timings: dict[str, float] = field(default_factory=dict)
    suggested: tuple[str, ...] = ()
    note: str = ""  # e.g. the question was cut to its first characters
    query: str = ""
    id: str | None = None


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

    def __init__(self, settings: Settings | None = None, index: KnowledgeStore | None = None, embedder=None,
                 mode: str | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.index = index or open_store(self.settings)
        if embedder is None:
            from knowledge.embedding import query_embedder

            embedder = query_embedder(self.index.query_encoder_file(), self.index.manifest, self.settings.index.embedding_backend,
                                      self.settings.retrieval.threads)
        self.embedder = embedder
        self.glossary = load_glossary(self.settings.index.glossary) if self.settings.index.glossary.exists() else None
        self.retriever = Retriever(self.index, embedder, self.glossary, self.settings.retrieval, mode=mode)
        from knowledge.embedding import shared_embedder
        from qa.triage_model import load_model

        model_path = self.settings.triage.triage_model
        self.triage_model = load_model(model_path, model_path.with_suffix(".json"))
        # The triage model reads MiniLM vectors; with another index model it gets its own (rare) embedder.
        same = embedder_matches(self.index.model, self.triage_model.embedding_model)
        self.triage_embedder = embedder if same else shared_embedder(self.triage_model.embedding_model, 1)
        self.library = self._library_words()
        self._library_version = self.index.version
        self._follow_lock = threading.Lock()

    def _follow_library(self) -> None:
        """A shared store can be rebuilt while we run (replicas poll its version): the speller, the question keys
        and the library's words, made once from every chunk, are made again from the new library."""
        version = self.index.version
        if version == self._library_version:
            return
        with self._follow_lock:
            if version != self._library_version:
                from qa.retrieval import library_keys, library_speller

                self.retriever.speller = library_speller(self.index, self.settings.retrieval.spelling_min_length)
                self.retriever.keys = library_keys(self.index)
                self.library = self._library_words()
                self._library_version = version

    def _library_words(self) -> LibraryWords:
        """Every word the articles and their question keys use, for the topic check (built once, in milliseconds)."""
        from knowledge.lexical import tokenize

        asked = " ".join(q for sections in self.index.question_keys().values() for qs in sections.values() for q in qs)
        glossary = self.glossary
        return LibraryWords(
            [*self.retriever.speller.counts, *asked.lower().split()],
            [*self.index.vocabulary(), *tokenize(asked)],
            (lambda word: bool(glossary.find(word))) if glossary else (lambda word: False),
            self.retriever.speller.correct,
            self.settings.answer.typo_max_zipf,
        )

    def topic_check(self, question: str) -> TopicCheck:
        """The question's topic words that no article uses (English questions; the articles are English)."""
        answer = self.settings.answer
        if answer.unknown_topic_base <= 0 or detect_language(question) != "en":
            return TopicCheck()
        return check_topic(question, self.library, answer.everyday_zipf)

    def check_model(self) -> None:
        """Load the embedding model now and check it fits the index, so a bad model fails at start, not mid-batch."""
        from knowledge.index import REBUILD_HINT, IndexMismatchError

        dimension = self.embedder.dimension  # loads the model: a ModelLoadError says how to fix it
        built = self.index.manifest.get("dimension")
        if built != dimension or self.index.dimension != dimension:
            raise IndexMismatchError(
                f"index at {self.index.location} holds {built}-dimensional vectors, but model "
                f"'{self.index.model}' makes {dimension}; {REBUILD_HINT}"
            )

    def warm_up(self) -> None:
        """Load the model and run one query so the first person to ask does not wait."""
        self.ask("What is CAR-T?")

    def concepts(self, text: str) -> list[str]:
        """Glossary names in a text, as the patient wrote them (used to carry a topic into follow-ups)."""
        return [m.name for m in self.glossary.find(text)] if self.glossary else []

    def ask(self, question: str, history: Sequence = (), id: str | None = None) -> Answer:
        """Triage, retrieve, compose, decide and render one answer."""
        started = time.perf_counter()
        question = readable_text(question or "").strip()
        if not question or safety.is_small_talk(question):
            return empty_answer(question, id)
        note = ""
        limit = self.settings.limits.max_question_chars
        if len(question) > limit:
            question = question[:limit]
            note = f"Your question was long, so I answered its first {limit:,} characters."
        turns = [readable_text(turn) for turn in user_turns(history)]
        self._follow_library()

        t0 = time.perf_counter()
        triage = safety.triage(question, turns, self.glossary, embed=self.triage_embedder.encode_query,
                               model=self.triage_model, settings=self.settings.triage)
        t1 = time.perf_counter()
        timings = {"triage": (t1 - t0) * 1000}
        if not needs_evidence(triage):
            if triage.self_harm:
                timings["compose"] = 0.0
            outcome = decide(triage, None, self.settings.answer)
            return self._finish(Draft(question, outcome, started, timings, note=note, id=id))

        conversation = self.settings.conversation
        query = rewrite_query(focus_question(question, self.concepts, conversation), turns, self.concepts,
                              conversation)
        if triage.kind == "emergency":
            # Someone with a symptom now needs what to do first: steer retrieval to when-to-call advice.
            named = ", ".join(s.replace("_", " ") for s in triage.symptoms)
            query = f"{query} ({named + ': ' if named else ''}{EMERGENCY_QUERY})"
        result = self.retriever.retrieve(query, k=self.settings.retrieval.chunks_considered)
        t2 = time.perf_counter()
        timings["retrieval"] = (t2 - t1) * 1000
        composition = compose(result, self.index, query, self.settings.answer)
        topic = self.topic_check(question) if triage.kind in ("general", "defer") else TopicCheck()
        if topic.unknown and result.key_scores:
            topic = replace(topic, key_match=max(result.key_scores.values()))
        outcome = decide(triage, composition, self.settings.answer, topic)
        if outcome.unknown_topic:
            note = " ".join(filter(None, (note, f'Our articles do not mention "{outcome.unknown_topic}".')))
        suggested = outcome.fixed_questions
        if outcome.quotes and not suggested:
            articles = list(dict.fromkeys(q.article for q in outcome.quotes))
            suggested = tuple(suggested_questions(self.index, result, articles, self.settings.answer))
            suggested = suggested or GENERIC_QUESTIONS
        timings["compose"] = (time.perf_counter() - t2) * 1000
        return self._finish(Draft(question, outcome, started, timings, suggested, note, query, id))

    @staticmethod
    def _finish(draft: Draft) -> Answer:
        """The Answer for a draft: its Markdown rendered from the outcome, the total time taken."""
        outcome = draft.outcome
        markdown = render_answer(outcome.quotes, draft.suggested, outcome.notice, outcome.says_not_covered,
                                 draft.note, outcome.examples)
        timings = {**draft.timings, "total": (time.perf_counter() - draft.started) * 1000}
        return Answer(
            question=draft.question, triage=outcome.kind, abstained=outcome.abstained, quotes=outcome.quotes,
            suggested_questions=draft.suggested, markdown=markdown, notice=outcome.notice, query=draft.query,
            timings_ms={k: round(v, 2) for k, v in timings.items()}, id=draft.id, self_harm=outcome.self_harm,
            note=draft.note, examples=outcome.examples,
        )
