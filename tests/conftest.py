"""Fixtures every test package shares."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_patient_qa_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests decide their own settings; a developer's PATIENT_QA_* variables must not leak in."""
    for name in list(os.environ):
        if name.startswith("PATIENT_QA_"):
            monkeypatch.delenv(name)


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
