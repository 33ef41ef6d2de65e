"""Fixtures for the web-chat tests; the helpers they use live in ui_fixtures.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from ui_fixtures import BROWSER_ARTICLES, HOSTILE_ARTICLE, FakeAssistant

from knowledge.settings import DEFAULT_ARTICLES, Settings

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture
def fake_assistant() -> FakeAssistant:
    return FakeAssistant()


@pytest.fixture(scope="session")
def small_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real index of a few bundled articles plus one hostile article (model load + a few seconds)."""
    from knowledge.build import build_index

    root = tmp_path_factory.mktemp("ui-kb")
    hostile = root / "articles" / "tiredness-hostile.md"
    hostile.parent.mkdir()
    hostile.write_text(HOSTILE_ARTICLE, encoding="utf-8")
    index_dir = root / "index"
    paths = [DEFAULT_ARTICLES / name for name in BROWSER_ARTICLES] + [hostile]
    build_index(paths, Settings.from_env(index_dir=index_dir), progress=False)
    return index_dir
