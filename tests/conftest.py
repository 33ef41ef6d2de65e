"""Fixtures every test package shares."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _no_patient_qa_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests decide their own settings; a developer's PATIENT_QA_* variables must not leak in."""
    for name in list(os.environ):
        if name.startswith("PATIENT_QA_"):
            monkeypatch.delenv(name)


_VECTOR_FOLDER = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """Builds in tests never read or fill the user's vector cache (`knowledge.embedding_cache`)."""
    import tempfile

    import knowledge.embedding_cache as cache

    folder = Path(tempfile.mkdtemp(prefix="patient-qa-test-vectors-"))
    config.stash[_VECTOR_FOLDER] = folder
    cache.default_cache_file = lambda: folder / cache.CACHE_FILE


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    folder = config.stash.get(_VECTOR_FOLDER, None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _own_vector_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each test starts with an empty vector cache: whether a text is embedded never depends on test order."""
    import knowledge.embedding_cache as cache

    monkeypatch.setattr(cache, "default_cache_file", lambda: tmp_path / "vector-cache" / cache.CACHE_FILE)


@pytest.fixture(scope="session")
def pg_server():
    """One PostgreSQL + pgvector server for the whole session; tests make their own databases on it.

    Its folder is not under pytest's temporary root: as root, PostgreSQL runs as another user, who must be able to
    enter every parent folder, and pytest keeps its root private (any pytest run resets it to 0700).
    """
    import shutil
    import tempfile

    from pg_server import start_server

    folder = tempfile.mkdtemp(prefix="patient-qa-test-pg-")
    server = start_server(folder)
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """A fresh, empty database on the session's server."""
    from pg_server import fresh_database

    return fresh_database(pg_server)
