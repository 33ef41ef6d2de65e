"""Shared fixtures for the knowledge tests; the helpers they use live in kb_fixtures.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from kb_fixtures import FakeEmbedder, write_articles

from knowledge.settings import DEFAULT_MODEL


@pytest.fixture
def articles_dir(tmp_path: Path) -> Path:
    """A fresh copy of the small test articles."""
    return write_articles(tmp_path / "articles")


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    """No model: builds in milliseconds, for tests about files, reports and the store."""
    return FakeEmbedder()


@pytest.fixture(scope="session")
def embedder():
    """The real bundled model, loaded once per test session (the same object `build_index` uses)."""
    from knowledge.embedding import shared_embedder

    return shared_embedder(DEFAULT_MODEL, 1)
