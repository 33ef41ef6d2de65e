"""`patient-qa ask` as a person or a script uses it: JSON contract, batch mode, bad input, no index."""

from __future__ import annotations

import json
import os
import shutil
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


def test_html_in_an_article_is_printed_as_text(markup_index: Path) -> None:
    result = run_cli("ask", "how often should I write down my thermometer readings?", "--index", str(markup_index))
    assert result.returncode == 0, result.stderr
    assert "&lt;img src=x onerror=alert(1)&gt;" in result.stdout and "Fever &lt;script&gt;" in result.stdout
    assert "<img" not in result.stdout and "<script" not in result.stdout


def test_html_question_in_a_batch_keeps_its_markup_in_the_json(markup_index: Path, tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "<b>1</b>", "question": "<i>how often</i> should I write down my thermometer readings at home?"}\n',
                         encoding="utf-8")
    result = run_cli("ask", "--questions", str(questions), "--index", str(markup_index), "--json")
    data = json.loads(result.stdout)
    assert (data["id"], data["question"]) == ("<b>1</b>", "<i>how often</i> should I write down my thermometer readings at home?")
    assert data["quotes"] and "<img src=x onerror=alert(1)>" in data["quotes"][0]["text"]
    assert "<img" not in data["markdown"]


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> None:
    """Exit 1 and exactly one 'patient-qa: ...' line on stderr naming the problem; no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1 and lines[0].startswith("patient-qa: "), result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], result.stderr


def copy_index_with_model(bundled_index: Path, target: Path, model: str) -> Path:
    """The bundled index with its manifest naming another model, as if that model had been swapped in."""
    shutil.copytree(bundled_index, target)
    manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
    manifest["model"] = model
    (target / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-layer sentence-transformers model making 32-dimensional vectors (random weights, MiniLM's vocabulary)."""
    from sentence_transformers import SentenceTransformer, models
    from transformers import AutoTokenizer, BertConfig, BertModel

    from knowledge.embedding import resolve_model_path

    root = tmp_path_factory.mktemp("tiny-model")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("default"))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64)
    BertModel(config).save_pretrained(root / "bert")
    tokenizer.save_pretrained(root / "bert")
    SentenceTransformer(modules=[models.Transformer(str(root / "bert")), models.Pooling(32)],
                        device="cpu").save(str(root / "st"))
    return root / "st"


def test_batch_lone_surrogate_and_bad_bytes_cost_one_line_each(bundled_index: Path, tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_bytes(
        b'{"id": "a\\udcff", "question": "what is CRS? \\udcff"}\n'
        b'{"id": "latin", "question": "fi\xe8vre apr\xe8s CAR-T"}\n'
        b'{"id": "c", "question": "what is ICANS?"}\n'
    )
    result = run_cli("ask", "--questions", str(questions), "--index", str(bundled_index), "--json")
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["id"] for a in answers] == ["a\ufffd", "c"] and answers[0]["quotes"] and answers[1]["quotes"]
    assert "line 2 is not UTF-8" in result.stderr and "Traceback" not in result.stderr
    assert result.returncode == 1


def test_batch_text_output_never_prints_terminal_escapes(bundled_index: Path, tmp_path: Path) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "x\u001b]0;pwned\u0007", "question": "\u001b[2Jwhat is CRS?"}) + "\n",
                         encoding="utf-8")
    result = run_cli("ask", "--questions", str(questions), "--index", str(bundled_index))
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "## x\\x1b]0;pwned\\x07: \\x1b[2Jwhat is CRS?" in result.stdout


def test_undecodable_argv_bytes_get_an_answer(bundled_index: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PATIENT_QA_")}
    result = subprocess.run([sys.executable, "-m", "ui.cli", "ask", b"what is CRS \xff\xfe", "--index",
                             str(bundled_index), "--json"], capture_output=True, env=env, timeout=300,
                            cwd=Path(__file__).resolve().parents[2])
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    data = json.loads(result.stdout)
    assert data["question"] == "what is CRS \ufffd\ufffd" and data["quotes"]


def test_model_that_cannot_load_fails_at_start_not_mid_batch(bundled_index: Path, tmp_path: Path) -> None:
    index = copy_index_with_model(bundled_index, tmp_path / "index", str(tmp_path / "no-such-model"))
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"id": "a", "question": "what is CRS?"}\n{"id": "b", "question": "what is ICANS?"}\n',
                         encoding="utf-8")
    result = run_cli("ask", "--questions", str(questions), "--index", str(index), "--json")
    assert result.stdout == ""
    assert_one_line_error(result, "cannot load embedding model", "--model")


def test_model_of_another_dimension_is_a_mismatch_message(bundled_index: Path, tmp_path: Path,
                                                          tiny_model: Path) -> None:
    index = copy_index_with_model(bundled_index, tmp_path / "index", str(tiny_model))
    result = run_cli("ask", "what is CRS?", "--index", str(index))
    assert_one_line_error(result, "384-dimensional", "makes 32", "patient-qa index build")
    assert "AssertionError" not in result.stderr
