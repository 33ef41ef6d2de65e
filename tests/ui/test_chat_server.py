"""The app served for real (fake assistant, no model): the named API endpoints and concurrent requests."""

from __future__ import annotations

import time

import pytest
from ui_fixtures import CRS_QUOTE, FakeAssistant, free_port

from knowledge.settings import ChatSettings, Settings
from ui.feedback import feedback_path

DELAY_S = 1.0
# Every test here serves the Gradio app for real (Gradio's import alone is ~5 s of CPU): slow, and Gradio is
# imported inside the tests so that a fast run does not pay for it at collection. The handlers behind the endpoints
# are tested without a server in test_chat_handlers.py, the middleware in test_guards.py.
# gradio 6.31 itself calls pandas APIs that pandas 3 deprecates.
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*")]


def _serve(assistant, settings, **launch_options) -> tuple[object, str]:
    """(app, url) of the chat app launched on a free port."""
    from ui.chat import build_app, launch

    app = build_app(assistant, settings)
    port = free_port()
    launch(app, port=port, prevent_thread_lock=True, quiet=True, **launch_options)
    return app, f"http://127.0.0.1:{port}/"


def _client(url: str, **options):
    from gradio_client import Client

    return Client(url, verbose=False, **options)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One app on a free port, answering after DELAY_S like a slow machine would."""
    assistant = FakeAssistant(delay=DELAY_S)
    settings = Settings.from_env(data_dir=tmp_path_factory.mktemp("data"), feedback=True)
    app, url = _serve(assistant, settings)
    try:
        yield url, assistant, settings
    finally:
        app.close()


def test_ask_endpoint_returns_the_answer_contract(server):
    url, _, _ = server
    client = _client(url)
    result = client.predict(question="What is CRS?", history=["Hello"], api_name="/ask")
    assert result["triage"] == "general"
    assert result["quotes"][0]["text"] == CRS_QUOTE.text
    assert "markdown" in result and "disclaimer" in result


def test_at_least_four_questions_are_answered_at_once(server):
    url, _, _ = server
    assert ChatSettings().answer_slots >= 4
    client = _client(url)
    started = time.perf_counter()
    jobs = [client.submit(question=f"What is CRS, take {i}?", api_name="/ask") for i in range(4)]
    questions = [job.result(timeout=30)["question"] for job in jobs]
    elapsed = time.perf_counter() - started
    assert sorted(questions) == [f"What is CRS, take {i}?" for i in range(4)]
    assert elapsed < 2.5 * DELAY_S, f"4 answers took {elapsed:.1f} s: they were served one after another"


def test_chat_endpoint_shows_it_is_working_then_the_answer(server):
    url, _, _ = server
    client = _client(url)
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
    app, url = _serve(FakeAssistant(), Settings.from_env(feedback=False), auth=("nurse", "correct-horse"))
    try:
        with pytest.raises(Exception):  # noqa: B017 - gradio_client raises a bare ValueError or its own AuthenticationError
            _client(url).predict(question="What is CRS?", api_name="/ask")
        result = _client(url, auth=("nurse", "correct-horse")).predict(
            question="What is CRS?", api_name="/ask")
        assert result["quotes"][0]["text"] == CRS_QUOTE.text
    finally:
        app.close()
