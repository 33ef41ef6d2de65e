"""First use: `patient-qa ask` on a fresh machine builds the default index itself instead of asking for a build."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from kb_fixtures import FakeEmbedder

from knowledge.index import KnowledgeIndex
from knowledge.settings import Settings
from ui import cli

SOME_ARTICLES = ("what-is-car-t.md", "cytokine-release-syndrome.md")


@pytest.fixture
def fresh_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user cache (so no default index yet) and a small copy of the bundled articles; returns the cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    articles = tmp_path / "articles"
    articles.mkdir()
    for name in SOME_ARTICLES:
        shutil.copy(Settings().articles / name, articles / name)
    monkeypatch.setenv("PATIENT_QA_ARTICLES", str(articles))
    assert not Settings.from_env().index_dir.exists() and str(Settings.from_env().index_dir).startswith(str(cache))
    return cache


class _IndexReadingAssistant:
    """Stands in for the Assistant: loads the default index as the real one does, answers with its titles."""

    def __init__(self) -> None:
        self.index = KnowledgeIndex.load(Settings.from_env().index_dir)

    def ask(self, question: str, history: object = (), id: str | None = None):
        from qa.assistant import empty_answer

        titles = sorted(d["title"] for d in self.index.manifest["documents"].values())
        return empty_answer(question + " | " + "; ".join(titles), id)


def test_ask_on_a_fresh_machine_builds_the_default_index_then_answers(fresh_machine: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("knowledge.embedding.shared_embedder", lambda *a: FakeEmbedder())
    monkeypatch.setattr(cli, "_load_assistant", lambda args: _IndexReadingAssistant())

    code = cli.main(["ask", "What is CAR-T?", "--json"])

    out, err = capsys.readouterr()
    answer = json.loads(out)  # the progress messages go to stderr: stdout stays one JSON answer
    assert code == 0
    assert "Cytokine release syndrome" in answer["question"]
    assert "no index yet" in err and "Indexed 2 articles" in err
    assert "run 'patient-qa index build'" not in err
    assert (Settings.from_env().index_dir / "manifest.json").exists()

    code = cli.main(["ask", "What is CAR-T?", "--json"])  # second time: nothing to build
    out, err = capsys.readouterr()
    assert code == 0 and "Indexed" not in err


def test_ask_with_an_explicit_missing_index_keeps_the_clear_message(tmp_path: Path, fresh_machine: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["ask", "What is CAR-T?", "--index", str(tmp_path / "nowhere")])

    err = capsys.readouterr().err
    assert code == 1 and "no index at" in err and "patient-qa index build" in err
    assert not (tmp_path / "nowhere").exists()
    assert not fresh_machine.exists()  # nothing was built in the default place either


def test_the_chat_and_ask_share_one_first_use_builder() -> None:
    from ui import chat_command, default_index

    assert chat_command.ensure_default_index is default_index.ensure_default_index
    assert chat_command.default_index_is_stale is default_index.default_index_is_stale


@pytest.mark.slow
def test_ask_on_a_fresh_machine_answers_from_the_articles_with_the_real_model(fresh_machine: Path,
                                                                              capsys: pytest.CaptureFixture[str]
                                                                              ) -> None:
    code = cli.main(["ask", "What is cytokine release syndrome?", "--json"])

    out, err = capsys.readouterr()
    answer = json.loads(out)
    assert code == 0 and "Indexed 2 articles" in err
    assert answer["quotes"] and not answer["abstained"]
    assert any("ytokine" in q["text"] for q in answer["quotes"])
    assert os.listdir(fresh_machine)


def test_a_default_index_built_from_other_documents_is_never_replaced(tmp_path: Path, fresh_machine: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from kb_fixtures import write_articles

    monkeypatch.setattr("knowledge.embedding.shared_embedder", lambda *a: FakeEmbedder())
    monkeypatch.setattr(cli, "_load_assistant", lambda args: _IndexReadingAssistant())
    mine = write_articles(tmp_path / "mine", {"notes.md": "# My notes\n\nMy own notes about fever after CAR-T."})
    assert cli.main(["index", "build", str(mine)]) == 0  # into the default index, on purpose

    code = cli.main(["ask", "What is CAR-T?", "--json"])

    out, err = capsys.readouterr()
    assert code == 0 and "Indexed 2 articles" not in err
    assert json.loads(out.splitlines()[-1])["question"].endswith("| My notes")
