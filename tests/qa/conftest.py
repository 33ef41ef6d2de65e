"""Fixtures for the answer-pipeline tests: one index of the bundled articles per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.settings import DEFAULT_ARTICLES, Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def bundled_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled articles, indexed once (about 30 s on 2 cores)."""
    from knowledge.index import build_index

    index_dir = tmp_path_factory.mktemp("qa") / "index"
    build_index([DEFAULT_ARTICLES], Settings.from_env(index_dir=index_dir), progress=False)
    return index_dir


@pytest.fixture(scope="session")
def assistant(bundled_index: Path):
    """One Assistant (one model in memory) shared by the slow tests."""
    from qa.assistant import Assistant

    return Assistant(Settings.from_env(index_dir=bundled_index))
