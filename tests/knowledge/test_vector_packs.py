"""Vectors shipped with the bundled articles: a new user's first build looks them up instead of embedding every
text, gets the very vectors a build makes, and never a vector of another model or another text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from kb_fixtures import REPO, FakeEmbedder, write_articles

from knowledge.article_check import check_articles, with_pack_findings
from knowledge.build import chunking_params
from knowledge.embedding_cache import CachedEmbedder, EmbeddingCache, text_key
from knowledge.settings import Settings
from knowledge.vector_packs import (
    PACKS_DIR,
    VectorPack,
    load_shipped,
    pack_path,
    read_pack,
    stale_packs,
    write_pack,
)

BUNDLED = REPO / "knowledge" / "articles"


def a_pack(texts: list[str], encoder: str = "onnx:m1:p1", dimension: int = 8, doc_id: str = "d1") -> VectorPack:
    rng = np.random.default_rng(0)
    keys = np.frombuffer(b"".join(text_key(t) for t in texts), dtype=np.uint8).reshape(len(texts), 32)
    return VectorPack(encoder, doc_id, json.dumps({"x": 1}), keys, rng.normal(size=(len(texts), dimension)).astype(np.float32))


def test_a_written_pack_reads_back_exactly(tmp_path):
    pack = a_pack(["fever after the infusion", "who drives me home"])
    write_pack(tmp_path / "a.npz", pack)
    back = read_pack(tmp_path / "a.npz")
    assert back is not None
    assert (back.encoder, back.doc_id, back.chunking) == (pack.encoder, pack.doc_id, pack.chunking)
    assert np.array_equal(back.keys, pack.keys) and np.array_equal(back.vectors, pack.vectors)
    assert not (tmp_path / "a.npz.partial").exists()


def test_only_the_same_encoder_and_dimension_are_looked_up(tmp_path):
    write_pack(tmp_path / "a.npz", a_pack(["fever after the infusion"], encoder="onnx:m1:p1"))
    write_pack(tmp_path / "b.npz", a_pack(["who drives me home"], encoder="onnx:other-model:p1"))
    found = load_shipped(tmp_path, "onnx:m1:p1", 8)
    assert list(found) == [text_key("fever after the infusion")]
    assert load_shipped(tmp_path, "onnx:m1:p1", 384) == {}
    assert load_shipped(tmp_path / "missing", "onnx:m1:p1", 8) == {}


def test_a_damaged_or_pickled_pack_is_ignored_not_fatal(tmp_path):
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")
    np.savez(tmp_path / "pickled.npz", format_version=np.int64(1), encoder=np.array([{"a": 1}], dtype=object))
    assert read_pack(tmp_path / "broken.npz") is None
    assert read_pack(tmp_path / "pickled.npz") is None  # object arrays would need pickle: refused
    assert load_shipped(tmp_path, "onnx:m1:p1", 8) == {}


def test_shipped_vectors_are_used_and_only_other_texts_are_embedded(tmp_path):
    shipped_text, other = "fever after the infusion", "a sentence nobody shipped"
    pack = a_pack([shipped_text], dimension=FakeEmbedder.dimension)
    inner = FakeEmbedder()
    embedder = CachedEmbedder(inner, EmbeddingCache(tmp_path / "e.sqlite", "onnx:m1:p1", inner.dimension, 10.0),
                              {pack.keys[0].tobytes(): pack.vectors[0]})
    vectors = embedder.encode([shipped_text, other, shipped_text])
    assert inner.encoded == [other]
    assert np.array_equal(vectors[0], pack.vectors[0]) and np.array_equal(vectors[2], pack.vectors[0])
    assert (embedder.hits, embedder.misses) == (2, 1)
    # Without a cache (PATIENT_QA_EMBEDDING_CACHE_MB=0) the shipped vectors still count.
    bare = CachedEmbedder(FakeEmbedder(), None, {pack.keys[0].tobytes(): pack.vectors[0]})
    assert np.array_equal(bare.encode([shipped_text])[0], pack.vectors[0]) and bare.inner.encoded == []


def test_a_pack_is_stale_when_its_article_or_the_chunking_changes(tmp_path):
    root = write_articles(tmp_path / "articles")
    articles = sorted(root.glob("*.md"))
    chunking = chunking_params(Settings())
    from knowledge.loaders import load_document

    for article in articles:
        pack = a_pack(["x"], doc_id=load_document(article).content_hash)
        write_pack(pack_path(tmp_path / "packs", article, root),
                   VectorPack(pack.encoder, pack.doc_id, json.dumps(chunking, sort_keys=True), pack.keys, pack.vectors))
    assert stale_packs(articles, root, tmp_path / "packs", chunking) == []
    edited = articles[0]
    edited.write_text(edited.read_text() + "\nOne more sentence about the fever.\n")
    assert stale_packs(articles, root, tmp_path / "packs", chunking) == [str(edited)]
    assert len(stale_packs(articles, root, tmp_path / "packs", {**chunking, "target_words": 999})) == len(articles)
    (pack_path(tmp_path / "packs", articles[1], root)).unlink()
    assert str(articles[1]) in stale_packs(articles, root, tmp_path / "packs", chunking)
    # `articles check` says so as a warning (the answers stay the same; only the first build is slower).
    reports = with_pack_findings(check_articles([root]), root, tmp_path / "packs", chunking)
    warned = {r.path for r in reports if any(f.check == "vectors" for f in r.findings)}
    assert warned == {str(edited), str(articles[1])}
    assert all(f.level == "warning" for r in reports for f in r.findings if f.check == "vectors")


def test_the_bundled_articles_ship_fresh_vectors():
    """Editing an article without `make vectors` would make every new user's first build embed it again."""
    articles = sorted(BUNDLED.glob("*.md"))
    stale = stale_packs(articles, BUNDLED, PACKS_DIR, chunking_params(Settings()))
    assert stale == [], f"run 'make vectors' and commit knowledge/vectors; stale: {stale}"
    assert sorted(p.stem for p in PACKS_DIR.glob("*.npz")) == sorted(p.name for p in articles)


# ---------------------------------------------------------------- with the real model


@pytest.mark.slow
def test_a_build_from_shipped_vectors_embeds_nothing_and_matches_a_build_without(tmp_path, monkeypatch):
    from knowledge.build import build_index
    from knowledge.index import KnowledgeIndex
    from knowledge.onnx_embedder import OnnxEmbedder

    root = tmp_path / "articles"
    root.mkdir()
    for name in ("car-t-treatment-journey.md", "caregivers-guide.md"):
        (root / name).write_text((BUNDLED / name).read_text())
    base = Settings().updated(embedding_cache_mb=0)
    build_index([root], base.updated(index_dir=tmp_path / "plain", shipped_vectors=False), progress=False)

    calls: list[int] = []
    original = OnnxEmbedder.encode
    monkeypatch.setattr(OnnxEmbedder, "encode", lambda self, texts, batch_size=64: calls.append(len(texts)) or
                        original(self, texts, batch_size=batch_size))
    build_index([root], base.updated(index_dir=tmp_path / "shipped"), progress=False)
    assert calls == []  # every chunk, sentence and question key came from the packs

    plain, shipped = KnowledgeIndex.load(tmp_path / "plain"), KnowledgeIndex.load(tmp_path / "shipped")
    chunks = plain.all_chunks()
    assert [c.text for c in chunks] == [c.text for c in shipped.all_chunks()]
    ids = [c.chunk_id for c in chunks]
    assert np.abs(plain.chunk_vectors(ids) - shipped.chunk_vectors(ids)).max() <= 1e-5
    assert max(np.abs(plain.sentence_vectors(c) - shipped.sentence_vectors(c)).max() for c in chunks) <= 1e-5
    assert np.abs(plain.question_key_vectors().vectors - shipped.question_key_vectors().vectors).max() <= 1e-5


@pytest.mark.slow
def test_index_pack_writes_one_pack_per_article_and_drops_packs_of_removed_articles(tmp_path):
    root = write_articles(tmp_path / "articles")
    out = tmp_path / "packs"
    (out).mkdir()
    write_pack(out / "gone.npz", a_pack(["an article that was deleted"]))
    env = {**os.environ, "PATIENT_QA_EMBEDDING_CACHE_MB": "0"}  # the user's vector cache is left alone
    run = subprocess.run([sys.executable, "-m", "ui.cli", "index", "pack", "--articles", str(root), "--out", str(out),
                          "--json"], capture_output=True, text=True, cwd=REPO, timeout=600, env=env)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    articles = sorted(root.iterdir())  # Markdown and the other formats a build reads
    assert report["written"] == len(articles) and report["removed"] == [str(out / "gone.npz")]
    assert sorted(p.stem for p in out.glob("*.npz")) == sorted(p.name for p in articles)
    assert stale_packs(articles, root, out, chunking_params(Settings())) == []

    missing = subprocess.run([sys.executable, "-m", "ui.cli", "index", "pack", "--articles", str(tmp_path / "nope")],
                             capture_output=True, text=True, cwd=REPO, timeout=120)
    assert missing.returncode == 2 and "no such articles folder" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_packs_are_package_data():
    assert "vectors/*.npz" in (REPO / "pyproject.toml").read_text()
    assert PACKS_DIR == Path(REPO / "knowledge" / "vectors")
