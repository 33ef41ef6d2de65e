"""Metric functions on hand-made cases with known answers, and against ranx on a random run."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from eval.metrics import (
    Rate,
    confusion_matrix,
    evaluate_run,
    fact_hit,
    latency_summary,
    ndcg_at_k,
    percentile,
    precision_recall,
    rate,
    recall_at_k,
    reciprocal_rank_at_k,
    token_recall,
)


def test_ndcg_of_a_hand_ranked_list():
    # DCG = 0 + 1/log2(3) + 2/log2(4); ideal order (2, 1) gives 2 + 1/log2(3).
    expected = (1 / math.log2(3) + 1.0) / (2 + 1 / math.log2(3))
    assert ndcg_at_k(["d1", "d2", "d3"], {"d2": 1, "d3": 2}, 10) == pytest.approx(expected)


def test_ndcg_is_one_for_the_ideal_order_and_zero_without_relevant_documents():
    assert ndcg_at_k(["d3", "d2", "d1"], {"d2": 1, "d3": 2}, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["d1"], {"d1": 0}, 10) == 0.0
    assert ndcg_at_k(["x", "y"], {"d1": 1}, 10) == 0.0


def test_ndcg_cut_off_ignores_documents_below_k():
    assert ndcg_at_k(["x", "d1"], {"d1": 1}, 1) == 0.0
    assert ndcg_at_k(["x", "d1"], {"d1": 1}, 2) == pytest.approx(1 / math.log2(3))


def test_reciprocal_rank_is_one_over_the_first_relevant_rank():
    assert reciprocal_rank_at_k(["x", "y", "d1", "d2"], {"d1": 1, "d2": 1}, 10) == pytest.approx(1 / 3)
    assert reciprocal_rank_at_k(["d1"], {"d1": 1}, 10) == 1.0
    assert reciprocal_rank_at_k(["x"] * 0 + [f"x{i}" for i in range(10)] + ["d1"], {"d1": 1}, 10) == 0.0


def test_recall_counts_relevant_documents_within_k():
    ranking = ["d1", "x", "d2", "y"]
    qrels = {"d1": 1, "d2": 1, "d3": 2}
    assert recall_at_k(ranking, qrels, 1) == pytest.approx(1 / 3)
    assert recall_at_k(ranking, qrels, 2) == pytest.approx(1 / 3)
    assert recall_at_k(ranking, qrels, 3) == pytest.approx(2 / 3)
    assert recall_at_k(ranking, {"d1": 0}, 3) == 0.0


def test_a_repeated_document_counts_once():
    assert recall_at_k(["d1", "d1", "d1"], {"d1": 1, "d2": 1}, 3) == 0.5
    assert reciprocal_rank_at_k(["x", "x", "d1"], {"d1": 1}, 2) == 0.5


def test_evaluate_run_scores_missing_queries_zero_and_skips_unjudged_ones():
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 0}}
    run = {"q1": ["d1"], "q3": ["d3"]}
    result = evaluate_run(run, qrels, ["mrr@10", "recall@1"])
    assert result == {"mrr@10": 0.5, "recall@1": 0.5}  # q2 unanswered counts 0; q3 has nothing relevant


def test_evaluate_run_rejects_unknown_measures():
    with pytest.raises(ValueError, match="unknown measure"):
        evaluate_run({}, {"q": {"d": 1}}, ["map@10"])


@pytest.mark.slow  # ranx compiles its metrics with numba on first use: about 30 s; the hand-made cases above are fast
@pytest.mark.filterwarnings("ignore::Warning:ranx")
@pytest.mark.filterwarnings("ignore:unsafe cast")
def test_metrics_agree_with_ranx_on_a_random_run():
    ranx = pytest.importorskip("ranx")
    rng = random.Random(7)
    docs = [f"d{i}" for i in range(150)]
    qrels, run, rankings = {}, {}, {}
    for q in range(40):
        qid = f"q{q}"
        qrels[qid] = {d: rng.choice([1, 1, 2, 3]) for d in rng.sample(docs, rng.randint(1, 12))}
        retrieved = rng.sample(docs, rng.randint(5, 120))
        scores = {d: float(len(retrieved) - i) + rng.random() * 0.1 for i, d in enumerate(retrieved)}
        run[qid] = scores
        rankings[qid] = sorted(scores, key=scores.get, reverse=True)
    measures = ["ndcg@10", "mrr@10", "recall@1", "recall@5", "recall@10", "recall@100"]
    ours = evaluate_run(rankings, qrels, measures)
    theirs = ranx.evaluate(ranx.Qrels.from_dict(qrels), ranx.Run.from_dict(run), measures)
    for measure in measures:
        assert ours[measure] == pytest.approx(theirs[measure], abs=1e-9), measure


def test_confusion_matrix_counts_expected_rows_against_given_columns():
    labels = ("general", "emergency", "defer")
    pairs = [("general", "general"), ("general", "emergency"), ("emergency", "emergency"), ("defer", "general"),
             ("defer", "defer"), ("defer", "defer")]
    assert confusion_matrix(pairs, labels) == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    with pytest.raises(ValueError, match="label outside"):
        confusion_matrix([("general", "panic")], labels)


def test_rates_and_precision_recall():
    assert rate([True, False, True, True]) == Rate(3, 4)
    assert Rate(3, 4).value == 0.75
    assert Rate(0, 0).value is None
    assert Rate(0, 0).to_json() == {"hits": 0, "total": 0, "rate": None}
    precision, recall = precision_recall([(True, True), (True, False), (False, True), (False, False), (True, True)])
    assert (precision.hits, precision.total) == (2, 3)
    assert (recall.hits, recall.total) == (2, 3)


def test_token_recall_counts_reference_tokens_with_multiplicity():
    assert token_recall("The cat sat on the mat.", "the CAT") == pytest.approx(2 / 6)
    assert token_recall("The cat sat on the mat.", "the the cat sat on mat, mat") == pytest.approx(1.0)
    assert token_recall("", "anything") == 0.0
    assert token_recall("fever", "") == 0.0


def test_fact_hit_is_case_insensitive_and_ignores_line_breaks():
    assert fact_hit(["call your team right away"], ["Call your\nteam  right away if a fever starts."])
    assert not fact_hit(["tocilizumab"], ["Actemra is given for CRS."])
    assert fact_hit(["nothing", r"CRS\b"], ["Actemra is given for crs."])
    assert not fact_hit([], ["anything"])


def test_percentiles_match_numpy_and_hand_values():
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)
    assert percentile([5], 95) == 5
    assert percentile([], 50) is None
    values = list(np.random.default_rng(3).exponential(10, 257))
    for q in (50, 90, 95, 99):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_latency_summary():
    summary = latency_summary([10.0, 20.0, 30.0, 40.0, 1000.0])
    assert summary == {"count": 5, "p50": 30.0, "p95": 808.0, "max": 1000.0, "mean": 220.0}
    assert latency_summary([])["p50"] is None
