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
def pg_server(tmp_path_factory: pytest.TempPathFactory):
    """One PostgreSQL + pgvector server for the whole session; tests make their own databases on it."""
    from pg_server import start_server

    server = start_server(tmp_path_factory.mktemp("pg"))
    yield server.get_uri()
    server.cleanup()


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """A fresh, empty database on the session's server."""
    from pg_server import fresh_database

    return fresh_database(pg_server)
