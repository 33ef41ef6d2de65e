"""`patient-qa ask` as a person or a script uses it: JSON contract, batch mode, bad input, no index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATIENT_QA_")}
    return subprocess.run([sys.executable, "-m", "ui.cli", *args], capture_output=True, text=True, input=stdin,
                          env=env, timeout=300, cwd=Path(__file__).resolve().parents[2])


def test_ask_json_prints_the_answer_contract(bundled_index: Path) -> None:
    result = run_cli("ask", "what is the wallet card for?", "--index", str(bundled_index), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["triage"] == "general" and data["quotes"]
    assert data["disclaimer"] in data["markdown"]
    assert data["quotes"][0]["source_path"].endswith(".md")


def test_batch_mode_answers_each_line_with_its_id(bundled_index: Path, tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        '{"id": "a", "question": "what is ICANS?"}\n'
        "this line is broken\n"
        '{"id": "b", "question": "and how is it treated?", "history": ["what is ICANS?"]}\n'
        '{"id": "c", "question": "my wife had car t 4 days ago and now she is confused"}\n',
        encoding="utf-8",
    )
    result = run_cli("ask", "--questions", str(questions), "--index", str(bundled_index), "--json")
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["id"] for line in lines] == ["a", "b", "c"]
    assert lines[2]["triage"] == "emergency"
    assert "line 2 is not JSON" in result.stderr and result.returncode == 1


def test_empty_question_is_a_friendly_prompt_not_an_error() -> None:
    result = run_cli("ask", "")
    assert result.returncode == 0 and "Ask me anything" in result.stdout


def test_missing_index_says_how_to_build_it(tmp_path: Path) -> None:
    result = run_cli("ask", "what is CRS?", "--index", str(tmp_path / "none"))
    assert result.returncode == 1
    assert "patient-qa index build" in result.stderr and "Traceback" not in result.stderr


def test_html_question_is_printed_as_text(bundled_index: Path) -> None:
    result = run_cli("ask", "<img src=x onerror=alert(1)> what is CRS", "--index", str(bundled_index))
    assert result.returncode == 0 and "<img" not in result.stdout
