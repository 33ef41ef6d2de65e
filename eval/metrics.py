"""Metric functions with no I/O: ranking metrics, rates, confusion matrices, token recall and percentiles.

Ranking metrics follow trec_eval (binary or graded relevance, linear gain, log2 discount); the tests check
them against ranx on a random run.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from knowledge.text import squash_whitespace

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Sequence[str]]

_TOKEN = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Rate:
    """hits out of total; `value` is None when there is nothing to count (shown as n/a, never as 0%)."""

    hits: int
    total: int

    @property
    def value(self) -> float | None:
        return self.hits / self.total if self.total else None

    def to_json(self) -> dict:
        return {"hits": self.hits, "total": self.total, "rate": None if self.value is None else round(self.value, 4)}


def rate(flags: Iterable[bool]) -> Rate:
    """The share of true flags."""
    values = list(flags)
    return Rate(sum(1 for v in values if v), len(values))


# ---------------------------------------------------------------- ranking


def _relevant(relevance: Mapping[str, int]) -> dict[str, int]:
    return {doc: int(rel) for doc, rel in relevance.items() if int(rel) > 0}


def dcg_at_k(ranking: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    """Discounted cumulative gain with linear gain: sum rel_i / log2(i + 1) over the first k ranks."""
    relevant = _relevant(relevance)
    return sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(_unique(ranking)[:k]))


def ndcg_at_k(ranking: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    """DCG@k over the DCG@k of the ideal ranking; 0 when nothing is relevant."""
    ideal = sorted(_relevant(relevance).values(), reverse=True)[:k]
    best = sum(rel / math.log2(rank + 2) for rank, rel in enumerate(ideal))
    return dcg_at_k(ranking, relevance, k) / best if best else 0.0


def reciprocal_rank_at_k(ranking: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    """1 / rank of the first relevant document within the first k, else 0."""
    relevant = _relevant(relevance)
    for rank, doc in enumerate(_unique(ranking)[:k], start=1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


def recall_at_k(ranking: Sequence[str], relevance: Mapping[str, int], k: int) -> float:
    """Share of the relevant documents found within the first k; 0 when nothing is relevant."""
    relevant = _relevant(relevance)
    if not relevant:
        return 0.0
    return len(set(_unique(ranking)[:k]) & relevant.keys()) / len(relevant)


def _unique(ranking: Sequence[str]) -> list[str]:
    """A ranking with repeated documents kept at their first rank (a document is counted once)."""
    return list(dict.fromkeys(ranking))


RANKING_METRICS = {
    "ndcg": ndcg_at_k,
    "mrr": reciprocal_rank_at_k,
    "recall": recall_at_k,
}


def evaluate_run(run: Run, qrels: Qrels, measures: Sequence[str] = ("ndcg@10", "mrr@10", "recall@1", "recall@5",
                                                                     "recall@10", "recall@100")) -> dict[str, float]:
    """Mean of each measure over the queries with at least one relevant document; unanswered queries score 0."""
    queries = [q for q, rels in qrels.items() if _relevant(rels)]
    results: dict[str, float] = {}
    for measure in measures:
        name, _, k = measure.partition("@")
        if name not in RANKING_METRICS or not k.isdigit():
            raise ValueError(f"unknown measure '{measure}'; use one of ndcg@K, mrr@K, recall@K")
        function = RANKING_METRICS[name]
        scores = [function(run.get(q, ()), qrels[q], int(k)) for q in queries]
        results[measure] = sum(scores) / len(scores) if scores else 0.0
    return results


# ---------------------------------------------------------------- classification


def confusion_matrix(pairs: Iterable[tuple[str, str]], labels: Sequence[str]) -> list[list[int]]:
    """Counts of (expected, got): row = expected label, column = label given; unknown labels raise."""
    position = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for expected, got in pairs:
        if expected not in position or got not in position:
            raise ValueError(f"label outside {list(labels)}: {expected!r} -> {got!r}")
        matrix[position[expected]][position[got]] += 1
    return matrix


def precision_recall(pairs: Iterable[tuple[bool, bool]]) -> tuple[Rate, Rate]:
    """(precision, recall) of predictions against truth, from (truth, predicted) flags."""
    pairs = list(pairs)
    true_positive = sum(1 for truth, predicted in pairs if truth and predicted)
    predicted = sum(1 for _, p in pairs if p)
    actual = sum(1 for t, _ in pairs if t)
    return Rate(true_positive, predicted), Rate(true_positive, actual)


# ---------------------------------------------------------------- text


def tokens(text: str) -> list[str]:
    """Lower-case alphanumeric word tokens."""
    return _TOKEN.findall(text.lower())


def token_recall(reference: str, candidate: str) -> float:
    """Share of the reference's tokens (with multiplicity) that the candidate also contains; 0 for an empty reference."""
    wanted = Counter(tokens(reference))
    if not wanted:
        return 0.0
    found = Counter(tokens(candidate))
    return sum(min(count, found[token]) for token, count in wanted.items()) / sum(wanted.values())


def fact_hit(facts: Sequence[str], texts: Sequence[str]) -> bool:
    """True when any fact regex matches any text, case-insensitively (line breaks count as spaces)."""
    joined = [squash_whitespace(t) for t in texts]
    return any(re.search(fact, text, re.I) for fact in facts for text in joined)


# ---------------------------------------------------------------- latency


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between ranks, as numpy's default; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def timed_in_turn(items: Sequence, steps: Mapping[str, Callable[[object], object]]) -> dict[str, list[float]]:
    """Milliseconds of every step on every item, the steps taken in turn for each item: a load that changes during
    the run then weighs on all steps alike (an ask timed minutes apart from its floor gave 2.9x where 1x was true)."""
    import time

    times: dict[str, list[float]] = {label: [] for label in steps}
    for item in items:
        for label, step in steps.items():
            started = time.perf_counter()
            step(item)
            times[label].append((time.perf_counter() - started) * 1000)
    return times


def latency_summary(values_ms: Sequence[float]) -> dict[str, float | None]:
    """p50, p95, max and mean in milliseconds, rounded to 0.01 ms."""
    def rounded(value: float | None) -> float | None:
        return None if value is None else round(value, 2)

    return {
        "count": len(values_ms),
        "p50": rounded(percentile(values_ms, 50)),
        "p95": rounded(percentile(values_ms, 95)),
        "max": rounded(max(values_ms) if values_ms else None),
        "mean": rounded(sum(values_ms) / len(values_ms) if values_ms else None),
    }
