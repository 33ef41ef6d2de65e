"""The BEIR reader on tiny folders, the corpus-to-index mapping, TREC run files, and a model-free retrieval run."""

from __future__ import annotations

import json

import pytest
from eval_fixtures import FakeEmbedder, write_jsonl

from eval.beir import (
    BeirFormatError,
    build_beir_index,
    read_beir,
    read_qrels,
    render_beir_table,
    run_mode,
    run_paths,
    write_corpus_files,
    write_trec_run,
)

CORPUS = [
    {"_id": "d1", "title": "Breast Cancer", "text": "Breast cancer forms in the cells of the breast."},
    {"_id": "d2", "title": "Lung Cancer", "text": "Smoking is the main cause of lung cancer."},
    {"_id": "d/3", "title": "Skin \"Cancer\"", "text": "Sunburn raises the risk of melanoma skin cancer."},
    {"_id": "d4", "title": "Breast Cancer", "text": "Breast cancer forms in the cells of the breast."},  # duplicate text
]
QUERIES = [
    {"_id": "q1", "text": "what causes lung cancer smoking"},
    {"_id": "q2", "text": "melanoma sunburn risk"},
    {"_id": "q3", "text": "a query nobody judged"},
]


def make_beir(folder, qrels_text="query-id\tcorpus-id\tscore\nq1\td2\t1\nq2\td/3\t2\nq2\td2\t0\n", nested=False):
    write_jsonl(folder / "corpus.jsonl", CORPUS)
    write_jsonl(folder / "queries.jsonl", QUERIES)
    qrels = folder / ("qrels/test.tsv" if nested else "qrels.tsv")
    qrels.parent.mkdir(parents=True, exist_ok=True)
    qrels.write_text(qrels_text, encoding="utf-8")
    return folder


def test_reads_corpus_queries_and_qrels_with_a_header(tmp_path):
    data = read_beir(make_beir(tmp_path))
    assert data.corpus["d/3"] == ('Skin "Cancer"', "Sunburn raises the risk of melanoma skin cancer.")
    assert data.queries["q1"] == "what causes lung cancer smoking"
    assert data.qrels == {"q1": {"d2": 1}, "q2": {"d/3": 2, "d2": 0}}
    assert data.judged_queries == ["q1", "q2"]  # q3 has no relevant document
    assert data.duplicate_ids == {}


def test_reads_qrels_from_the_qrels_folder_without_a_header(tmp_path):
    data = read_beir(make_beir(tmp_path, "q1 d2 1\n", nested=True))
    assert data.qrels == {"q1": {"d2": 1}}


def test_repeated_ids_keep_the_last_entry_and_are_counted(tmp_path):
    make_beir(tmp_path)
    write_jsonl(tmp_path / "corpus.jsonl", CORPUS + [{"_id": "d1", "title": "T", "text": "later text"}])
    data = read_beir(tmp_path)
    assert data.corpus["d1"] == ("T", "later text") and data.duplicate_ids == {"corpus": 1}


@pytest.mark.parametrize("remove, message", [
    ("corpus.jsonl", "no corpus.jsonl"),
    ("queries.jsonl", "no queries.jsonl"),
    ("qrels.tsv", "neither qrels.tsv nor qrels/test.tsv"),
])
def test_missing_files_are_named(tmp_path, remove, message):
    make_beir(tmp_path)
    (tmp_path / remove).unlink()
    with pytest.raises(BeirFormatError, match=message):
        read_beir(tmp_path)


def test_bad_lines_are_named(tmp_path):
    make_beir(tmp_path)
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "x"}\nnot json\n')
    with pytest.raises(BeirFormatError, match="queries.jsonl: line 2 is not JSON"):
        read_beir(tmp_path)
    (tmp_path / "qrels.tsv").write_text("q1\td1\t1\nq1\td2\tmany\n")
    with pytest.raises(BeirFormatError, match="line 2 has a score that is not a number"):
        read_qrels(tmp_path / "qrels.tsv")
    with pytest.raises(BeirFormatError, match="no folder"):
        read_beir(tmp_path / "nowhere")


def test_corpus_files_get_safe_unique_names_and_keep_titles(tmp_path):
    data = read_beir(make_beir(tmp_path / "beir"))
    stems = write_corpus_files(data, tmp_path / "docs")
    assert stems == {"d1": "d1", "d2": "d2", "d_3": "d/3", "d4": "d4"}
    text = (tmp_path / "docs" / "d_3.md").read_text()
    assert text.startswith('---\ntitle: "Skin \\"Cancer\\""\n---\n')
    from knowledge.loaders import load_document

    assert load_document(tmp_path / "docs" / "d_3.md").title == 'Skin "Cancer"'


def test_trec_run_file_format(tmp_path):
    path = write_trec_run({"q1": [("d2", 0.5), ("d1", 0.25)]}, tmp_path / "run.trec", "patient-qa-dense")
    assert path.read_text().splitlines() == ["q1 Q0 d2 1 0.500000 patient-qa-dense",
                                             "q1 Q0 d1 2 0.250000 patient-qa-dense"]
    assert run_paths(tmp_path / "run.trec", ["dense"]) == {"dense": tmp_path / "run.trec"}
    assert run_paths(tmp_path / "run.trec", ["bm25", "dense"])["bm25"] == tmp_path / "run.bm25.trec"


def test_a_model_free_run_ranks_documents_and_maps_duplicates_back(tmp_path):
    from knowledge.settings import Settings

    data = read_beir(make_beir(tmp_path / "beir"))
    embedder = FakeEmbedder()
    settings = Settings().updated(index_dir=tmp_path / "unused", model=FakeEmbedder.model_name)
    index, corpus_ids, report = build_beir_index(data, tmp_path / "work", settings, embedder)
    assert report.documents == 3  # d1 and d4 hold the same text: one document, two corpus ids
    assert sorted(sorted(ids) for ids in corpus_ids.values()) == [["d/3"], ["d1", "d4"], ["d2"]]
    result = run_mode(index, embedder, None, data, corpus_ids, "bm25")
    assert [doc for doc, _ in result.run["q1"]][0] == "d2"
    assert {doc for doc, _ in result.run["q1"]} <= {"d1", "d2", "d/3", "d4"}
    assert result.metrics["recall@100"] == 1.0 and result.metrics["mrr@10"] == 1.0
    scores = [score for _, score in result.run["q1"]]
    assert scores == sorted(scores, reverse=True)
    table = render_beir_table({"dataset": "tiny", "corpus": 4, "queries": 2, "index": {"chunks": 3},
                               "measures": ["mrr@10"], "modes": {"bm25": {"metrics": result.metrics,
                                                                          "latency_ms": result.latency_ms}}})
    assert "| mrr@10 | 1.0000 |" in table
    json.dumps(result.metrics)  # JSON-ready
