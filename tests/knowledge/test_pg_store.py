"""The PostgreSQL + pgvector store on a real throwaway server: what a build writes is what readers get back,
BM25 agrees with the embedded store's bm25s, builds are atomic, replicas see new builds, and errors are one line."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import numpy as np
import pytest
from kb_fixtures import ARTICLES, FakeEmbedder, write_articles

from knowledge.chunking import chunk_document, embedding_prefix
from knowledge.errors import PatientQAError
from knowledge.lexical import LexicalIndex
from knowledge.loaders import load_document
from knowledge.settings import PostgresSettings
from knowledge.store import BuiltDocument, KnowledgeStore

pytestmark = pytest.mark.slow  # every test here starts (or shares) a PostgreSQL server

CHUNKING = {"target_words": 40, "max_tokens": 256, "overlap_sentences": 1}
MODEL = FakeEmbedder.model_name
FAST_POLL = PostgresSettings(pg_poll_seconds=0.0)


def built(path: Path, embedder: FakeEmbedder | None = None) -> BuiltDocument:
    """A document as a build hands it over: chunks, unit vectors, and the text BM25 indexes."""
    embedder = embedder or FakeEmbedder()
    doc = load_document(path)
    chunks = tuple(chunk_document(doc, doc.content_hash, embedder.count_tokens, CHUNKING["target_words"],
                                  CHUNKING["max_tokens"], CHUNKING["overlap_sentences"]))
    texts = [embedding_prefix(doc.title, c.heading_path) + c.text for c in chunks]
    return BuiltDocument(
        doc_id=doc.content_hash, doc=doc, paths=(str(path),), chunks=chunks,
        chunk_vectors=embedder.encode(texts),
        sentence_vectors=tuple(embedder.encode(c.sentence_texts()) for c in chunks),
        lexical_texts=tuple(texts),
    )


def manifest(docs: list[BuiltDocument]) -> dict:
    return {"model": MODEL, "dimension": FakeEmbedder.dimension, "chunking": CHUNKING,
            "counts": {"documents": len(docs), "chunks": sum(len(d.chunks) for d in docs)},
            "documents": {d.doc_id: {"title": d.doc.title, "source_path": d.paths[0], "chunks": len(d.chunks),
                                     "kind": d.doc.kind} for d in docs}}


@pytest.fixture
def library(tmp_path: Path) -> list[BuiltDocument]:
    folder = write_articles(tmp_path / "articles")
    return [built(folder / name) for name in sorted(ARTICLES)]


def build(url: str, docs: list[BuiltDocument], keep: tuple[str, ...] = ()):
    from knowledge.pg_store import open_pg_store

    with open_pg_store(url, for_build=True) as writer:
        writer.replace(docs, keep, manifest(docs))


def reader(url: str, settings: PostgresSettings = FAST_POLL):
    from knowledge.pg_store import open_pg_store

    return open_pg_store(url, settings)


def test_a_build_reads_back_chunk_for_chunk(pg_url: str, library: list[BuiltDocument]) -> None:
    build(pg_url, library)
    with reader(pg_url) as store:
        assert isinstance(store, KnowledgeStore)
        assert store.model == MODEL and store.dimension == FakeEmbedder.dimension
        assert store.chunk_count() == sum(len(d.chunks) for d in library)
        for doc in library:
            stored = store.document_chunks(doc.doc_id)
            assert [c.text for c in stored] == [c.text for c in doc.chunks]
            assert [c.sentences for c in stored] == [c.sentences for c in doc.chunks]
            assert all(c.article == Path(doc.paths[0]).stem and c.title == doc.doc.title for c in stored)
            ids = [c.chunk_id for c in stored]
            np.testing.assert_allclose(store.chunk_vectors(ids), doc.chunk_vectors, atol=1e-6)
            for chunk, vectors in zip(stored, doc.sentence_vectors):
                np.testing.assert_allclose(store.sentence_vectors(chunk), vectors, atol=1e-6)
                assert store.chunk(chunk.chunk_id) == chunk
            assert store.is_section_start(ids[0])
        crs = next(d for d in library if d.doc.title == "Cytokine release syndrome")
        assert store.has_headings(crs.doc_id)
        assert store.document_meta(crs.doc_id)["url"] == "https://example.org/crs"
        assert str(store.document_meta(crs.doc_id)["reviewed"]).startswith("2025-03-01")
        assert len(list(store.all_chunks())) == store.chunk_count()
        # Dense search finds a chunk by its own vector, with cosine 1.
        target = store.document_chunks(crs.doc_id)[-1]
        hits = store.dense_search(store.chunk_vectors([target.chunk_id])[0], 3)
        assert hits[0].chunk_id == target.chunk_id and hits[0].score == pytest.approx(1.0, abs=1e-5)
        info = store.info()
        assert info["documents"] == len(library) and info["size_bytes"] > 0 and "postgresql://" in info["index_dir"]


@pytest.mark.parametrize("query", ["tocilizumab", "fever temperature 38 degrees", "drive after infusion",
                                   "white blood cells collection hours", "handwriting nurses sentence",
                                   "fever fever chills", "CAR-T", "nothing matches zebra"])
def test_bm25_scores_equal_the_embedded_stores(pg_url: str, library: list[BuiltDocument], query: str) -> None:
    build(pg_url, library)
    with reader(pg_url) as store:
        ids = [c.chunk_id for d in library for c in store.document_chunks(d.doc_id)]
        texts = [t for d in library for t in d.lexical_texts]
        embedded = LexicalIndex.build(texts, ids)
        expected = embedded.search(query, 10)
        got = store.lexical_search(query, 10)
        assert [h.chunk_id for h in got] == [cid for cid, _ in expected]
        np.testing.assert_allclose([h.score for h in got], [s for _, s in expected], rtol=1e-5)
        assert store.vocabulary() == embedded.vocabulary()
        for token in ["fever", "tocilizumab", "car", "zebra"]:
            assert store.idf(token) == pytest.approx(embedded.idf(token), rel=1e-9)


def test_an_incremental_build_keeps_ids_and_rescores_bm25(pg_url: str, library: list[BuiltDocument],
                                                         tmp_path: Path) -> None:
    build(pg_url, library)
    from knowledge.pg_store import open_pg_store

    with reader(pg_url) as store, open_pg_store(pg_url, for_build=True) as writer:
        first_version = store.version
        assert writer.stored(MODEL, CHUNKING) == {d.doc_id for d in library}
        assert writer.stored("another-model", CHUNKING) == frozenset()
        assert writer.stored(MODEL, {**CHUNKING, "target_words": 99}) == frozenset()
        driving = next(d for d in library if d.doc.title == "Driving after treatment")
        kept = [d for d in library if d is not driving]
        kept_ids = {d.doc_id: [c.chunk_id for c in store.document_chunks(d.doc_id)] for d in kept}
        extra = write_articles(tmp_path / "more", {"sauna.md": "# Sauna\n\nAvoid the sauna for a month after "
                                                   "CAR-T, because fever hides in the heat.\n"})
        new = built(extra / "sauna.md")
        writer.replace([new], [d.doc_id for d in kept], manifest([*kept, new]))
        assert store.version != first_version
        assert store.document_chunks(driving.doc_id) == []
        assert "sauna" in store.vocabulary() and store.lexical_search("drive", 5) == []
        assert {d: [c.chunk_id for c in store.document_chunks(d)] for d in kept_ids} == kept_ids
        ids = [c.chunk_id for d in [*kept, new] for c in store.document_chunks(d.doc_id)]
        embedded = LexicalIndex.build([t for d in [*kept, new] for t in d.lexical_texts], ids)
        for query in ["fever", "sauna heat", "tocilizumab steroids"]:
            got = store.lexical_search(query, 10)
            assert [h.chunk_id for h in got] == [cid for cid, _ in embedded.search(query, 10)]
            np.testing.assert_allclose([h.score for h in got], [s for _, s in embedded.search(query, 10)], rtol=1e-5)


def test_a_failed_build_loses_nothing(pg_url: str, library: list[BuiltDocument], monkeypatch, tmp_path: Path) -> None:
    build(pg_url, library)
    import knowledge.pg_store as pg_store

    def broken(conn) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(pg_store, "_write_lexical", broken)
    with reader(pg_url) as store, pg_store.open_pg_store(pg_url, for_build=True) as writer:
        before = (store.version, store.chunk_count(), store.lexical_search("tocilizumab", 3))
        extra = write_articles(tmp_path / "more", {"sauna.md": "# Sauna\n\nAvoid the sauna after CAR-T.\n"})
        with pytest.raises(RuntimeError, match="disk full"):
            writer.replace([built(extra / "sauna.md")], [], manifest([]))
        assert (store.version, store.chunk_count(), store.lexical_search("tocilizumab", 3)) == before
        assert writer.stored(MODEL, CHUNKING) == {d.doc_id for d in library}


def test_readers_see_the_old_library_while_a_build_runs(pg_url: str, library: list[BuiltDocument], monkeypatch,
                                                        tmp_path: Path) -> None:
    build(pg_url, library[:2])
    import knowledge.pg_store as pg_store

    inside, release = threading.Event(), threading.Event()
    real = pg_store._write_lexical

    def slow(conn) -> None:
        real(conn)
        inside.set()
        assert release.wait(30)

    monkeypatch.setattr(pg_store, "_write_lexical", slow)
    with reader(pg_url) as store, pg_store.open_pg_store(pg_url, for_build=True) as writer:
        old = (store.version, store.chunk_count(), store.lexical_search("drive infusion", 5))
        thread = threading.Thread(target=writer.replace, args=(library[2:], [d.doc_id for d in library[:2]],
                                                                manifest(library)))
        thread.start()
        try:
            assert inside.wait(30)
            assert store.refresh() is False
            assert (store.version, store.chunk_count(), store.lexical_search("drive infusion", 5)) == old
        finally:
            release.set()
            thread.join(30)
        assert store.refresh() is True
        assert store.chunk_count() == sum(len(d.chunks) for d in library)
        assert store.lexical_search("drive infusion", 5)


def test_a_replica_sees_a_new_build_after_its_poll(pg_url: str, library: list[BuiltDocument]) -> None:
    build(pg_url, library[:2])
    with reader(pg_url, PostgresSettings(pg_poll_seconds=0.5)) as replica:
        version = replica.version
        build(pg_url, library[2:], keep=tuple(d.doc_id for d in library[:2]))
        assert replica.version == version  # not yet: checked at most every 0.5 s
        import time

        time.sleep(0.6)
        assert replica.version != version
        assert replica.chunk_count() == sum(len(d.chunks) for d in library)


def test_a_changed_model_re_embeds_with_its_own_dimension(pg_url: str, library: list[BuiltDocument]) -> None:
    build(pg_url, library)

    class Wider(FakeEmbedder):
        dimension = 96

    from knowledge.pg_store import open_pg_store

    wide = [built(Path(d.paths[0]), Wider()) for d in library]
    with open_pg_store(pg_url, for_build=True) as writer:
        writer.replace(wide, [], {**manifest(wide), "dimension": 96, "model": "wider"})
    with reader(pg_url) as store:
        assert store.dimension == 96 and store.model == "wider"
        with pytest.raises(PatientQAError, match="96-dimensional vectors, the model makes 64"):
            store.dense_search(np.ones(64, dtype=np.float32) / 8, 3)


def test_a_server_that_is_down_is_one_line_without_the_password(tmp_path: Path) -> None:
    from knowledge.pg_schema import StoreUnavailableError
    from knowledge.pg_store import open_pg_store

    url = f"postgresql://patient:s3cret-word@/library?host={tmp_path}"
    with pytest.raises(StoreUnavailableError) as caught:
        open_pg_store(url, PostgresSettings(pg_connect_timeout=1))
    message = str(caught.value)
    assert "s3cret-word" not in message and "\n" not in message
    assert message.startswith("cannot reach PostgreSQL at postgresql://patient@/library") and "start the server" in message


def test_an_empty_database_says_how_to_build(pg_url: str) -> None:
    from knowledge.pg_schema import EmptyStoreError

    with pytest.raises(EmptyStoreError, match=r"no library in the store at .*run 'patient-qa index build --store"):
        reader(pg_url)
    from knowledge.pg_store import open_pg_store

    open_pg_store(pg_url, for_build=True).close()  # schema made, nothing built yet
    with pytest.raises(EmptyStoreError, match="index build --store"):
        reader(pg_url)


def test_a_database_without_pgvector_says_how_to_install_it(pg_url: str) -> None:
    import psycopg

    from knowledge.pg_schema import VectorExtensionMissingError

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (1)")
    with pytest.raises(VectorExtensionMissingError, match=r"CREATE EXTENSION vector"):
        reader(pg_url)


@pytest.mark.parametrize("version, says", [(0, "run 'patient-qa index build --store"), (99, "upgrade patient-qa")])
def test_another_schema_version_says_what_to_run(pg_url: str, library: list[BuiltDocument], version: int,
                                                says: str) -> None:
    import psycopg

    from knowledge.pg_schema import SchemaVersionError

    build(pg_url, library)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = %s", (version,))
    with pytest.raises(SchemaVersionError, match=f"schema version {version}.*{says}"):
        reader(pg_url)


def test_one_build_at_a_time(pg_url: str, library: list[BuiltDocument]) -> None:
    from knowledge.pg_schema import StoreError
    from knowledge.pg_store import open_pg_store

    with open_pg_store(pg_url, for_build=True) as first, \
            open_pg_store(pg_url, for_build=True, lock_wait_seconds=0.3) as second:
        with first.building():
            with pytest.raises(StoreError, match="another build is running"):
                with second.building():
                    pass
        with second.building():  # released when the first build ends
            second.replace(library, [], {**manifest(library), "files": {d.paths[0]: d.doc_id for d in library}})
        assert first.files() == {d.paths[0]: d.doc_id for d in library}


def test_a_kept_document_takes_the_builds_record_and_bm25_choice(pg_url: str, library: list[BuiltDocument]) -> None:
    from knowledge.pg_store import open_pg_store

    crs = next(d for d in library if d.doc.title == "Cytokine release syndrome")
    meta = {**crs.doc.meta, "questions": {"Treatment": ["which drug calms the storm"]}}
    build(pg_url, library)
    record = {**manifest(library)["documents"][crs.doc_id], "title": "CRS explained", "meta": meta}
    with open_pg_store(pg_url, for_build=True) as writer, reader(pg_url) as store:
        assert store.lexical_search("storm", 3) == []
        docs = {**manifest(library)["documents"], crs.doc_id: record}
        writer.replace([], [d.doc_id for d in library], {**manifest(library), "documents": docs,
                                                          "lexical": {"question_keys": True}})
        assert store.refresh()  # reads between searches keep one version; a search or refresh() looks for a new one
        assert store.document_chunks(crs.doc_id)[0].title == "CRS explained"
        hits = store.lexical_search("storm", 3)
        assert hits and store.chunk(hits[0].chunk_id).section == "Treatment"
        writer.replace([], [d.doc_id for d in library], {**manifest(library), "documents": docs,
                                                          "lexical": {"question_keys": False}})
        assert store.lexical_search("storm", 3) == []
        assert store.manifest["counts"] == {"documents": 4, "chunks": store.chunk_count(),
                                            "sentences": sum(len(c.sentences) for c in store.all_chunks())}


def test_a_schema_1_library_migrates_and_re_embeds_only_its_keyed_documents(pg_url: str, tmp_path: Path) -> None:
    """A library built before question keys were stored (schema 1) gets the table typed with its dimension, and
    a build keeps every document but those whose keys it lacks vectors for."""
    import psycopg

    from knowledge.pg_schema import SCHEMA_VERSION
    from knowledge.pg_store import open_pg_store
    from knowledge.question_key_vectors import document_question_keys

    folder = write_articles(tmp_path / "articles", {**ARTICLES, "keyed.md": (
        "---\ntitle: Chills\nquestions:\n  Why chills happen: [\"why am I shivering\"]\n---\n\n# Chills\n\n"
        "## Why chills happen\n\nThe new cells reset the body's thermostat for a few days.\n")})
    docs = [built(folder / name) for name in sorted([*ARTICLES, "keyed.md"])]
    keyed = next(d for d in docs if d.doc.title == "Chills")
    with_keys = dataclasses.replace(keyed, question_keys=document_question_keys(keyed.doc.meta),
                                    question_key_vectors=FakeEmbedder().encode(["why am I shivering"]))
    docs = [with_keys if d is keyed else d for d in docs]
    build(pg_url, docs)
    with psycopg.connect(pg_url, autocommit=True) as conn:  # as schema 1 left it
        conn.execute("DROP TABLE question_keys")
        conn.execute("UPDATE schema_version SET version = 1")

    with open_pg_store(pg_url, for_build=True) as writer:
        stored = writer.stored(MODEL, CHUNKING)
    assert stored == {d.doc_id for d in docs} - {keyed.doc_id}
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = "
                            "'question_keys'::regclass AND attname = 'embedding'").fetchone()[0] == "vector(64)"
