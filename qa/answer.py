"""Choose the sentences that answer best and quote them verbatim, or abstain when the evidence is weak.

`compose` runs named steps: score every sentence, keep one copy of each, choose the best few, widen them to the
neighbours they need, cut the quotes, drop overlaps, and measure the confidence `qa.decide` judges.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from knowledge.lexical import tokenize
from knowledge.settings import AnswerSettings
from knowledge.store import KnowledgeStore
from knowledge.text import squash_whitespace
from qa.question_keys import section_of
from qa.retrieval import RetrievalResult, RetrievedChunk
from qa.types import Quote

QUESTIONS_SECTION = re.compile(r"^questions? (to ask|for)\b", re.I)
_LEADING_REFERENCE = re.compile(r"^(it|this|that|these|those|they|them|he|she|its|their|such|both|also|but|however|then)\b", re.I)


@dataclass(frozen=True)
class Candidate:
    """One sentence of a retrieved chunk, scored."""

    hit: RetrievedChunk
    index: int  # sentence number within the chunk
    score: float
    cosine: float

    @property
    def text(self) -> str:
        """The sentence, whitespace squashed: two copies of a sentence in overlapping chunks compare equal."""
        return squash_whitespace(self.hit.chunk.sentence_texts()[self.index])


@dataclass(frozen=True)
class Composition:
    """The chosen quotes and the evidence strength used to decide abstention."""

    quotes: tuple[Quote, ...]
    confidence: float
    shares_words: bool = True  # the quotes share at least one informative word with the question


# Expected answer types: a question asking "how long" is answered by a sentence with a duration.
ANSWER_TYPES: tuple[tuple[re.Pattern, re.Pattern], ...] = tuple(
    (re.compile(question, re.I), re.compile(answer, re.I))
    for question, answer in (
        (r"\bhow long\b|\bhow many (days|weeks|months|years)\b|\bwhen (will|can|do|does|should)\b|\bhow soon\b|\bhow quickly\b",
         r"\b(\d+|one|two|three|four|five|six|few|several) (to \d+ )?(hours?|days?|weeks?|months?|years?)\b|\b(day|week|month|year)s? (after|before|of)\b"),
        (r"\b(forever|permanent(ly)?|for good|lifelong|for life|go(es)? away|wear(s)? off|reversible)\b",
         r"\b(permanent(ly)?|lifelong|for life|go(es)? away|temporary|reversible|resolve[sd]?|improve[sd]?|get(s)? better|long-term)\b"),
        (r"\b(chances?|odds|likely|likelihood|success|how well|how often|how common|how rare|how many people|percent|rate|survival|work(s|ed)? for)\b",
         r"\d+ (in|out of|of) \d+|\d+(\.\d+)? ?%|\b(most|many|some|few) (people|patients)\b|\bpercent\b"),
        (r"\b(too old|how old|my age|at my age|age limit|older (adults|people|patients))\b",
         r"\b(age|ages|aged|older (adults?|people|patients|age)|older than \d+|years old|\d0s)\b"),
        (r"\b(pill|pills|tablet|iv|drip|injection|shot|how (is|are) (it|they) given|how do (they|you) (give|get) (it|them))\b",
         r"\b(iv|infusion|into a vein|through a vein|under the skin|by mouth|pills?|injection|shot)\b"),
        (r"\b(cost|costs|price|pay|afford|expensive|how much money)\b", r"\$\s?\d|\b(cost|price|paid|pays|covers?|coverage|insurance|medicare)\b"),
        (r"\b(what|which) (drugs?|medicines?|medications?|products?|treatments?|options?)\b|\bwhat (do|does|did) (they|doctors) (give|use)\b",
         r"\b[A-Z][a-z]+ \([a-z]+\w*\)|\b(tocilizumab|steroids?|dexamethasone|[a-z]+mab|[a-z]+cel)\b"),
    )
)


def answer_type_bonus(query: str) -> re.Pattern | None:
    """The kind of sentence that answers this question (durations, numbers, costs, drug names), if known."""
    for question, answer in ANSWER_TYPES:
        if question.search(query):
            return answer
    return None


_ASKS_FOR_QUESTIONS = re.compile(r"\b(what|which) (questions?|should (i|we) ask)|\bquestions? (to|for|i should|should i) ask|\bwhat (to|should i|do i) ask\b", re.I)


def _is_quotable(text: str, heading_path: tuple[str, ...], wants_questions: bool = False) -> bool:
    """Fragments are never answers; questions (and 'Questions to ask' lists) only when questions are asked for."""
    stripped = text.strip()
    if len(stripped.split()) < 4:
        return False
    if wants_questions:
        return True
    return not stripped.endswith("?") and not any(QUESTIONS_SECTION.match(h) for h in heading_path)


def score_sentences(result: RetrievalResult, index: KnowledgeStore, query: str,
                    settings: AnswerSettings = AnswerSettings()) -> list[Candidate]:
    """Score every quotable sentence of the retrieved chunks against the question."""
    weights = settings.weights
    q_tokens = set(tokenize(result.query or query))
    x_tokens = set(tokenize(" ".join(result.expansions))) - q_tokens
    idf = index.idf
    q_weight = sum(idf(t) for t in q_tokens) or 1.0
    x_weight = max((idf(t) for t in x_tokens), default=0.0)
    wants_questions = bool(_ASKS_FOR_QUESTIONS.search(query))
    expected = answer_type_bonus(query)
    candidates: list[Candidate] = []
    for hit in result.chunks:
        chunk = hit.chunk
        vectors = index.sentence_vectors(chunk)
        if not len(vectors):
            continue
        cosines = vectors @ result.query_vector
        heading_tokens = set(tokenize(" ".join(chunk.heading_path)))
        heading_share = sum(idf(t) for t in q_tokens & heading_tokens) / q_weight
        section = section_of(chunk)
        key_prior = weights.keys * result.key_scores.get(section, 0.0) if section is not None else 0.0
        for i, (start, end) in enumerate(chunk.sentences):
            text = chunk.text[start:end]
            if not _is_quotable(text, chunk.heading_path, wants_questions):
                continue
            s_tokens = set(tokenize(text))
            matched = sum(idf(t) for t in q_tokens & s_tokens) + (0.5 * x_weight if x_tokens & s_tokens else 0.0)
            overlap = matched / q_weight
            score = (
                weights.sentence * float(cosines[i])
                + weights.chunk * hit.dense
                + weights.overlap * min(1.0, overlap)
                + weights.rank / (1 + hit.rank)
                - (weights.intro if not chunk.heading_path and index.has_headings(chunk.doc_id) else 0.0)
                + weights.heading * min(1.0, heading_share)
                + (weights.answer_type if expected is not None and expected.search(text) else 0.0)
                + key_prior
            )
            candidates.append(Candidate(hit, i, score, float(cosines[i])))
    return candidates


def compose(result: RetrievalResult, index: KnowledgeStore, query: str,
            settings: AnswerSettings = AnswerSettings()) -> Composition:
    """Pick 1-4 best sentences (runs of neighbours kept together) from at most 3 articles, in document order."""
    candidates = sorted(score_sentences(result, index, query, settings), key=lambda c: c.score, reverse=True)
    if not candidates:
        return Composition((), 0.0)
    chosen, articles = choose_sentences(candidates, best_copies(candidates), index, settings)
    spans = widen_to_neighbours(chosen, candidates, index, settings)
    quotes = dedupe_overlaps(cut_quotes(spans, articles))
    return Composition(quotes, confidence(candidates[0], settings),
                       shares_informative_words(quotes, result, index, query, settings))


def confidence(best: Candidate, settings: AnswerSettings = AnswerSettings()) -> float:
    """How strongly the best sentence answers: a blend of its own cosine and its chunk's (see `qa.decide`)."""
    share = settings.confidence_sentence_share
    return share * best.cosine + (1 - share) * best.hit.dense


def best_copies(candidates: Sequence[Candidate]) -> dict[str, Candidate]:
    """One candidate per sentence text: overlapping chunks hold a sentence twice; prefer the copy with its next one."""
    copies: dict[str, Candidate] = {}
    for cand in candidates:
        known = copies.get(cand.text)
        if known is None or (not _has_next(known) and len(known.hit.chunk.sentences) > 0 and _has_next(cand)):
            copies[cand.text] = cand
    return copies


def _has_next(cand: Candidate) -> bool:
    return cand.index + 1 < len(cand.hit.chunk.sentences)


def choose_sentences(candidates: Sequence[Candidate], copies: dict[str, Candidate], index: KnowledgeStore,
                     settings: AnswerSettings = AnswerSettings()) -> tuple[list[Candidate], list[str]]:
    """The best sentences within the margin of the best, at most `max_quotes` from `max_articles` articles, each
    making a point not already made (a sentence close to one already chosen from its article counts for less); with
    the articles (doc ids) in the order they were first chosen."""
    best = candidates[0].score
    # (score, the copy quoted, its vector): ranked by the best copy's score, quoted from the copy with its next one
    pool: list[tuple[float, Candidate, np.ndarray]] = []
    seen_text: set[str] = set()
    for cand in candidates:
        if cand.score < best - settings.weights.margin:
            break
        copy = copies[cand.text]
        if copy.text in seen_text:
            continue
        seen_text.add(copy.text)
        pool.append((cand.score, copy, index.sentence_vectors(copy.hit.chunk)[copy.index]))
    chosen: list[Candidate] = []
    chosen_vectors: list[np.ndarray] = []
    articles: list[str] = []
    penalty = settings.weights.redundancy

    def value(item: tuple[float, Candidate, np.ndarray]) -> float:
        doc = item[1].hit.chunk.doc_id
        nearest = max((float(item[2] @ v) for c, v in zip(chosen, chosen_vectors, strict=True)
                       if c.hit.chunk.doc_id == doc), default=0.0)
        return item[0] - penalty * max(0.0, nearest)

    def fits(cand: Candidate, vector: np.ndarray) -> bool:
        if cand.hit.chunk.doc_id not in articles and len(articles) >= settings.max_articles:
            return False
        # "stay about 2 weeks" said again by another article adds nothing
        return not any(float(vector @ v) >= settings.same_point for v in chosen_vectors)

    def take(cand: Candidate, vector: np.ndarray) -> None:
        chosen.append(cand)
        chosen_vectors.append(vector)
        if cand.hit.chunk.doc_id not in articles:
            articles.append(cand.hit.chunk.doc_id)

    while pool and len(chosen) < settings.max_quotes:
        _, cand, vector = pool.pop(max(range(len(pool)), key=lambda i: value(pool[i])))
        if fits(cand, vector):
            take(cand, vector)
    return chosen, articles


@dataclass
class Span:
    """The sentences quoted from one chunk, and the score of the first one chosen there."""

    hit: RetrievedChunk
    indices: set[int]
    score: float


def widen_to_neighbours(chosen: Sequence[Candidate], candidates: Sequence[Candidate], index: KnowledgeStore,
                        settings: AnswerSettings = AnswerSettings()) -> dict[int, Span]:
    """Group the chosen sentences by chunk, each widened to the neighbours it needs to make sense or that also answer."""
    best = candidates[0].score
    scores = {(c.hit.chunk.chunk_id, c.index): c.score for c in candidates}
    spans: dict[int, Span] = {}
    for cand in chosen:
        hit, idx = cand.hit, cand.index
        cid = hit.chunk.chunk_id
        texts = hit.chunk.sentence_texts()
        span = spans.setdefault(cid, Span(hit, set(), cand.score))
        span.indices.add(idx)
        if idx > 0 and _LEADING_REFERENCE.match(texts[idx]) and (cid, idx - 1) in scores:
            span.indices.add(idx - 1)  # "It lasts a week" needs the sentence saying what "it" is
        if texts[idx].rstrip().endswith(":"):  # "Symptoms can include:" needs the list that follows
            span.indices.update(range(idx + 1, min(len(texts), idx + 1 + settings.max_list_items)))
        elif idx + 1 < len(texts) and (cid, idx + 1) in scores and (
            scores[(cid, idx + 1)] >= best - settings.weights.neighbour
            or (cand is chosen[0] and idx == 0 and index.is_section_start(cid))
        ):
            # The best sentence opening a section usually needs its second sentence: articles answer
            # a heading's question in its first two sentences.
            span.indices.add(idx + 1)
            if texts[idx + 1].rstrip().endswith(":"):  # a neighbour that opens a list brings the list too
                span.indices.update(range(idx + 2, min(len(texts), idx + 2 + settings.max_list_items)))
    return spans


def cut_quotes(spans: dict[int, Span], articles: Sequence[str]) -> list[Quote]:
    """Quotes by article (first chosen first), chunks in document order, adjacent sentences as one verbatim span."""
    quotes: list[Quote] = []
    for article in articles:
        for span in sorted((s for s in spans.values() if s.hit.chunk.doc_id == article),
                           key=lambda s: s.hit.chunk.position):
            chunk = span.hit.chunk
            for run in (part for passage in _runs(sorted(span.indices)) for part in _same_page(passage, chunk)):
                start, end = chunk.sentences[run[0]][0], chunk.sentences[run[-1]][1]
                quotes.append(Quote(
                    text=chunk.text[start:end], article=chunk.article, title=chunk.title, section=chunk.section,
                    url=chunk.url, source_path=chunk.source_path, score=round(span.score, 4),
                    page=chunk.page_at(start), chunk_id=chunk.chunk_id, context=chunk.text,
                ))
    return quotes


def shares_informative_words(quotes: Sequence[Quote], result: RetrievalResult, index: KnowledgeStore, query: str,
                             settings: AnswerSettings = AnswerSettings()) -> bool:
    """Whether any quote contains a word of the question that is not everywhere in the corpus.

    Quotes that share no such word ("lose", "hair") with the question are usually about something else.
    """
    n = max(1, index.chunk_count())
    share = settings.generic_share
    generic = float(np.log(1.0 + (n - share * n + 0.5) / (share * n + 0.5)))
    asked = set(tokenize(f"{result.query or query} {' '.join(result.expansions)}"))
    informative = {t for t in asked if index.idf(t) > generic}
    quoted: set[str] = set()
    for quote in quotes:
        quoted.update(tokenize(quote.text))
    return not informative or bool(informative & quoted)


def _same_page(run: list[int], chunk) -> list[list[int]]:
    """A run of sentences cut where a new PDF page starts, so each quote cites the page its sentences are on."""
    parts: list[list[int]] = []
    page = object()
    for i in run:
        here = chunk.page_at(chunk.sentences[i][0])
        if parts and here == page:
            parts[-1].append(i)
        else:
            parts.append([i])
        page = here
    return parts


def _runs(indices: Iterable[int]) -> list[list[int]]:
    """[1, 2, 4] -> [[1, 2], [4]]: adjacent sentences are quoted as one passage."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def dedupe_overlaps(quotes: Sequence[Quote]) -> tuple[Quote, ...]:
    """Overlapping chunks can yield the same passage twice, or one inside another; keep the first, or the longer."""
    kept: list[Quote] = []
    for quote in quotes:
        norm = squash_whitespace(quote.text)
        if any(norm in squash_whitespace(k.text) for k in kept if k.article == quote.article):
            continue
        kept = [k for k in kept if not (k.article == quote.article and squash_whitespace(k.text) in norm)]
        kept.append(quote)
    return tuple(kept)


def suggested_questions(index: KnowledgeStore, result: RetrievalResult, articles: Sequence[str],
                        settings: AnswerSettings = AnswerSettings()) -> list[str]:
    """Questions for the care team from the quoted articles' 'Questions to ask' sections, closest first."""
    pool: list[tuple[float, str]] = []
    doc_ids = []
    for hit in result.chunks:
        if hit.chunk.article in articles and hit.chunk.doc_id not in doc_ids:
            doc_ids.append(hit.chunk.doc_id)
    for doc_id in doc_ids:
        for chunk in index.document_chunks(doc_id):
            if not any(QUESTIONS_SECTION.match(h) for h in chunk.heading_path):
                continue
            vectors = index.sentence_vectors(chunk)
            for text, vec in zip(chunk.sentence_texts(), vectors, strict=False):
                if text.strip().endswith("?"):
                    pool.append((float(np.dot(vec, result.query_vector)), squash_whitespace(text)))
    # An off-topic suggestion is worse than none.
    pool = [p for p in pool if p[0] >= settings.min_question_similarity]
    pool.sort(key=lambda p: p[0], reverse=True)
    seen: list[str] = []
    for _, text in pool:
        if text not in seen:
            seen.append(text)
        if len(seen) >= settings.suggestions:
            break
    return seen
