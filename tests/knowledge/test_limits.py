"""Limits (file size, passages per document, main text of HTML) and the build lock; fake embedder, no model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kb_fixtures import REPO, FakeEmbedder, fake_settings, write_articles

from knowledge.build import build_index
from knowledge.errors import PatientQAError
from knowledge.index import BuildLockedError, KnowledgeIndex
from knowledge.loaders import LoadError, load_html
from knowledge.settings import Settings, SettingsError
from ui import cli

GOOD = {"good.md": "# Good\n\nFever is common after CAR-T. Call your team at once if it reaches 38 degrees."}

MENU_PAGE = """<html><head><title>Menu</title></head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li><li><a href="/car-t">CAR-T therapy</a></li>
<li><a href="/side-effects">Side effects</a></li><li><a href="/contact">Contact</a></li></ul></nav>
</body></html>"""

SHORT_REAL_PAGE = """<html><head><title>Fever</title></head><body><main>
<h1>Fever after CAR-T</h1>
<p>Fever is often the first sign of cytokine release syndrome. Call your care team at once if your temperature
reaches 38 degrees, even at night.</p>
<p>Take your temperature twice a day for the first four weeks after the infusion and write it down. Bring the
list to every clinic visit so the team can see how it changed.</p>
</main></body></html>"""


def _skips(report) -> dict[str, str]:
    return {Path(s.path).name: s.reason for s in report.skipped}


def _titles(index_dir: Path) -> list[str]:
    return sorted(d["title"] for d in KnowledgeIndex.load(index_dir).manifest["documents"].values())


# ---------------------------------------------------------------- limits are settings


def test_limits_are_settings_with_defaults_help_and_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from knowledge.settings import SPECS

    defaults = Settings().limits
    assert defaults.max_file_mb == 5.0
    assert defaults.max_chunks_per_document >= 500
    assert defaults.html_min_words >= 10
    assert defaults.build_lock_wait_seconds > 0
    for name in ("max_file_mb", "max_chunks_per_document", "html_min_words", "build_lock_wait_seconds"):
        assert SPECS[name].path == ("limits", name) and SPECS[name].help, name

    monkeypatch.setenv("PATIENT_QA_MAX_FILE_MB", "0.5")
    monkeypatch.setenv("PATIENT_QA_MAX_CHUNKS_PER_DOCUMENT", "7")
    settings = Settings.from_env()
    assert (settings.limits.max_file_mb, settings.limits.max_chunks_per_document) == (0.5, 7)

    monkeypatch.setenv("PATIENT_QA_MAX_CHUNKS_PER_DOCUMENT", "0")
    with pytest.raises(SettingsError, match="PATIENT_QA_MAX_CHUNKS_PER_DOCUMENT"):
        Settings.from_env()


# ---------------------------------------------------------------- file size


def test_a_file_over_the_size_limit_is_skipped_with_a_reason_before_it_is_read(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles", GOOD)
    big = folder / "huge.txt"
    big.write_text("Fever is common after CAR-T. " * 40_000, encoding="utf-8")  # about 1.2 MB
    settings = fake_settings(tmp_path / "index").updated(max_file_mb=1.0)
    embedder = FakeEmbedder()

    report = build_index([folder], settings, embedder=embedder, progress=False)

    reason = _skips(report)["huge.txt"]
    assert "1.2 MB" in reason and "limit" in reason and "PATIENT_QA_MAX_FILE_MB" in reason
    assert "\n" not in reason
    assert report.documents == 1 and _titles(tmp_path / "index") == ["Good"]
    assert not any("Fever is common after CAR-T. Fever" in t for t in embedder.encoded)  # never embedded


def test_the_size_limit_counts_the_text_of_a_pdf(tmp_path: Path) -> None:
    from kb_fixtures import make_pdf

    folder = write_articles(tmp_path / "articles", GOOD)
    page = ["Fever is common after CAR-T and your team will check your temperature often. " * 12]
    make_pdf(folder / "book.pdf", [page] * 30, unicode_font=False)  # a small file holding about 30 kB of text
    settings = fake_settings(tmp_path / "index").updated(max_file_mb=0.01)

    report = build_index([folder], settings, embedder=FakeEmbedder(), progress=False)

    assert "limit" in _skips(report)["book.pdf"]
    assert report.documents == 1


# ---------------------------------------------------------------- passages per document


def test_a_document_with_too_many_passages_is_skipped_and_the_rest_is_indexed(tmp_path: Path) -> None:
    long_text = "# Long guide\n\n" + "\n\n".join(
        f"Paragraph {i} says that fever after CAR-T needs a call to the team number {i}." for i in range(200)
    )
    folder = write_articles(tmp_path / "articles", {**GOOD, "long.md": long_text})
    settings = fake_settings(tmp_path / "index").updated(max_chunks_per_document=5, chunk_target_words=40)
    embedder = FakeEmbedder()

    report = build_index([folder], settings, embedder=embedder, progress=False)

    reason = _skips(report)["long.md"]
    assert "passages" in reason and "limit is 5" in reason and "PATIENT_QA_MAX_CHUNKS_PER_DOCUMENT" in reason
    assert _titles(tmp_path / "index") == ["Good"]
    assert not any("Paragraph 17" in t for t in embedder.encoded)  # skipped before the slow embedding step
    assert {Path(s["path"]).name for s in KnowledgeIndex.load(tmp_path / "index").info()["skipped"]} == {"long.md"}


# ---------------------------------------------------------------- HTML main text


def test_an_html_page_of_only_navigation_is_not_a_document_called_menu() -> None:
    with pytest.raises(LoadError, match="main text") as caught:
        load_html(MENU_PAGE, "menu.html", min_words=20)
    assert "words" in str(caught.value) and "\n" not in str(caught.value)


def test_a_short_real_html_page_is_still_indexed() -> None:
    doc = load_html(SHORT_REAL_PAGE, "fever.html", min_words=20)
    assert doc.title == "Fever after CAR-T"


def test_a_navigation_page_is_skipped_in_the_build_with_its_reason(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles", {**GOOD, "menu.html": MENU_PAGE, "fever.html": SHORT_REAL_PAGE})

    report = build_index([folder], fake_settings(tmp_path / "index"), embedder=FakeEmbedder(), progress=False)

    assert "main text" in _skips(report)["menu.html"]
    assert _titles(tmp_path / "index") == ["Fever after CAR-T", "Good"]


# ---------------------------------------------------------------- the command line shows the reasons


def test_cli_json_build_lists_the_skip_reasons(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("knowledge.embedding.shared_embedder", lambda *a: FakeEmbedder())
    monkeypatch.setenv("PATIENT_QA_MAX_FILE_MB", "0.001")
    folder = write_articles(tmp_path / "articles", {**GOOD, "menu.html": MENU_PAGE,
                                                    "big.txt": "Fever is common after CAR-T. " * 100})

    code = cli.main(["index", "build", str(folder), "--index", str(tmp_path / "index"), "--json"])

    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["documents"] == 1
    reasons = {Path(s["path"]).name: s["reason"] for s in data["skipped"]}
    assert "main text" in reasons["menu.html"] and "limit" in reasons["big.txt"]


# ---------------------------------------------------------------- the build lock


HOLD_LOCK = """
import sys, time
from pathlib import Path
from knowledge.index_folder import build_lock
with build_lock(Path(sys.argv[1]), wait_seconds=0):
    print("locked", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def start_other_build(tmp_path: Path):
    """Starts another process holding the build lock of tmp_path/index, as a running build does; returns its pid."""
    processes: list[subprocess.Popen] = []

    def start() -> int:
        process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path / "index")], cwd=REPO,
                                   stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        processes.append(process)
        assert process.stdout.readline().strip() == "locked"
        return process.pid

    yield start
    for process in processes:
        process.stdin.close()
        process.wait(timeout=10)


@pytest.fixture
def other_build(start_other_build) -> int:
    """The pid of another process holding the build lock of tmp_path/index."""
    return start_other_build()


def test_a_second_build_waits_a_bounded_time_then_names_the_running_one(tmp_path: Path, other_build: int) -> None:
    folder = write_articles(tmp_path / "articles", GOOD)
    settings = fake_settings(tmp_path / "index").updated(build_lock_wait_seconds=0.3)

    started = time.monotonic()
    with pytest.raises(BuildLockedError, match=rf"another build is running \(pid {other_build}\)"):
        build_index([folder], settings, embedder=FakeEmbedder(), progress=False)

    assert 0.3 <= time.monotonic() - started < 5
    assert issubclass(BuildLockedError, PatientQAError)
    assert not (tmp_path / "index").exists()


def test_cli_second_build_is_one_line(tmp_path: Path, other_build: int, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("knowledge.embedding.shared_embedder", lambda *a: FakeEmbedder())
    monkeypatch.setenv("PATIENT_QA_BUILD_LOCK_WAIT_SECONDS", "0.1")
    folder = write_articles(tmp_path / "articles", GOOD)

    code = cli.main(["index", "build", str(folder), "--index", str(tmp_path / "index")])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and f"another build is running (pid {other_build})" in err[0]


def test_a_build_waits_for_a_lock_that_is_released_in_time(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles", GOOD)
    settings = fake_settings(tmp_path / "index").updated(build_lock_wait_seconds=10)
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(tmp_path / "index")], cwd=REPO,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    process.stdin.close()  # the other build finishes now

    report = build_index([folder], settings, embedder=FakeEmbedder(), progress=False)

    process.wait(timeout=10)
    assert report.documents == 1


def _index_mid_swap(tmp_path: Path) -> None:
    """An index caught between the two renames of a swap: only the retired copy exists."""
    folder = write_articles(tmp_path / "articles", GOOD)
    build_index([folder], fake_settings(tmp_path / "index"), embedder=FakeEmbedder(), progress=False)
    (tmp_path / "index").rename(tmp_path / f".index.old-{os.getpid()}")


def test_a_reader_never_restores_a_swap_that_a_running_build_is_doing(tmp_path: Path, start_other_build,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    _index_mid_swap(tmp_path)
    other_build = start_other_build()

    code = cli.main(["index", "info", "--index", str(tmp_path / "index")])

    err = capsys.readouterr().err
    assert code == 1 and f"pid {other_build}" in err and "try again" in err
    assert not (tmp_path / "index").exists()  # left for the build to finish: no "Directory not empty" race
    assert (tmp_path / f".index.old-{os.getpid()}").exists()


def test_a_reader_restores_the_swap_of_a_build_that_died(tmp_path: Path) -> None:
    _index_mid_swap(tmp_path)  # no process holds the lock: the build that did this is gone

    assert _titles(tmp_path / "index") == ["Good"]


def test_leftover_build_folders_are_removed_by_the_next_build(tmp_path: Path) -> None:
    folder = write_articles(tmp_path / "articles", GOOD)
    settings = fake_settings(tmp_path / "index")
    build_index([folder], settings, embedder=FakeEmbedder(), progress=False)
    killed = tmp_path / ".index.building-k1ll3d"  # what a build killed while writing leaves behind
    killed.mkdir()
    (killed / "store.sqlite").write_bytes(b"half written")
    retired = tmp_path / ".index.old-424242"  # killed after the swap, before deleting the old copy
    retired.mkdir()
    (retired / "manifest.json").write_text("{}", encoding="utf-8")
    other = tmp_path / ".other.building-keep"  # another index's build folder is not ours to remove
    other.mkdir()

    build_index([folder], settings, embedder=FakeEmbedder(), progress=False)

    assert not killed.exists() and not retired.exists() and other.exists()
    assert _titles(tmp_path / "index") == ["Good"]


def test_build_folders_of_a_running_build_are_not_removed_by_a_reader(tmp_path: Path, other_build: int) -> None:
    working = tmp_path / ".index.building-running"
    working.mkdir()

    with pytest.raises(PatientQAError):
        KnowledgeIndex.load(tmp_path / "index")

    assert working.exists()
