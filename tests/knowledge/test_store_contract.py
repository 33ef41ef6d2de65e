"""The knowledge store contract: what `qa` and the build pipeline may rely on from any store.

Every test runs once per store kind in STORES. A new store joins by adding one factory there: it returns a
`StoreKit` whose settings point `open_store`/`open_writer` at a fresh, empty library, and says how to make its
`replace` fail half-way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from kb_fixtures import ARTICLES, FakeEmbedder, fake_settings, write_articles

from knowledge.build import BuildReport, build_index
from knowledge.chunking import embedding_prefix
from knowledge.lexical import tokenize
from knowledge.settings import Settings
from knowledge.store import KnowledgeStore, StoreWriter, open_store, open_writer

# One article with question keys: the word "shivering" is only in a key, never in the text.
KEYED = {
    "diary.md": "# Recovery diary\n\n## The first month\n\n" + " ".join(
        f"On day {n} the team checked my blood counts and my temperature again." for n in range(1, 61)) + "\n",
    "keyed.md": """---
title: Chills after the infusion
url: https://example.org/chills
reviewed: 2025-04-02
questions:
  Why chills happen: ["why am I shivering after my cells"]
---

# Chills after the infusion

Chills are common in the first days.

## Why chills happen

The new cells release signalling proteins that reset the body's thermostat. Blankets and warm drinks help.
""",
}


class Boom(RuntimeError):
    """The failure a test injects into a build."""


@dataclass
class StoreKit:
    """One kind of store under test: its settings, and how to break its `replace` half-way."""

    settings: Settings
    break_replace: Callable[[pytest.MonkeyPatch], None]
    forget_question_key_vectors: Callable[[], None]  # make the library look built before keys were embedded

    def writer(self) -> StoreWriter:
        return open_writer(self.settings)

    def open(self) -> KnowledgeStore:
        return open_store(self.settings)

    def build(self, articles: Path, embedder: FakeEmbedder) -> BuildReport:
        return build_index([articles], self.settings, embedder=embedder, progress=False)


def _embedded(tmp_path: Path, request: pytest.FixtureRequest) -> StoreKit:
    def break_replace(monkeypatch: pytest.MonkeyPatch) -> None:
        def boom(*args, **kwargs):
            raise Boom("disk full at the last step")

        monkeypatch.setattr("knowledge.index_writer._swap_into_place", boom)  # everything written, nothing swapped

    def forget_question_key_vectors() -> None:
        from knowledge.index import QUESTION_KEY_ROWS, QUESTION_KEY_VECTORS

        for name in (QUESTION_KEY_ROWS, QUESTION_KEY_VECTORS):
            (tmp_path / "index" / name).unlink()

    return StoreKit(fake_settings(tmp_path / "index"), break_replace, forget_question_key_vectors)


def _postgres(tmp_path: Path, request: pytest.FixtureRequest) -> StoreKit:
    """A fresh database on the session's PostgreSQL + pgvector server; readers poll on every search."""
    url = request.getfixturevalue("pg_url")

    def break_replace(monkeypatch: pytest.MonkeyPatch) -> None:
        def boom(*args, **kwargs):
            raise Boom("disk full at the last step")

        monkeypatch.setattr("knowledge.pg_store._write_lexical", boom)  # documents written, BM25 not, no commit

    def forget_question_key_vectors() -> None:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM question_keys")
            conn.execute("UPDATE library SET version = version + 1")

    return StoreKit(fake_settings(tmp_path / "index").updated(store=url, pg_poll_seconds=0.0), break_replace,
                    forget_question_key_vectors)


STORES: dict[str, Callable[[Path, pytest.FixtureRequest], StoreKit]] = {"embedded": _embedded, "postgres": _postgres}


SERVER_STORES = {"postgres"}  # they start a server: slow tests, which CI runs too


@pytest.fixture(params=[pytest.param(kind, marks=pytest.mark.slow) if kind in SERVER_STORES else kind
                        for kind in STORES])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreKit:
    """An empty library of each store kind."""
    return STORES[request.param](tmp_path, request)


@pytest.fixture
def articles(tmp_path: Path) -> Path:
    return write_articles(tmp_path / "articles", {**ARTICLES, **KEYED})


@pytest.fixture
def library(store: StoreKit, articles: Path) -> KnowledgeStore:
    """The test articles built into the store with the fake embedder, opened for reading."""
    store.build(articles, FakeEmbedder())
    return store.open()


def _by_title(library: KnowledgeStore, title: str) -> str:
    (doc_id,) = {c.doc_id for c in library.all_chunks() if c.title == title}
    return doc_id


def _texts(library: KnowledgeStore) -> str:
    return " ".join(c.text for c in library.all_chunks())


def test_dense_search_finds_a_chunk_from_its_own_vector(library: KnowledgeStore) -> None:
    for chunk in library.all_chunks():
        query = library.chunk_vectors([chunk.chunk_id])[0]
        best = library.dense_search(query, 3)[0]
        assert best.chunk_id == chunk.chunk_id
        assert best.score == pytest.approx(1.0, abs=1e-5)


def test_lexical_search_finds_the_chunk_with_a_rare_word(library: KnowledgeStore) -> None:
    (hit, *_) = library.lexical_search("tocilizumab", 5)
    assert "tocilizumab" in library.chunk(hit.chunk_id).text
    assert hit.score > 0
    assert library.lexical_search("zyxwvut", 5) == []


def test_question_keys_are_searchable_words_of_their_section(library: KnowledgeStore) -> None:
    doc_id = _by_title(library, "Chills after the infusion")
    assert library.question_keys()[doc_id] == {"Why chills happen": ("why am I shivering after my cells",)}
    (hit, *_) = library.lexical_search("shivering", 5)
    assert "thermostat" in library.chunk(hit.chunk_id).text


def test_question_keys_are_stored_with_the_vectors_they_were_embedded_as(library: KnowledgeStore) -> None:
    doc_id = _by_title(library, "Chills after the infusion")
    stored = library.question_key_vectors()
    assert [(k.doc_id, k.heading, k.text) for k in stored.keys] == [
        (doc_id, "Why chills happen", "why am I shivering after my cells")]
    assert stored.vectors.shape == (1, library.dimension)
    assert np.abs(stored.vectors - FakeEmbedder().encode(["why am I shivering after my cells"])).max() <= 1e-6


def test_chunk_and_document_reads_agree(library: KnowledgeStore) -> None:
    chunks = list(library.all_chunks())
    assert library.chunk_count() == len(chunks) == library.manifest["counts"]["chunks"]  # type: ignore[index]
    assert {c.title for c in chunks} == {"Cytokine release syndrome", "Neurotoxicity after CAR-T", "Recovery diary",
                                         "Driving after treatment", "Leukapheresis", "Chills after the infusion"}
    crs = _by_title(library, "Cytokine release syndrome")
    doc_chunks = library.document_chunks(crs)
    assert [c.position for c in doc_chunks] == list(range(len(doc_chunks)))
    assert all(library.chunk(c.chunk_id) == c for c in doc_chunks)
    assert "38 degrees" in " ".join(c.text for c in doc_chunks)
    assert all(c.url == "https://example.org/crs" and c.article == "cytokine-release-syndrome" for c in doc_chunks)
    for c in doc_chunks:
        assert len(c.sentence_texts()) == len(c.sentences) and all(s.strip() for s in c.sentence_texts())


def test_stored_vectors_are_the_ones_embedded(library: KnowledgeStore) -> None:
    fake = FakeEmbedder()
    chunks = list(library.all_chunks())
    expected = fake.encode([embedding_prefix(c.title, c.heading_path) + c.text for c in chunks])
    assert np.abs(library.chunk_vectors([c.chunk_id for c in chunks]) - expected).max() <= 1e-6
    for chunk in chunks:
        stored = library.sentence_vectors(chunk)
        assert stored.shape == (len(chunk.sentences), library.dimension)
        assert np.abs(stored - fake.encode(chunk.sentence_texts())).max() <= 1e-6
    assert library.dimension == FakeEmbedder.dimension and library.model == FakeEmbedder.model_name


def test_idf_and_vocabulary(library: KnowledgeStore) -> None:
    vocabulary = library.vocabulary()
    (rare,) = tokenize("tocilizumab")
    (common,) = tokenize("CAR-T")[-1:]
    assert {rare, common} <= vocabulary
    assert "zyxwvut" not in vocabulary
    assert library.idf(rare) > library.idf(common) > 0
    assert library.idf("zyxwvut") >= library.idf(rare)  # a word no chunk has weighs most


def test_document_meta_sections_and_headings(library: KnowledgeStore) -> None:
    crs = _by_title(library, "Cytokine release syndrome")
    meta = library.document_meta(crs)
    assert meta["url"] == "https://example.org/crs"
    assert str(meta["reviewed"]) == "2025-03-01" and meta["summary"] == "Fever and low blood pressure after CAR-T."
    assert library.has_headings(crs)
    assert not library.has_headings(_by_title(library, "Leukapheresis"))
    for doc_id in {c.doc_id for c in library.all_chunks()}:
        first, *rest = library.document_chunks(doc_id)
        assert library.is_section_start(first.chunk_id)
        for before, chunk in zip([first, *rest], rest):
            assert library.is_section_start(chunk.chunk_id) == (chunk.heading_path != before.heading_path)
    diary = library.document_chunks(_by_title(library, "Recovery diary"))
    assert len(diary) >= 3 and not any(library.is_section_start(c.chunk_id) for c in diary[1:])
    assert library.query_encoder_file() is None  # the fake embedder has no ONNX export


def test_a_rebuild_with_a_change_gets_a_new_version(store: StoreKit, articles: Path, library) -> None:
    before = library.version
    changed = articles / "driving.md"
    changed.write_text(changed.read_text().replace("eight weeks", "two weeks"), encoding="utf-8")
    store.build(articles, FakeEmbedder())
    after = store.open()
    assert after.version != before
    assert "two weeks" in _texts(after) and "eight weeks" not in _texts(after)


def test_an_incremental_build_embeds_only_the_changed_document(store: StoreKit, articles: Path, library) -> None:
    kept = {c.chunk_id: (c, library.chunk_vectors([c.chunk_id])) for c in library.all_chunks()
            if c.title != "Driving after treatment"}
    changed = articles / "driving.md"
    changed.write_text(changed.read_text().replace("eight weeks", "two weeks"), encoding="utf-8")
    (articles / "neurotoxicity.md").rename(articles / "icans.md")  # same content, new name: kept too

    embedder = FakeEmbedder()
    report = store.build(articles, embedder)

    assert report.embedded_documents == 1
    assert embedder.encoded and all("two weeks" in t or "Driving" in t or t in changed.read_text()
                                    for t in embedder.encoded)
    after = store.open()
    for chunk_id, (chunk, vector) in kept.items():
        now = after.chunk(chunk_id)
        assert (now.text, now.doc_id) == (chunk.text, chunk.doc_id)
        assert np.array_equal(after.chunk_vectors([chunk_id]), vector)
    assert "why am I shivering after my cells" not in embedder.encoded  # kept with its document
    assert [k.text for k in after.question_key_vectors().keys] == ["why am I shivering after my cells"]
    assert np.array_equal(after.question_key_vectors().vectors, library.question_key_vectors().vectors)
    moved = [c for c in after.all_chunks() if c.title == "Neurotoxicity after CAR-T"]
    assert moved and {c.article for c in moved} == {"icans"}
    assert after.chunk_count() == len(kept) + len(after.document_chunks(_by_title(after, "Driving after treatment")))


def test_changed_question_keys_are_embedded_and_the_old_ones_leave(store: StoreKit, articles: Path, library) -> None:
    keyed = articles / "keyed.md"
    keyed.write_text(keyed.read_text().replace('["why am I shivering after my cells"]',
                                               '["why am I shivering after my cells", "cold and shaking at night"]'),
                     encoding="utf-8")
    embedder = FakeEmbedder()
    report = store.build(articles, embedder)

    assert report.embedded_documents == 1  # a key is part of its document's content
    after = store.open().question_key_vectors()
    assert [k.text for k in after.keys] == ["why am I shivering after my cells", "cold and shaking at night"]
    assert np.abs(after.vectors - FakeEmbedder().encode([k.text for k in after.keys])).max() <= 1e-6


def test_a_library_built_before_keys_were_embedded_embeds_only_the_keyed_documents_again(
        store: StoreKit, articles: Path, library) -> None:
    store.forget_question_key_vectors()
    assert len(store.open().question_key_vectors()) == 0  # readable, just without key vectors
    embedder = FakeEmbedder()
    report = store.build(articles, embedder)

    assert report.embedded_documents == 1
    assert "why am I shivering after my cells" in embedder.encoded
    assert [k.text for k in store.open().question_key_vectors().keys] == ["why am I shivering after my cells"]


class ExplodingEmbedder(FakeEmbedder):
    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        raise Boom("the embedder failed")


@pytest.mark.parametrize("where", ["before-replace", "inside-replace"])
def test_a_failed_build_leaves_the_old_library_readable_and_unchanged(store: StoreKit, articles: Path, library,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      where: str) -> None:
    version, texts, count = library.version, _texts(library), library.chunk_count()
    changed = articles / "driving.md"
    changed.write_text(changed.read_text().replace("eight weeks", "two weeks"), encoding="utf-8")
    embedder = FakeEmbedder()
    if where == "before-replace":
        embedder = ExplodingEmbedder()
    else:
        store.break_replace(monkeypatch)

    with pytest.raises(Boom):
        store.build(articles, embedder)
    monkeypatch.undo()

    after = store.open()
    assert (after.version, _texts(after), after.chunk_count()) == (version, texts, count)
    assert "eight weeks" in _texts(after)
    assert after.lexical_search("tocilizumab", 1)
    report = store.build(articles, FakeEmbedder())  # the next build picks up where the failed one stopped
    assert (report.updated, report.embedded_documents) == (1, 1)
