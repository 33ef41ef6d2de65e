"""`patient-qa chat`: flags, fast --help, the missing-index message, and keeping the default index fresh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from knowledge.settings import Settings
from ui import chat_command
from ui.cli import build_parser, main

REPO = Path(__file__).resolve().parents[2]


def test_chat_flags_and_defaults():
    args = build_parser().parse_args(["chat"])
    assert (args.host, args.port, args.index, args.auth, args.no_feedback) == (None, None, None, None, False)
    args = build_parser().parse_args(["chat", "--host", "0.0.0.0", "--port", "8000", "--index", "kb",
                                      "--auth", "nurse:pa:ss", "--no-feedback"])
    assert (args.host, args.port, args.index, args.no_feedback) == ("0.0.0.0", 8000, "kb", True)
    assert chat_command.parse_auth(args.auth) == ("nurse", "pa:ss")
    assert chat_command.DEFAULT_HOST == "127.0.0.1" and Settings().chat.port == 7860


@pytest.mark.parametrize("bad", ["nurse", ":secret", "nurse:"])
def test_bad_auth_is_refused_with_a_hint(bad, capsys):
    assert main(["chat", "--auth", bad]) == 2
    assert "USER:PASS" in capsys.readouterr().err


def test_help_does_not_import_gradio_or_the_model():
    code = ("import sys; from ui.cli import build_parser; build_parser(); "
            "heavy = [m for m in ('gradio', 'sentence_transformers', 'torch') if m in sys.modules]; print(heavy)")
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert time.perf_counter() - started < 5


def test_missing_index_says_how_to_build_it(tmp_path, capsys):
    assert main(["chat", "--index", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "patient-qa index build" in err and str(tmp_path / "nowhere") in err


def _fake_index(index_dir: Path, files: list[Path], version: int | None = None) -> None:
    from knowledge.index import FORMAT_VERSION

    index_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"format_version": version or FORMAT_VERSION, "files": {str(f): "hash" for f in files}}
    (index_dir / "manifest.json").write_text(json.dumps(manifest))


def test_default_index_staleness(tmp_path):
    articles = tmp_path / "articles"
    articles.mkdir()
    first = articles / "a.md"
    first.write_text("# A\n\nText about CAR-T.")
    index_dir = tmp_path / "index"
    assert chat_command.default_index_is_stale(index_dir, articles) == "no index yet"
    _fake_index(index_dir, [first])
    past = time.time() - 100
    os.utime(first, (past, past))
    assert chat_command.default_index_is_stale(index_dir, articles) is None
    os.utime(first, None)  # edited after the build
    assert "changed" in chat_command.default_index_is_stale(index_dir, articles)
    os.utime(first, (past, past))
    second = articles / "b.md"
    second.write_text("# B\n\nMore text.")
    os.utime(second, (past, past))
    assert "added or removed" in chat_command.default_index_is_stale(index_dir, articles)
    _fake_index(index_dir, [first, second], version=1)  # built by an older patient-qa
    assert "another version" in chat_command.default_index_is_stale(index_dir, articles)


@pytest.mark.slow
def test_default_index_is_built_then_updated_only_when_articles_change(tmp_path, capsys):
    articles = tmp_path / "articles"
    articles.mkdir()
    source = Path(Settings().articles)
    for name in ("what-is-car-t.md", "cytokine-release-syndrome.md"):
        (articles / name).write_text((source / name).read_text(encoding="utf-8"), encoding="utf-8")
    settings = Settings.from_env(index_dir=tmp_path / "index", articles=articles)

    assert chat_command.ensure_default_index(settings) == 0
    out = capsys.readouterr().out
    assert "no index yet" in out and "Indexed 2 articles" in out
    assert chat_command.ensure_default_index(settings) == 0
    assert capsys.readouterr().out == ""  # up to date: nothing to do

    time.sleep(0.01)
    changed = articles / "what-is-car-t.md"
    changed.write_text(changed.read_text(encoding="utf-8") + "\nOne more sentence about CAR-T cells.\n",
                       encoding="utf-8")
    os.utime(changed, (time.time() + 5, time.time() + 5))
    assert chat_command.ensure_default_index(settings) == 0
    out = capsys.readouterr().out
    assert "articles changed" in out and "updated 1" in out
