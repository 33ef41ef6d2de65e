"""Fixtures for the answer-pipeline tests: one index of the bundled articles per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from knowledge.settings import DEFAULT_ARTICLES, Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def bundled_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled articles, indexed once (about 30 s on 2 cores)."""
    from knowledge.build import build_index

    index_dir = tmp_path_factory.mktemp("qa") / "index"
    build_index([DEFAULT_ARTICLES], Settings.from_env(index_dir=index_dir), progress=False)
    return index_dir


@pytest.fixture(scope="session")
def assistant(bundled_index: Path):
    """One Assistant (one model in memory) shared by the slow tests."""
    from qa.assistant import Assistant

    return Assistant(Settings.from_env(index_dir=bundled_index))


MARKUP_ARTICLE = """---
title: "Fever <script>alert(1)</script> guide"
---
# Fever guide

## When to call about <b>fever</b>

Keep a thermometer at home and write down every reading <img src=x onerror=alert(1)> twice a day.
Call your care team if your temperature is 38 C or higher after CAR-T.
A fever after CAR-T can be the first sign of cytokine release syndrome & needs a check the same day.
"""


@pytest.fixture(scope="session")
def markup_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One article with HTML in its title, a heading and its text, indexed with the real model."""
    from knowledge.build import build_index

    folder = tmp_path_factory.mktemp("markup")
    (folder / "articles").mkdir()
    (folder / "articles" / "fever-guide.md").write_text(MARKUP_ARTICLE, encoding="utf-8")
    build_index([folder / "articles"], Settings.from_env(index_dir=folder / "index"), progress=False)
    return folder / "index"
