"""report.json, report.md and the plots: shape, known figures from hand-made answers, and a model-free end-to-end run."""

from __future__ import annotations

import json

import pytest
from eval_fixtures import FakeEmbedder, quote, result, sample_results, write_jsonl

from eval.gold import GoldSet, load_gold
from eval.report import build_report, write_report
from eval.scoring import headline, score

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _gold(tmp_path, results) -> GoldSet:
    path = write_jsonl(tmp_path / "gold.jsonl", [{"id": r.item.id, "kind": r.item.kind, "question": r.item.question}
                                                 for r in results])
    return GoldSet(str(path), tuple(r.item for r in results), "dev")


def test_headline_figures_of_hand_made_answers():
    figures = headline(score(sample_results()))
    assert figures["fact_hit_rate"] == pytest.approx(2 / 3, abs=1e-4)
    assert figures["emergency_recall"] == 0.5
    assert figures["false_alarm_rate"] == 0.125  # n1 out of the eight non-emergency items
    assert figures["defer_accuracy"] == 1.0
    assert figures["out_of_scope_accuracy"] == 0.5
    assert figures["abstention_precision"] == 0.5 and figures["abstention_recall"] == 0.5
    assert figures["faithfulness"] == 1.0
    assert figures["gold_article_hit_at_1"] == pytest.approx(2 / 3, abs=1e-4)
    assert figures["retrieval_gold_hit_at_5_chunks"] == 1.0
    assert figures["token_recall"] is None  # no gold answers in a dev-shaped set


def test_confusion_matrix_and_fact_hit_by_kind():
    metrics = score(sample_results())
    triage = metrics["triage"]
    assert triage["labels"] == ["general", "emergency", "defer", "out_of_scope"]
    assert triage["matrix"] == [[4, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 1]]
    assert triage["not_emergency_false_alarms"] == {"hits": 1, "total": 1, "rate": 1.0}
    assert metrics["facts"]["by_kind"]["emergency"] == {"hits": 2, "total": 2, "rate": 1.0}
    assert metrics["facts"]["by_category"]["followup"] == {"hits": 1, "total": 1, "rate": 1.0}


def test_an_unfaithful_quote_lowers_faithfulness_and_fails_its_item():
    results = sample_results() + [result("u1", "answer", "general", (quote("made up", ok=False),), facts=("made",))]
    metrics = score(results)
    assert metrics["faithfulness"]["faithful"] == {"hits": 7, "total": 8, "rate": 0.875}
    assert metrics["faithfulness"]["problems"][0]["id"] == "u1"
    assert "unfaithful quote" in results[-1].failures()[0]


def _sample_report(tmp_path) -> dict:
    results = sample_results()
    return build_report(results, _gold(tmp_path, results), {"directory": "/idx", "documents": 2, "chunks": 5,
                                                            "model": "m"}, "hybrid", 1.5)


@pytest.mark.slow  # imports matplotlib and renders three figures: about 5 s, most of it the import
def test_the_report_has_three_png_plots_named_in_its_markdown(tmp_path):
    written = write_report(_sample_report(tmp_path), tmp_path / "out")
    names = sorted(p.name for p in written)
    assert names == ["categories.png", "latency.png", "report.json", "report.md", "triage_confusion.png"]
    markdown = (tmp_path / "out" / "report.md").read_text()
    for png in ("categories.png", "latency.png", "triage_confusion.png"):
        assert (tmp_path / "out" / png).read_bytes().startswith(PNG_MAGIC)
        assert png in markdown


def test_report_files_have_the_documented_shape(tmp_path):
    written = write_report(_sample_report(tmp_path), tmp_path / "out", plots=False)
    assert sorted(p.name for p in written) == ["report.json", "report.md"]

    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert {"schema", "created_at", "gold", "index", "mode", "headline", "targets", "metrics", "items"} <= data.keys()
    assert data["gold"]["items"] == 10 and len(data["gold"]["sha256"]) == 64
    assert {"facts", "faithfulness", "gold_article", "triage", "latency_ms"} <= data["metrics"].keys()
    assert {"p50", "p95", "max"} <= data["metrics"]["latency_ms"].keys()
    item = next(i for i in data["items"] if i["id"] == "e2")
    assert item["failures"] == ["missed emergency: triaged general"] and item["passed"] is False
    missed = {t["name"] for t in data["targets"] if not t["met"]}
    assert {"fact_hit_rate", "emergency_recall", "not_emergency_false_alarms"} <= missed

    markdown = (tmp_path / "out" / "report.md").read_text()
    for heading in ("## Headline", "## Triage", "## Faithfulness", "## Latency", "## Failed items (4 of 10)"):
        assert heading in markdown
    # The worst failure (a missed emergency) is listed first, with its question and what came back.
    failed = markdown.split("## Failed items")[1]
    assert failed.index("`e2`") < failed.index("`n1`") < failed.index("`a2`")
    assert "- Question: question e2?" in failed and "- Got: triage general" in failed


def test_markup_in_questions_is_shown_as_text(tmp_path):
    results = [result("x1", "answer", "general", (), facts=("x",))]
    results[0] = type(results[0])(**{**results[0].__dict__,
                                     "item": type(results[0].item)("x1", "answer", "<b>bold</b> | pipe", (), ("x",))})
    report = build_report(results, _gold(tmp_path, results), {}, "hybrid", 0.1)
    write_report(report, tmp_path, plots=False)
    markdown = (tmp_path / "report.md").read_text()
    assert "&lt;b&gt;bold&lt;/b&gt; \\| pipe" in markdown and "<b>" not in markdown


ARTICLES = {
    "crs.md": "---\ntitle: Cytokine release syndrome\n---\n\n# Cytokine release syndrome\n\n## What CRS is\n\n"
              "Cytokine release syndrome (CRS) is the most common side effect of CAR-T cell therapy. "
              "It often starts with a fever in the first days after the infusion.\n",
    "icans.md": "---\ntitle: Neurotoxicity\n---\n\n# Neurotoxicity\n\n## What ICANS is\n\n"
                "ICANS is a nervous system side effect of CAR-T cell therapy. "
                "Signs include confusion and trouble speaking.\n",
}


def test_a_model_free_run_through_the_assistant_writes_a_complete_report(tmp_path, monkeypatch):
    from eval.runner import run_gold
    from knowledge.build import build_index
    from knowledge.index import KnowledgeIndex
    from knowledge.settings import Settings
    from qa.assistant import Assistant

    for name, text in ARTICLES.items():
        (tmp_path / "articles").mkdir(exist_ok=True)
        (tmp_path / "articles" / name).write_text(text, encoding="utf-8")
    settings = Settings().updated(index_dir=tmp_path / "index", model=FakeEmbedder.model_name)
    embedder = FakeEmbedder()
    build_index([tmp_path / "articles"], settings, embedder=embedder, progress=False)
    assistant = Assistant(settings, index=KnowledgeIndex.load(settings.index_dir), embedder=embedder)
    # The learned triage head reads MiniLM vectors (it would load the real model, ~30 s); without it triage runs
    # its rule layers only, which is all this report-shape test needs.
    assistant.triage_model = None
    gold = load_gold(write_jsonl(tmp_path / "gold.jsonl", [
        {"id": "a1", "kind": "answer", "question": "what is cytokine release syndrome after car-t cell therapy",
         "facts": ["most common side effect"], "category": "side-effects", "gold_article": "crs"},
        {"id": "o1", "kind": "out_of_scope", "question": "what is the capital of france", "category": "scope"},
    ]))
    monkeypatch.chdir(tmp_path)  # quotes cite paths relative to the working folder
    results = run_gold(assistant, gold)
    assert [r.item.id for r in results] == ["a1", "o1"]
    assert all(q.verbatim and q.section_exists for r in results for q in r.quotes)  # re-checked on the files
    report = build_report(results, gold, {"directory": str(settings.index_dir)}, "hybrid", 0.1)
    written = write_report(report, tmp_path / "out", plots=False)  # the plots have their own test
    assert [p.name for p in written] == ["report.json", "report.md"]
    data = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [i["id"] for i in data["items"]] == ["a1", "o1"]
    assert data["metrics"]["latency_ms"]["count"] == 2
