"""The request-body cap and the sign-in throttle as plain ASGI middleware, in front of a tiny app: no Gradio, no
server, no real waiting (a fake clock; the throttle's hold sleeps a few milliseconds). The same middleware served
for real in front of the Gradio app is tested in test_chat_guards.py (slow)."""

from __future__ import annotations

import asyncio
import json

from knowledge.settings import Settings
from ui.guards import BodyLimitMiddleware, LoginThrottleMiddleware, failure_delay

PASSWORD = b"correct-horse"


async def _echo_length(scope, receive, send) -> None:
    """An app that reads the whole body and answers with its length."""
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


async def _login(scope, receive, send) -> None:
    """Gradio's login route in miniature: 200 for the right password, 400 for any other."""
    body = (await receive()).get("body", b"")
    status = 200 if body == PASSWORD else 400
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _call(app, body_parts: list[bytes], *, path: str = "/gradio_api/call/ask", client: str = "10.0.0.1",
          headers: list[tuple[bytes, bytes]] | None = None) -> tuple[int, dict, bytes, int]:
    """(status, headers, body, parts the app pulled) of one POST sent in `body_parts` pieces."""
    parts = list(body_parts)
    pulled = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal pulled
        pulled += 1
        body = parts.pop(0) if parts else b""
        return {"type": "http.request", "body": body, "more_body": bool(parts)}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "client": (client, 5000), "headers": headers or []}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body, pulled


def test_a_declared_length_over_the_cap_is_refused_before_the_body_is_read():
    app = BodyLimitMiddleware(_echo_length, max_bytes=1000)
    status, _, body, pulled = _call(app, [b"a" * 2000], headers=[(b"content-length", b"2000")])
    assert status == 413 and pulled == 0
    assert "at most 1000 bytes" in json.loads(body)["detail"]


def test_a_streamed_body_is_cut_off_once_it_passes_the_cap():
    app = BodyLimitMiddleware(_echo_length, max_bytes=1000)
    status, _, _, pulled = _call(app, [b"a" * 400] * 10)  # chunked: no length declared
    assert status == 413 and pulled == 3  # the third piece passes 1000 bytes; the other seven are never read


def test_a_body_within_the_cap_reaches_the_app_whole():
    app = BodyLimitMiddleware(_echo_length, max_bytes=1000)
    assert _call(app, [b"a" * 400, b"b" * 600])[::2] == (200, b"1000")


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failed_sign_ins_wait_longer_each_time_and_the_wait_is_said():
    clock = _Clock()
    settings = Settings().updated(login_first_delay_s=0.001, login_hold_s=0.0, login_max_delay_s=30).chat
    app = LoginThrottleMiddleware(_login, settings, clock=clock)

    assert _call(app, [b"guess-1"], path="/login")[0] == 400
    clock.now += 0.01  # the 1 ms wait after one failure is over
    assert _call(app, [b"guess-2"], path="/login")[0] == 400
    status, headers, body, pulled = _call(app, [PASSWORD], path="/login")  # within the 2 ms wait, even the password
    assert status == 429 and pulled == 0  # refused unchecked
    assert headers[b"retry-after"] == b"1" and "wait 1 s" in json.loads(body)["detail"]
    assert _call(app, [PASSWORD], path="/login", client="10.0.0.2")[0] == 200  # other clients are not held up
    clock.now += 0.01
    assert _call(app, [PASSWORD], path="/login")[0] == 200  # a person who waits gets in
    assert "10.0.0.1" not in app.failures  # and a success starts the count afresh


def test_a_short_wait_is_served_by_holding_the_attempt_not_refusing_it():
    clock = _Clock()
    settings = Settings().updated(login_first_delay_s=0.005, login_hold_s=5.0).chat
    app = LoginThrottleMiddleware(_login, settings, clock=clock)
    assert _call(app, [b"guess"], path="/login")[0] == 400
    assert _call(app, [PASSWORD], path="/login")[0] == 200  # held 5 ms, then checked: Gradio's page shows no 429


def test_only_sign_ins_are_throttled_and_old_failures_are_forgotten():
    clock = _Clock()
    settings = Settings().updated(login_first_delay_s=10.0, login_hold_s=0.0, login_forget_after_s=60).chat
    app = LoginThrottleMiddleware(_login, settings, clock=clock)
    assert _call(app, [b"guess"], path="/login")[0] == 400
    assert _call(app, [PASSWORD], path="/gradio_api/call/ask")[0] == 200  # not a sign-in: passes straight through
    clock.now += 61
    _call(app, [PASSWORD], path="/login", client="10.0.0.9")  # any sign-in sweeps the clients that stopped failing
    assert "10.0.0.1" not in app.failures


def test_the_sign_in_wait_doubles_up_to_its_cap_as_the_settings_say():
    assert [failure_delay(n) for n in range(9)] == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    fast = Settings().updated(login_first_delay_s=0.5, login_max_delay_s=3).chat
    assert [failure_delay(n, fast) for n in range(1, 5)] == [0.5, 1.0, 2.0, 3.0]
