"""The build's vector cache: a rebuild encodes only texts it has not seen, and a hit is the very vector stored."""

from __future__ import annotations

import sqlite3

import numpy as np
from kb_fixtures import FakeEmbedder

from knowledge.embedding_cache import ROW_OVERHEAD_BYTES, CachedEmbedder, EmbeddingCache


def cached(path, encoder="onnx:abc", max_mb=10.0) -> tuple[CachedEmbedder, FakeEmbedder]:
    inner = FakeEmbedder()
    return CachedEmbedder(inner, EmbeddingCache(path, encoder, inner.dimension, max_mb)), inner


def test_second_build_encodes_only_new_texts_and_gets_the_same_vectors(tmp_path):
    first, inner = cached(tmp_path / "e.sqlite")
    texts = ["fever after the infusion", "who drives me home", "fever after the infusion"]
    before = first.encode(texts)
    assert inner.encoded == ["fever after the infusion", "who drives me home"]  # a repeated text once
    assert np.array_equal(before[0], before[2])

    again, inner2 = cached(tmp_path / "e.sqlite")  # a later build: a new process, the same file
    after = again.encode(["who drives me home", "a new sentence", "fever after the infusion"])
    assert inner2.encoded == ["a new sentence"]
    assert np.array_equal(after[0], before[1]) and np.array_equal(after[2], before[0])
    assert (again.hits, again.misses) == (2, 1)
    assert after.dtype == np.float32 and after.flags["C_CONTIGUOUS"]


def test_another_encoder_never_reads_these_vectors(tmp_path):
    first, _ = cached(tmp_path / "e.sqlite", encoder="onnx:export-1")
    first.encode(["fever after the infusion"])
    other, inner = cached(tmp_path / "e.sqlite", encoder="onnx:export-2")
    other.encode(["fever after the infusion"])
    assert inner.encoded == ["fever after the infusion"]


def test_the_file_stays_under_its_cap_dropping_the_least_recently_used(tmp_path):
    path = tmp_path / "e.sqlite"
    cap = 10 * (64 * 4 + ROW_OVERHEAD_BYTES) / 1e6  # ten 64-dimension rows
    embedder, _ = cached(path, max_mb=cap)
    embedder.encode([f"old text {i}" for i in range(10)])
    embedder.encode(["old text 0"])  # used again: kept over the other old ones
    embedder.encode([f"new text {i}" for i in range(5)])
    db = sqlite3.connect(path)
    assert db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] == 10
    later, inner = cached(path, max_mb=cap)
    later.encode(["old text 0", *(f"new text {i}" for i in range(5))])
    assert inner.encoded == []  # the recently used rows are the ones kept
    later.encode([f"old text {i}" for i in range(1, 10)])
    assert len(inner.encoded) == 5  # five of the nine left unused were dropped


def test_an_unwritable_cache_still_embeds(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    embedder, inner = cached(blocker / "sub" / "e.sqlite")
    vectors = embedder.encode(["fever", "chills"])
    assert vectors.shape == (2, 64) and inner.encoded == ["fever", "chills"]


def test_zero_megabytes_stores_nothing(tmp_path):
    embedder, _ = cached(tmp_path / "e.sqlite", max_mb=0)
    embedder.encode(["fever"])
    again, inner = cached(tmp_path / "e.sqlite", max_mb=0)
    again.encode(["fever"])
    assert inner.encoded == ["fever"]


def test_no_texts_gives_an_empty_matrix(tmp_path):
    embedder, _ = cached(tmp_path / "e.sqlite")
    assert embedder.encode([]).shape == (0, 64)
