"""Choose the sentences that answer best and quote them verbatim, or abstain when the evidence is weak."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from knowledge.lexical import tokenize
from qa.render import display_path
from qa.retrieval import RetrievalResult, RetrievedChunk
from qa.types import Quote

MAX_QUOTES = 4
MAX_ARTICLES = 3
MAX_LIST_ITEMS = 6
MIN_QUESTION_SIMILARITY = 0.33
GENERIC_SHARE = 0.15  # a word in more than this share of chunks says little about the topic
SAME_POINT = 0.94  # cosine above which two sentences make the same point
QUESTIONS_SECTION = re.compile(r"^questions? (to ask|for)\b", re.I)
_LEADING_REFERENCE = re.compile(r"^(it|this|that|these|those|they|them|he|she|its|their|such|both|also|but|however|then)\b", re.I)


@dataclass(frozen=True)
class Weights:
    """How a sentence's score is made; tuned on the dev gold set (see eval/)."""

    sentence: float = 0.40
    chunk: float = 0.15
    overlap: float = 0.10
    rank: float = 0.05
    neighbour: float = 0.20  # also quote the next sentence when it scores within this of the best
    heading: float = 0.06  # bonus by how much of the question the sentence's section heading shares
    answer_type: float = 0.06  # bonus when a sentence has the kind of answer asked for (a duration, a number)
    intro: float = 0.06  # penalty for text before a document's first heading: summaries, rarely the answer
    margin: float = 0.15  # keep further sentences scoring within this of the best


@dataclass(frozen=True)
class Candidate:
    """One sentence of a retrieved chunk, scored."""

    hit: RetrievedChunk
    index: int  # sentence number within the chunk
    score: float
    cosine: float


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
        (r"\b(chances?|odds|likely|likelihood|success|how well|how often|how common|how many people|percent|rate|survival|work(s|ed)? for)\b",
         r"\d+ (in|out of|of) \d+|\d+(\.\d+)? ?%|\b(most|many|some|few) (people|patients)\b|\bpercent\b"),
        (r"\b(too old|how old|my age|at my age|age limit|older (adults|people|patients))\b",
         r"\b(age|ages|aged|older|years old|\d0s)\b"),
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


def score_sentences(result: RetrievalResult, index, query: str, weights: Weights = Weights()) -> list[Candidate]:
    """Score every quotable sentence of the retrieved chunks against the question."""
    q_tokens = set(tokenize(result.query or query))
    x_tokens = set(tokenize(" ".join(result.expansions))) - q_tokens
    idf = index.lexical.idf
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
                - (weights.intro if not chunk.heading_path and chunk.doc_id in index.docs_with_headings else 0.0)
                + weights.heading * min(1.0, heading_share)
                + (weights.answer_type if expected is not None and expected.search(text) else 0.0)
            )
            candidates.append(Candidate(hit, i, score, float(cosines[i])))
    return candidates


def compose(result: RetrievalResult, index, query: str, weights: Weights = Weights()) -> Composition:
    """Pick 1-4 best sentences (runs of neighbours kept together) from at most 3 articles, in document order."""
    candidates = sorted(score_sentences(result, index, query, weights), key=lambda c: c.score, reverse=True)
    if not candidates:
        return Composition((), 0.0)
    best = candidates[0].score
    chosen: list[Candidate] = []
    articles: list[str] = []
    seen_text: set[str] = set()
    chosen_vectors: list[np.ndarray] = []
    # Overlapping chunks hold the same sentence twice; prefer the copy that has the next sentence too.
    occurrences: dict[str, Candidate] = {}
    for cand in candidates:
        key = " ".join(cand.hit.chunk.sentence_texts()[cand.index].split())
        known = occurrences.get(key)
        if known is None or (known.index + 1 >= len(known.hit.chunk.sentences) > 0 and cand.index + 1 < len(cand.hit.chunk.sentences)):
            occurrences[key] = cand
    for cand in candidates:
        if len(chosen) >= MAX_QUOTES or cand.score < best - weights.margin:
            break
        cand = occurrences[" ".join(cand.hit.chunk.sentence_texts()[cand.index].split())]
        doc = cand.hit.chunk.doc_id
        text = " ".join(cand.hit.chunk.sentence_texts()[cand.index].split())
        if text in seen_text:
            continue
        if doc not in articles and len(articles) >= MAX_ARTICLES:
            continue
        vector = index.sentence_vectors(cand.hit.chunk)[cand.index]
        if any(float(vector @ v) >= SAME_POINT for v in chosen_vectors):
            continue  # "stay about 2 weeks" said again by another article adds nothing
        seen_text.add(text)
        chosen.append(cand)
        chosen_vectors.append(vector)
        if doc not in articles:
            articles.append(doc)

    # Group by chunk; widen a sentence to the neighbours it needs to make sense or that also answer.
    scores = {(c.hit.chunk.chunk_id, c.index): c.score for c in candidates}
    spans: dict[int, tuple[RetrievedChunk, set[int], float]] = {}
    for cand in chosen:
        hit, idx = cand.hit, cand.index
        texts = hit.chunk.sentence_texts()
        entry = spans.setdefault(hit.chunk.chunk_id, (hit, set(), cand.score))
        entry[1].add(idx)
        if idx > 0 and _LEADING_REFERENCE.match(texts[idx]) and (hit.chunk.chunk_id, idx - 1) in scores:
            entry[1].add(idx - 1)
        if texts[idx].rstrip().endswith(":"):  # "Symptoms can include:" needs the list that follows
            entry[1].update(range(idx + 1, min(len(texts), idx + 1 + MAX_LIST_ITEMS)))
        elif idx + 1 < len(texts) and (hit.chunk.chunk_id, idx + 1) in scores and (
            scores[(hit.chunk.chunk_id, idx + 1)] >= best - weights.neighbour
            or (cand is chosen[0] and idx == 0 and hit.chunk.chunk_id in index.section_starts)
        ):
            # The best sentence opening a section usually needs its second sentence: articles answer
            # a heading's question in its first two sentences.
            entry[1].add(idx + 1)

    quotes: list[Quote] = []
    for article in articles:
        hits = sorted((v for v in spans.values() if v[0].chunk.doc_id == article), key=lambda v: v[0].chunk.position)
        for hit, indices, score in hits:
            chunk = hit.chunk
            for run in _runs(sorted(indices)):
                start, end = chunk.sentences[run[0]][0], chunk.sentences[run[-1]][1]
                text = chunk.text[start:end]
                assert text in chunk.text  # quotes are verbatim spans of the stored chunk, by construction
                quotes.append(Quote(
                    text=text, article=chunk.article, title=chunk.title, section=chunk.section, url=chunk.url,
                    source_path=display_path(chunk.source_path), score=round(score, 4), page=chunk.page_at(start),
                    chunk_id=chunk.chunk_id, context=chunk.text,
                ))
    top_hit = candidates[0].hit
    confidence = 0.5 * candidates[0].cosine + 0.5 * top_hit.dense
    kept = tuple(_dedupe_overlaps(quotes))
    return Composition(kept, confidence, _shares_informative_words(kept, result, index, query))


def _shares_informative_words(quotes: tuple[Quote, ...], result: RetrievalResult, index, query: str) -> bool:
    """Whether any quote contains a word of the question that is not everywhere in the corpus.

    Quotes that share no such word ("lose", "hair") with the question are usually about something else.
    """
    n = max(1, len(index.chunks))
    generic = float(np.log(1.0 + (n - GENERIC_SHARE * n + 0.5) / (GENERIC_SHARE * n + 0.5)))
    asked = set(tokenize(f"{result.query or query} {' '.join(result.expansions)}"))
    informative = {t for t in asked if index.lexical.idf(t) > generic}
    quoted: set[str] = set()
    for quote in quotes:
        quoted.update(tokenize(quote.text))
    return not informative or bool(informative & quoted)


def _runs(indices: list[int]) -> list[list[int]]:
    """[1, 2, 4] -> [[1, 2], [4]]: adjacent sentences are quoted as one passage."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


def _dedupe_overlaps(quotes: list[Quote]) -> list[Quote]:
    """Overlapping chunks can yield the same sentence twice; keep the first."""
    kept: list[Quote] = []
    for quote in quotes:
        norm = " ".join(quote.text.split())
        if any(norm in " ".join(k.text.split()) for k in kept if k.article == quote.article):
            continue
        kept = [k for k in kept if not (k.article == quote.article and " ".join(k.text.split()) in norm)]
        kept.append(quote)
    return kept


def suggested_questions(index, result: RetrievalResult, articles: list[str], limit: int = 3) -> list[str]:
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
            for text, vec in zip(chunk.sentence_texts(), vectors):
                if text.strip().endswith("?"):
                    pool.append((float(np.dot(vec, result.query_vector)), " ".join(text.split())))
    pool = [p for p in pool if p[0] >= MIN_QUESTION_SIMILARITY]  # an off-topic suggestion is worse than none
    pool.sort(key=lambda p: p[0], reverse=True)
    seen: list[str] = []
    for _, text in pool:
        if text not in seen:
            seen.append(text)
        if len(seen) >= limit:
            break
    return seen
