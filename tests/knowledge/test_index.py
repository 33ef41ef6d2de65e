"""The index with the real model: contents, search, incremental rebuilds, crash safety and mismatch errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from kb_fixtures import ARTICLES, write_articles

import knowledge.index_writer as writer_module
from knowledge.build import build_index
from knowledge.chunking import embedding_prefix
from knowledge.index import (
    IndexMismatchError,
    IndexNotFoundError,
    KnowledgeIndex,
    document_meta,
)
from knowledge.settings import DEFAULT_MODEL, Settings

pytestmark = pytest.mark.slow


def _build(articles: Path, index_dir: Path, **kwargs):
    return build_index([articles], Settings().updated(index_dir=index_dir), progress=False, **kwargs)


def _ids_by_article(index: KnowledgeIndex) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for chunk in sorted(index.chunks.values(), key=lambda c: (c.article, c.position)):
        out.setdefault(chunk.article, []).append(chunk.chunk_id)
    return out


def _leftovers(parent: Path) -> list[str]:
    """Temporary build or retired folders that a finished or failed build must not leave behind."""
    return sorted(p.name for p in parent.iterdir() if ".building-" in p.name or ".old-" in p.name)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, embedder):
    """One index over the small test articles, shared by the read-only tests of this module."""
    root = tmp_path_factory.mktemp("built")
    articles = write_articles(root / "articles")
    report = _build(articles, root / "index")
    return articles, root / "index", report


@pytest.fixture
def spy_encode(embedder, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text the model embeds during the test, through sentence-transformers or the ONNX export builds use."""
    from knowledge.onnx_embedder import OnnxEmbedder

    seen: list[str] = []
    original = embedder.encode
    original_onnx = OnnxEmbedder.encode

    def encode(texts, *args, **kwargs):
        seen.extend(texts)
        return original(texts, *args, **kwargs)

    def encode_onnx(self, texts, *args, **kwargs):
        seen.extend(texts)
        return original_onnx(self, texts, *args, **kwargs)

    monkeypatch.setattr(embedder, "encode", encode)
    monkeypatch.setattr(OnnxEmbedder, "encode", encode_onnx)
    return seen


# ---------------------------------------------------------------- what a build stores


def test_build_report_counts_match_what_is_stored(built) -> None:
    articles, index_dir, report = built
    index = KnowledgeIndex.load(index_dir)

    assert (report.documents, report.added, report.updated, report.removed, report.unchanged) == (4, 4, 0, 0, 0)
    assert report.embedded_documents == 4 and report.skipped == ()
    assert report.chunks == len(index.chunks) == index.vectors.ntotal
    assert report.sentences == len(index.sentence_matrix) == sum(len(c.sentences) for c in index.chunks.values())
    assert set(_ids_by_article(index)) == {Path(name).stem for name in ARTICLES}


def test_every_stored_sentence_is_a_verbatim_span_of_its_source_file(built) -> None:
    articles, index_dir, _ = built
    index = KnowledgeIndex.load(index_dir)

    for chunk in index.chunks.values():
        source = Path(chunk.source_path).read_text(encoding="utf-8")
        assert chunk.text in source
        for start, end in chunk.sentences:
            assert chunk.text[start:end] == chunk.text[start:end].strip() and chunk.text[start:end]


def test_chunks_carry_what_a_citation_needs(built) -> None:
    _, index_dir, _ = built
    index = KnowledgeIndex.load(index_dir)

    treatment = next(c for c in index.chunks.values() if "tocilizumab" in c.text)
    assert treatment.article == "cytokine-release-syndrome"
    assert treatment.title == "Cytokine release syndrome"
    assert treatment.url == "https://example.org/crs"
    assert treatment.section == "Treatment"
    assert treatment.page_start is None
    meta = document_meta(index, treatment.doc_id)
    assert meta["reviewed"] == "2025-03-01" and meta["topics"] == ["side-effects", "crs"]
    text_file = next(c for c in index.chunks.values() if c.article == "leukapheresis")
    assert text_file.title == "Leukapheresis" and text_file.section == "Leukapheresis"


@pytest.mark.parametrize(
    ("question", "article"),
    [
        ("Which medicine blocks interleukin 6?", "cytokine-release-syndrome"),
        ("When can I drive my car again?", "driving"),
        ("My husband's handwriting looks strange, is that a warning sign?", "neurotoxicity"),
        ("How long does collecting my white blood cells take?", "leukapheresis"),
    ],
)
def test_dense_search_finds_the_article_that_answers(built, embedder, question: str, article: str) -> None:
    index = KnowledgeIndex.load(built[1])

    (best_id, score), *_ = index.dense_search(embedder.encode_query(question), k=3)

    assert index.chunk(best_id).article == article
    assert 0.2 < score <= 1.0001


def test_lexical_search_finds_rare_words(built) -> None:
    index = KnowledgeIndex.load(built[1])

    hits = index.lexical_search("tocilizumab", k=5)

    assert hits and index.chunk(hits[0][0]).article == "cytokine-release-syndrome"
    assert index.lexical_search("zebra astronomy", k=5) == []


def test_stored_vectors_are_the_models_unit_vectors(built, embedder) -> None:
    index = KnowledgeIndex.load(built[1])
    chunk = next(c for c in index.chunks.values() if c.article == "driving")

    sentence_vectors = index.sentence_vectors(chunk)
    expected = embedder.encode(chunk.sentence_texts())
    chunk_vector = index.vectors.reconstruct(chunk.chunk_id)

    assert sentence_vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(index.sentence_matrix, axis=1), 1.0, atol=1e-4)
    assert np.allclose(sentence_vectors, expected, atol=1e-4)
    assert float(chunk_vector @ embedder.encode([embedding_prefix(chunk.title, chunk.heading_path) + chunk.text])[0]) > 0.999


def test_index_info_json(built, capsys) -> None:
    from ui.cli import main

    _, index_dir, report = built

    code = main(["index", "info", "--index", str(index_dir), "--json"])

    info = json.loads(capsys.readouterr().out)
    assert code == 0
    assert info["model"] == DEFAULT_MODEL and info["dimension"] == 384
    assert (info["documents"], info["chunks"], info["sentences"]) == (4, report.chunks, report.sentences)
    assert {d["title"] for d in info["documents_list"]} == {
        "Cytokine release syndrome", "Neurotoxicity after CAR-T", "Driving after treatment", "Leukapheresis",
    }
    assert info["size_bytes"] > 0 and info["built_at"]


# ---------------------------------------------------------------- mismatch and damage


@pytest.fixture
def index_copy(built, tmp_path: Path) -> Path:
    """A private copy of the shared index that a test may damage."""
    return Path(shutil.copytree(built[1], tmp_path / "index"))


def _edit_manifest(index_dir: Path, **changes) -> None:
    path = index_dir / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(changes)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def test_loading_with_another_model_says_how_to_rebuild(index_copy: Path) -> None:
    with pytest.raises(IndexMismatchError) as caught:
        KnowledgeIndex.load(index_copy, model="sentence-transformers/all-mpnet-base-v2")

    message = str(caught.value)
    assert "patient-qa index build" in message
    assert DEFAULT_MODEL in message and "all-mpnet-base-v2" in message


@pytest.mark.parametrize(
    ("changes", "load_kwargs", "words"),
    [
        ({"format_version": 99}, {}, "format version 99"),
        ({"dimension": 768}, {"dimension": 384}, "768"),
    ],
    ids=["format-version", "dimension"],
)
def test_manifest_mismatch_is_a_clear_error(index_copy: Path, changes: dict, load_kwargs: dict, words: str) -> None:
    _edit_manifest(index_copy, **changes)

    with pytest.raises(IndexMismatchError, match="patient-qa index build") as caught:
        KnowledgeIndex.load(index_copy, **load_kwargs)

    assert words in str(caught.value)


@pytest.mark.parametrize("damage", ["manifest", "faiss", "store"])
def test_damaged_index_is_a_clear_error(index_copy: Path, damage: str) -> None:
    if damage == "manifest":
        (index_copy / "manifest.json").write_text("{ not json", encoding="utf-8")
    elif damage == "faiss":
        (index_copy / "chunks.faiss").unlink()
    else:
        (index_copy / "store.sqlite").write_bytes(b"not a database" * 100)

    with pytest.raises(IndexMismatchError, match="patient-qa index build"):
        KnowledgeIndex.load(index_copy)


def test_missing_index_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="patient-qa index build"):
        KnowledgeIndex.load(tmp_path / "nothing-here")


def test_index_info_on_a_mismatched_index_fails_with_the_hint(index_copy: Path, capsys) -> None:
    from ui.cli import main

    _edit_manifest(index_copy, format_version=99)

    code = main(["index", "info", "--index", str(index_copy), "--json"])

    assert code == 1
    assert "patient-qa index build" in capsys.readouterr().err


# ---------------------------------------------------------------- incremental rebuilds


def test_changing_one_file_re_embeds_exactly_that_document(articles_dir: Path, tmp_path: Path, spy_encode) -> None:
    _build(articles_dir, tmp_path / "index")
    before = _ids_by_article(KnowledgeIndex.load(tmp_path / "index"))
    changed = articles_dir / "driving.md"
    changed.write_text(changed.read_text().replace("eight weeks", "two weeks"), encoding="utf-8")
    spy_encode.clear()

    report = _build(articles_dir, tmp_path / "index")

    assert (report.updated, report.embedded_documents, report.unchanged, report.added, report.removed) == (1, 1, 3, 0, 0)
    # Only the changed article's chunks (behind their title prefix) and sentences went through the model.
    assert spy_encode and all(t.removeprefix("Driving after treatment\n") in changed.read_text() for t in spy_encode)
    index = KnowledgeIndex.load(tmp_path / "index")
    after = _ids_by_article(index)
    for article in ("cytokine-release-syndrome", "neurotoxicity", "leukapheresis"):
        assert after[article] == before[article]
    assert not set(after["driving"]) & set(before["driving"])
    texts = " ".join(c.text for c in index.document_chunks(index.chunk(after["driving"][0]).doc_id))
    assert "two weeks" in texts and "eight weeks" not in texts
    assert index.vectors.ntotal == len(index.chunks)


def test_deleting_a_file_removes_it_from_the_index(articles_dir: Path, tmp_path: Path, embedder) -> None:
    _build(articles_dir, tmp_path / "index")
    before = _ids_by_article(KnowledgeIndex.load(tmp_path / "index"))
    (articles_dir / "neurotoxicity.md").unlink()

    report = _build(articles_dir, tmp_path / "index")

    assert (report.removed, report.documents, report.unchanged, report.embedded_documents) == (1, 3, 3, 0)
    index = KnowledgeIndex.load(tmp_path / "index")
    after = _ids_by_article(index)
    assert "neurotoxicity" not in after
    assert after == {k: v for k, v in before.items() if k != "neurotoxicity"}
    hits = index.dense_search(embedder.encode_query("handwriting changes and confusion"), k=50)
    assert all(index.chunk(cid).article != "neurotoxicity" for cid, _ in hits)
    assert not index.lexical_search("handwriting", k=5)


def test_rebuilding_unchanged_files_embeds_nothing(articles_dir: Path, tmp_path: Path, spy_encode) -> None:
    _build(articles_dir, tmp_path / "index")
    before = _ids_by_article(KnowledgeIndex.load(tmp_path / "index"))
    spy_encode.clear()

    report = _build(articles_dir, tmp_path / "index")

    assert (report.unchanged, report.embedded_documents, report.updated, report.added) == (4, 0, 0, 0)
    assert spy_encode == []
    assert _ids_by_article(KnowledgeIndex.load(tmp_path / "index")) == before


def test_renaming_a_file_keeps_its_vectors_and_ids(articles_dir: Path, tmp_path: Path) -> None:
    _build(articles_dir, tmp_path / "index")
    before = _ids_by_article(KnowledgeIndex.load(tmp_path / "index"))
    (articles_dir / "driving.md").rename(articles_dir / "driving-after-car-t.md")

    report = _build(articles_dir, tmp_path / "index")

    assert (report.added, report.removed, report.embedded_documents) == (1, 1, 0)
    assert _ids_by_article(KnowledgeIndex.load(tmp_path / "index"))["driving-after-car-t"] == before["driving"]


def test_identical_document_at_two_paths_is_stored_once(articles_dir: Path, tmp_path: Path) -> None:
    (articles_dir / "copies").mkdir()
    shutil.copy(articles_dir / "driving.md", articles_dir / "copies" / "driving.md")

    report = _build(articles_dir, tmp_path / "index")

    assert report.documents == 4 and report.added == 5
    index = KnowledgeIndex.load(tmp_path / "index")
    driving = [c for c in index.chunks.values() if "drive" in c.text]
    assert len({c.doc_id for c in driving}) == 1
    assert len(driving) == len({c.text for c in driving})
    (entry,) = [d for d in index.manifest["documents"].values() if d["title"] == "Driving after treatment"]
    assert len(entry["paths"]) == 2


# ---------------------------------------------------------------- crash safety


def _change_and_fail(articles_dir: Path, index_dir: Path, monkeypatch, target: str, error: BaseException):
    """Build, change a file, then rebuild with `target` in knowledge.index_writer raising `error`."""
    _build(articles_dir, index_dir)
    changed = articles_dir / "driving.md"
    changed.write_text(changed.read_text().replace("eight weeks", "two weeks"), encoding="utf-8")

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(writer_module, target, fail)
    with pytest.raises(type(error)):
        _build(articles_dir, index_dir)
    monkeypatch.undo()


@pytest.mark.parametrize(
    ("target", "error"),
    [("save_vector_index", RuntimeError("disk full")), ("_write_store", KeyboardInterrupt())],
    ids=["error-mid-build", "ctrl-c-mid-build"],
)
def test_a_failed_build_leaves_the_previous_index_usable(articles_dir, tmp_path, monkeypatch, target, error) -> None:
    _change_and_fail(articles_dir, tmp_path / "index", monkeypatch, target, error)

    index = KnowledgeIndex.load(tmp_path / "index")
    texts = " ".join(c.text for c in index.chunks.values())
    assert "eight weeks" in texts and "two weeks" not in texts
    assert len(index.chunks) == index.vectors.ntotal
    assert _leftovers(tmp_path) == []

    report = _build(articles_dir, tmp_path / "index")  # the next build picks up where the failed one stopped
    assert (report.updated, report.embedded_documents) == (1, 1)


def test_cli_reports_ctrl_c_and_keeps_the_index(articles_dir, tmp_path, monkeypatch, capsys) -> None:
    from ui.cli import main

    _build(articles_dir, tmp_path / "index")
    before = _ids_by_article(KnowledgeIndex.load(tmp_path / "index"))
    (articles_dir / "driving.md").write_text("# Driving\n\nA new text about driving.", encoding="utf-8")

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(writer_module, "save_vector_index", interrupt)
    code = main(["index", "build", str(articles_dir), "--index", str(tmp_path / "index")])

    assert code == 130
    assert "previous index is unchanged" in capsys.readouterr().err
    assert _ids_by_article(KnowledgeIndex.load(tmp_path / "index")) == before
    assert _leftovers(tmp_path) == []


def test_a_build_that_died_between_its_two_renames_is_recovered(articles_dir: Path, tmp_path: Path) -> None:
    _build(articles_dir, tmp_path / "index")
    before = _ids_by_article(KnowledgeIndex.load(tmp_path / "index"))
    (tmp_path / "index").rename(tmp_path / ".index.old-99999")  # the state after the first rename

    assert _ids_by_article(KnowledgeIndex.load(tmp_path / "index")) == before
    assert _leftovers(tmp_path) == []


def test_rebuild_after_a_build_that_died_between_its_renames_reuses_the_old_index(articles_dir, tmp_path) -> None:
    _build(articles_dir, tmp_path / "index")
    before = _ids_by_article(KnowledgeIndex.load(tmp_path / "index"))
    (tmp_path / "index").rename(tmp_path / ".index.old-99999")

    report = _build(articles_dir, tmp_path / "index")

    assert (report.unchanged, report.embedded_documents) == (4, 0)
    assert _ids_by_article(KnowledgeIndex.load(tmp_path / "index")) == before
    assert _leftovers(tmp_path) == []
