"""The chat facing a hostile network: oversized bodies, malformed API calls, password guessing, private files
and server paths. The network tests serve the Gradio app for real with a fake assistant (no model): they import
Gradio and start a server, so they are slow; the middleware itself is tested fast in test_guards.py."""

from __future__ import annotations

import http.client
import json
import os
import stat
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from ui_fixtures import CRS_QUOTE, FakeAssistant, free_port, make_answer

from knowledge.settings import DEFAULT_ARTICLES, Settings
from qa.types import Quote
from ui import chat_handlers, chat_render
from ui import visit_sheet as vs
from ui.exports import ExportFolder
from ui.feedback import FeedbackStore

pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*")
SECRET_QUESTION = "my daughter zq-7731 has a rash after CAR-T"
PASSWORD = "correct-horse"


def _post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture(scope="module")
def served():
    from ui.chat import build_app, launch

    app = build_app(FakeAssistant(), Settings.from_env(feedback=False))
    port = free_port()
    launch(app, port=port, prevent_thread_lock=True, quiet=True, max_request_bytes=1_000_000)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        app.close()


def _send_large_body(url: str, size: int, chunked: bool) -> tuple[int, str]:
    """Start sending a body of `size` bytes; the answer comes before the body is read (the rest is never sent)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    connection.putrequest("POST", parts.path)
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Transfer-Encoding" if chunked else "Content-Length", "chunked" if chunked else str(size))
    connection.endheaders()
    piece = b'{"data": ["' + b"a" * 65_536
    try:
        for _ in range(size // len(piece)):
            connection.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n" if chunked else piece)
    except OSError:
        pass  # the server answered and closed: it will not read 10 MB
    response = connection.getresponse()
    return response.status, response.read().decode()


@pytest.mark.slow
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_10_mb_body_is_refused_and_the_chat_still_answers(served, chunked):
    status, body = _send_large_body(f"{served}/gradio_api/call/ask", 10_000_000, chunked)
    assert status == 413
    assert "at most 1000000 bytes" in json.loads(body)["detail"]
    status, body = _post(f"{served}/gradio_api/call/ask", json.dumps({"data": ["What is CRS?", []]}).encode())
    assert status == 200 and "event_id" in body


@pytest.mark.slow
def test_a_wrongly_shaped_api_call_does_not_log_the_question(served, capfd):
    status, body = _post(f"{served}/gradio_api/call/ask", json.dumps({"data": [SECRET_QUESTION]}).encode())
    assert status == 200
    with urllib.request.urlopen(f"{served}/gradio_api/call/ask/{json.loads(body)['event_id']}", timeout=30) as r:
        events = r.read().decode()
    assert "event: error" in events  # the call failed, as it should ...
    time.sleep(0.3)
    logged = capfd.readouterr()
    assert "input values" in logged.out + logged.err  # ... and the log says why
    assert "zq-7731" not in logged.out + logged.err  # without the question


@pytest.mark.slow
def test_failed_logins_are_throttled_per_client():
    from ui.chat import build_app, launch

    # The real waits are 1, 2, 4 ... 60 s; the shape is the same at a tenth of a second up to two seconds.
    settings = Settings.from_env(feedback=False).updated(login_first_delay_s=0.1, login_hold_s=0.5,
                                                         login_max_delay_s=2.0)
    app = build_app(FakeAssistant(), settings)
    port = free_port()
    launch(app, port=port, auth=("nurse", PASSWORD), prevent_thread_lock=True, quiet=True,
           chat_settings=settings.chat)
    login = f"http://127.0.0.1:{port}/login"

    def attempt(password: str) -> tuple[int, str]:
        form = f"username=nurse&password={password}".encode()
        return _post(login, form, "application/x-www-form-urlencoded")

    try:
        started = time.monotonic()
        statuses = [attempt(f"guess-{i}")[0] for i in range(200)]
        assert statuses[:4] == [400] * 4  # a person who mistypes gets an answer, a little later each time
        assert time.monotonic() - started >= 0.1 + 0.2 + 0.4
        # then guesses are refused unchecked until the doubling wait is over: only a handful are ever checked
        assert set(statuses) == {400, 429} and statuses.count(400) <= 12
        status, body = attempt(PASSWORD)
        assert status == 429 and "wait" in body  # right after 200 guesses, even the right password waits
        wait = int(json.loads(body)["detail"].split("wait ")[1].split(" s")[0])
        assert 1 <= wait <= 2  # the message says how long, within the longest wait
        time.sleep(wait + 0.2)
        assert attempt(PASSWORD)[0] == 200  # a person who waits gets in
        assert attempt("wrong-again")[0] == 400  # and a success starts the count afresh
    finally:
        app.close()


def test_feedback_database_is_private(tmp_path):
    store = FeedbackStore(tmp_path / "data" / "feedback.sqlite")
    store.record("like", "What is CRS?", ["quote"])
    assert stat.S_IMODE((tmp_path / "data" / "feedback.sqlite").stat().st_mode) == 0o600


def test_exported_visit_sheets_are_private_and_go_with_the_session(tmp_path):
    sheet = vs.add_answer(vs.VisitSheet(), make_answer("What is CRS?"))
    exports = ExportFolder.create()
    _, paths, _ = chat_handlers.export_sheet(sheet, "When can he drive?", "", [], exports.new())
    assert [stat.S_IMODE(os.stat(p).st_mode) for p in paths] == [0o600, 0o600]
    exports.track("session-a", paths)
    other = chat_handlers.export_sheet(sheet, "Another", "", [], exports.new())[1]
    exports.track("session-b", other)
    exports.end_session("session-a")  # the tab was closed
    assert not any(Path(p).exists() for p in paths) and all(Path(p).exists() for p in other)
    exports.close()  # the server stops
    assert not any(Path(p).exists() for p in other)


def test_sources_name_an_article_without_url_relative_to_the_articles_folder(tmp_path):
    inside = Quote(**{**CRS_QUOTE.__dict__, "source_path": str(DEFAULT_ARTICLES / "cytokine-release-syndrome.md")})
    outside = Quote(**{**CRS_QUOTE.__dict__, "article": "x", "source_path": str(tmp_path / "secret" / "mine.md")})
    answer = make_answer("What is CRS?", quotes=(inside, outside))
    root = DEFAULT_ARTICLES
    shown = chat_render.render_message(answer, root) + chat_render.sources_html(answer, root)
    assert "cytokine-release-syndrome.md" in shown and "mine.md" in shown
    assert str(tmp_path) not in shown and str(DEFAULT_ARTICLES) not in shown
    steps = list(chat_handlers.answer_turn(FakeAssistant(), "What is CRS?", [], []))
    assert "/x/knowledge" not in steps[-1][1][-1]["content"] + steps[-1][3]  # the chat itself uses the folder
