"""Stateless chat replicas: two `patient-qa chat` processes on one PostgreSQL store answer alike, and both answer
from an article that `index build --store` adds while they run, within 10 s and without a restart."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ui_fixtures import free_port

REPO = Path(__file__).resolve().parents[2]
ARTICLES = ("cytokine-release-syndrome.md", "staying-near-the-center-and-driving.md")
NEW_ARTICLE = """---
title: Saunas and hot baths after CAR-T
---

# Saunas and hot baths after CAR-T

## Heat after treatment

Stay out of saunas and steam rooms for the first three months after your CAR-T infusion, because heat can hide
a fever and strain your heart.
"""
NEW_QUESTION = "Can I go in a sauna after CAR-T?"

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*")]


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ui.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def _wait_for(url: str, process: subprocess.Popen, seconds: float = 180):
    """A gradio client once the chat answers, or the process's own output when it died."""
    from gradio_client import Client

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the chat exited: {process.communicate()[0][-2000:]}")
        try:
            return Client(url, verbose=False)
        except Exception:  # noqa: BLE001 - not listening yet
            time.sleep(1)
    raise AssertionError(f"the chat at {url} did not start in {seconds} s")


def _quotes(client, question: str) -> list[tuple[str, str]]:
    answer = client.predict(question=question, history=[], api_name="/ask")
    return [(q["article"], q["text"]) for q in answer["quotes"]]


def test_two_replicas_agree_and_both_see_a_new_article(pg_url: str, tmp_path: Path) -> None:
    from knowledge.settings import DEFAULT_ARTICLES

    articles = tmp_path / "articles"
    articles.mkdir()
    for name in ARTICLES:
        (articles / name).write_text((DEFAULT_ARTICLES / name).read_text(encoding="utf-8"), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", "PATIENT_QA_PG_POLL_SECONDS": "1",
           "PATIENT_QA_DATA_DIR": str(tmp_path / "data")}
    built = _cli("index", "build", "--store", pg_url, str(articles), env=env)
    assert built.returncode == 0, built.stderr

    replicas = []
    try:
        for _ in range(2):
            port = free_port()
            process = subprocess.Popen([sys.executable, "-m", "ui.cli", "chat", "--store", pg_url, "--port", str(port)],
                                       cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            replicas.append((process, f"http://127.0.0.1:{port}/"))
        clients = [_wait_for(url, process) for process, url in replicas]

        for question in ("What are the signs of cytokine release syndrome?", "When can I drive again?"):
            first, second = (_quotes(c, question) for c in clients)
            assert first and first == second
        assert all("sauna" not in " ".join(t for _, t in _quotes(c, NEW_QUESTION)).lower() for c in clients)

        (articles / "saunas.md").write_text(NEW_ARTICLE, encoding="utf-8")
        rebuilt = _cli("index", "build", "--store", pg_url, str(articles), env=env)
        assert rebuilt.returncode == 0, rebuilt.stderr
        built_at = time.monotonic()
        answered: dict[int, float] = {}
        while len(answered) < 2 and time.monotonic() - built_at < 10:
            for i, client in enumerate(clients):
                if i not in answered and any(a == "saunas" for a, _ in _quotes(client, NEW_QUESTION)):
                    answered[i] = time.monotonic() - built_at
            time.sleep(0.2)
        assert sorted(answered) == [0, 1], f"only replicas {sorted(answered)} answered from the new article in 10 s"
        first, second = (_quotes(c, NEW_QUESTION) for c in clients)
        assert first == second
    finally:
        for process, _ in replicas:
            process.terminate()
        for process, _ in replicas:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
