"""The app served for real (fake assistant, no model): the named API endpoints and concurrent requests."""

from __future__ import annotations

import time

import pytest
from gradio_client import Client
from ui_fixtures import CRS_QUOTE, FakeAssistant, free_port

from knowledge.settings import ChatSettings, Settings
from ui.chat import build_app, launch
from ui.feedback import feedback_path

DELAY_S = 1.0
# gradio 6.31 itself calls pandas APIs that pandas 3 deprecates
pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One app on a free port, answering after DELAY_S like a slow machine would."""
    assistant = FakeAssistant(delay=DELAY_S)
    settings = Settings.from_env(data_dir=tmp_path_factory.mktemp("data"), feedback=True)
    app = build_app(assistant, settings)
    port = free_port()
    launch(app, port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", assistant, settings
    finally:
        app.close()


def test_ask_endpoint_returns_the_answer_contract(server):
    url, _, _ = server
    client = Client(url, verbose=False)
    result = client.predict(question="What is CRS?", history=["Hello"], api_name="/ask")
    assert result["triage"] == "general"
    assert result["quotes"][0]["text"] == CRS_QUOTE.text
    assert "markdown" in result and "disclaimer" in result


def test_at_least_four_questions_are_answered_at_once(server):
    url, _, _ = server
    assert ChatSettings().answer_slots >= 4
    client = Client(url, verbose=False)
    started = time.perf_counter()
    jobs = [client.submit(question=f"What is CRS, take {i}?", api_name="/ask") for i in range(4)]
    questions = [job.result(timeout=30)["question"] for job in jobs]
    elapsed = time.perf_counter() - started
    assert sorted(questions) == [f"What is CRS, take {i}?" for i in range(4)]
    assert elapsed < 2.5 * DELAY_S, f"4 answers took {elapsed:.1f} s: they were served one after another"


def test_chat_endpoint_shows_it_is_working_then_the_answer(server):
    url, _, _ = server
    client = Client(url, verbose=False)
    job = client.submit("He has a fever of 39 now", [], api_name="/chat")
    box, history, sources, _status, crisis = job.result(timeout=30)
    assert box == "" and crisis == ""  # an emergency that is not about self-harm shows no crisis banner
    answer_text = history[-1]["content"][0]["text"]
    assert answer_text.startswith('<div class="pqa-banner pqa-banner-emergency"')
    assert "Long-term follow-up after CAR-T" in sources
    first = job.outputs()[0][1][-1]["content"][0]["text"]
    assert "Looking through the articles" in first  # shown while the (slow) answer was computed


def test_feedback_store_is_created_under_the_data_dir(server):
    _, _, settings = server
    assert feedback_path(settings).exists()


def test_auth_keeps_strangers_out():
    app = build_app(FakeAssistant(), Settings.from_env(feedback=False))
    port = free_port()
    launch(app, port=port, auth=("nurse", "correct-horse"), prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        with pytest.raises(Exception):  # noqa: B017 - gradio_client raises a bare ValueError or its own AuthenticationError
            Client(url, verbose=False).predict(question="What is CRS?", api_name="/ask")
        result = Client(url, auth=("nurse", "correct-horse"), verbose=False).predict(
            question="What is CRS?", api_name="/ask")
        assert result["quotes"][0]["text"] == CRS_QUOTE.text
    finally:
        app.close()
