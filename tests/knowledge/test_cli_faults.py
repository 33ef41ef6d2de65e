"""Command-line faults end in one line that says what to fix, never a traceback (unless --debug); no model needed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from kb_fixtures import FakeEmbedder, fake_settings

from knowledge.build import build_index
from knowledge.errors import PatientQAError
from knowledge.index import IndexMismatchError, KnowledgeIndex
from knowledge.settings import Settings, SettingsError
from ui import cli


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`patient-qa ARGV` in this process: exit code, stdout and stderr as a user sees them."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    """The user sees a non-zero exit and exactly one 'patient-qa: ...' line naming the problem."""
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("patient-qa: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], err


@pytest.fixture
def small_index(tmp_path: Path, articles_dir: Path) -> Path:
    """A real index of the small articles, built with the fake embedder in milliseconds."""
    index_dir = tmp_path / "index"
    build_index([articles_dir], fake_settings(index_dir), embedder=FakeEmbedder(), progress=False)
    return index_dir


def test_every_actionable_error_shares_one_base() -> None:
    from eval.beir import BeirFormatError
    from eval.gate import BaselineError
    from eval.gold import GoldFormatError
    from eval.triage_train import TrainingError
    from knowledge.embedding import ModelLoadError
    from knowledge.index import IndexError_
    from qa.triage_model import TriageModelError

    for error in (IndexError_, IndexMismatchError, ModelLoadError, GoldFormatError, BaselineError, TrainingError,
                  BeirFormatError, TriageModelError, SettingsError):
        assert issubclass(error, PatientQAError), error
    assert issubclass(GoldFormatError, ValueError)  # callers that catch ValueError keep working


def test_index_build_into_a_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("my notes", encoding="utf-8")
    code, _, err = run_main(capsys, "index", "build", str(tmp_path), "--index", str(target))
    assert_one_line_error(code, err, "is a file, not a folder")
    assert target.read_text(encoding="utf-8") == "my notes"


def test_index_build_under_a_file_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                              articles_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("knowledge.embedding.shared_embedder", lambda *a: FakeEmbedder())
    target = tmp_path / "notes.txt"
    target.write_text("my notes", encoding="utf-8")
    code, _, err = run_main(capsys, "index", "build", str(articles_dir), "--index", str(target / "index"),
                            "--model", FakeEmbedder.model_name)
    assert_one_line_error(code, err, "cannot write an index", "--index")


def test_manifest_that_is_a_list_is_one_line(capsys: pytest.CaptureFixture[str], small_index: Path) -> None:
    (small_index / "manifest.json").write_text("[1, 2, 3]", encoding="utf-8")
    code, _, err = run_main(capsys, "index", "info", "--index", str(small_index))
    assert_one_line_error(code, err, "not a JSON object", "patient-qa index build")


def test_manifest_that_is_a_list_does_not_stop_a_rebuild(small_index: Path, articles_dir: Path) -> None:
    (small_index / "manifest.json").write_text("[1, 2, 3]", encoding="utf-8")
    report = build_index([articles_dir], fake_settings(small_index), embedder=FakeEmbedder(), progress=False)
    assert report.documents > 0 and KnowledgeIndex.load(small_index).chunks


def test_emptied_chunks_table_is_one_line(capsys: pytest.CaptureFixture[str], small_index: Path) -> None:
    db = sqlite3.connect(small_index / "store.sqlite")
    db.execute("DELETE FROM chunks")
    db.commit()
    db.close()
    code, _, err = run_main(capsys, "index", "info", "--index", str(small_index))
    assert_one_line_error(code, err, "incomplete or damaged", "patient-qa index build")


def test_query_of_another_dimension_is_a_mismatch_not_a_faiss_assertion(small_index: Path) -> None:
    index = KnowledgeIndex.load(small_index)
    with pytest.raises(IndexMismatchError, match="64-dimensional.*makes 32.*patient-qa index build"):
        index.dense_search(np.ones(32, dtype=np.float32) / np.sqrt(32), 5)


@pytest.mark.parametrize(("variable", "value", "words"), [
    ("PATIENT_QA_BATCH_SIZE", "lots", "is not a whole number"),
    ("PATIENT_QA_ABSTAIN_THRESHOLD", "high", "is not a number"),
    ("PATIENT_QA_FEEDBACK", "maybe", "is not true or false"),
    ("PATIENT_QA_THREADS", "0", "threads must be at least 1"),
])
def test_bad_environment_value_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path, variable: str, value: str, words: str) -> None:
    monkeypatch.setenv(variable, value)
    code, _, err = run_main(capsys, "index", "info", "--index", str(tmp_path))
    assert_one_line_error(code, err, words)


def test_environment_values_take_their_field_types(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATIENT_QA_BATCH_SIZE", "8")
    monkeypatch.setenv("PATIENT_QA_ABSTAIN_THRESHOLD", "0.35")
    monkeypatch.setenv("PATIENT_QA_FEEDBACK", "off")
    settings = Settings.from_env()
    assert settings.batch_size == 8 and type(settings.batch_size) is int
    assert settings.abstain_threshold == 0.35 and type(settings.abstain_threshold) is float
    assert settings.feedback is False
    monkeypatch.setenv("PATIENT_QA_FEEDBACK", "Yes")
    assert Settings.from_env().feedback is True


def test_debug_shows_the_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATIENT_QA_BATCH_SIZE", "lots")
    with pytest.raises(SettingsError):
        cli.main(["index", "info", "--index", str(tmp_path), "--debug"])
    with pytest.raises(SettingsError):
        cli.main(["--debug", "index", "info", "--index", str(tmp_path)])


def test_an_unexpected_bug_is_one_line_with_the_debug_hint(capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(args: object) -> int:
        raise TypeError("can't concat str to bytes")

    monkeypatch.setattr(cli, "cmd_index_info", broken)
    code, _, err = run_main(capsys, "index", "info", "--index", str(tmp_path))
    assert_one_line_error(code, err, "TypeError", "--debug")


def test_empty_question_with_json_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_main(capsys, "ask", "", "--json")
    data = json.loads(out)
    assert code == 0 and data["question"] == "" and "Ask me anything" in data["markdown"]


class _StubAssistant:
    """Answers every question like the real one would an empty question, and fails on the word 'boom'."""

    def ask(self, question: str, history: object = (), id: str | None = None):
        from qa.assistant import empty_answer

        if "boom" in question:
            raise RuntimeError("the pipeline broke")
        question.encode("utf-8")  # the real pipeline cannot encode a lone surrogate either
        return empty_answer(question, id)


@pytest.fixture
def stub_assistant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_load_assistant", lambda args: _StubAssistant())


def test_batch_item_that_fails_does_not_lose_the_rest(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                      stub_assistant: None) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "a", "question": "boom"}\n{"id": "b", "question": "what is CRS?"}\n',
                         encoding="utf-8")
    code, out, err = run_main(capsys, "ask", "--questions", str(questions), "--json")
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["b"]
    assert code == 1 and "line 1 could not be answered" in err and "Traceback" not in err


def test_batch_lone_surrogate_and_non_utf8_lines(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                stub_assistant: None) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_bytes(
        b'{"id": "s\\udcff", "question": "fever \\udcff"}\n'
        b'{"id": "latin", "question": "fi\xe8vre"}\n'
        b'{"id": "c", "question": "what is CRS?"}\n'
    )
    code, out, err = run_main(capsys, "ask", "--questions", str(questions), "--json")
    answers = [json.loads(line) for line in out.splitlines()]
    assert [a["id"] for a in answers] == ["s\ufffd", "c"] and answers[0]["question"] == "fever \ufffd"
    assert code == 1 and "line 2 is not UTF-8" in err and "Traceback" not in err


def test_batch_text_output_shows_escape_sequences_escaped(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                          stub_assistant: None) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "x\u001b]0;owned\u0007", "question": "clear\u001b[2J me\u009b"}) + "\n",
                         encoding="utf-8")
    code, out, _ = run_main(capsys, "ask", "--questions", str(questions))
    assert code == 0 and "\x1b" not in out and "\x07" not in out and "\x9b" not in out
    assert "## x\\x1b]0;owned\\x07: clear\\x1b[2J me\\x9b" in out
