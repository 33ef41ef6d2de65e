"""What stands between the network and the chat: a request-body cap, failed-login throttling, and no question
text in logs, including the input values Gradio puts into its own error messages.

    launch(app, max_request_bytes=settings.limits.max_request_bytes)   # installs both middlewares
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from knowledge.settings import ChatSettings

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOGIN_PATHS = ("/login", "/gradio_api/login")


async def _send_json(send: Send, status: int, body: dict, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *headers]})
    await send({"type": "http.response.body", "body": data})


class BodyTooLarge(Exception):
    """A request body grew past the cap while it was being read."""


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` (413) before any handler (or log line) sees them."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = overflowed = False

        async def counted_receive() -> dict:
            nonlocal received, overflowed
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    overflowed = True
                    raise BodyTooLarge
            return message

        async def tracked_send(message: dict) -> None:
            nonlocal started
            if overflowed:  # the route caught our error and answers something else (a 400): say what happened
                if not started and message["type"] == "http.response.start":
                    started = True
                    await self._refuse(send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                started = True
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        await _send_json(send, 413, {"detail": f"Request too large: the chat accepts at most {self.max_bytes} bytes "
                                               "(PATIENT_QA_MAX_REQUEST_BYTES)."})


@dataclass
class _Failures:
    count: int = 0
    blocked_until: float = 0.0
    last: float = 0.0
    holding: bool = False


def failure_delay(count: int, settings: ChatSettings = ChatSettings()) -> float:
    """Seconds a client must wait after `count` failed sign-ins in a row: 1, 2, 4, ... up to a minute by default."""
    return 0.0 if count <= 0 else min(settings.login_max_delay_s, settings.login_first_delay_s * 2 ** (count - 1))


class LoginThrottleMiddleware:
    """A growing wait per client after failed sign-ins; attempts during the wait are refused (429) unchecked.

    Gradio's `auth` callable sees no client address, so the throttle sits in front of the login route. A wait up
    to `login_hold_s` is served by holding the attempt, not refusing it: Gradio's sign-in page shows nothing for a
    429, so a person who mistyped once or twice just sees a slower answer.
    """

    def __init__(self, app: ASGIApp, settings: ChatSettings = ChatSettings(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.settings = settings
        self.clock = clock
        self.failures: dict[str, _Failures] = {}
        self.lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or not scope.get("path", "").endswith(LOGIN_PATHS):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        async with self.lock:  # one check-and-mark per client at a time, so parallel guesses cannot slip past
            now = self.clock()
            self._forget_old(now)
            entry = self.failures.setdefault(client, _Failures())
            wait = entry.blocked_until - now
            hold = 0 < wait <= self.settings.login_hold_s and not entry.holding and entry.count > 0
            if hold:
                entry.holding = True
            elif wait > 0:
                entry.last = now
                seconds = math.ceil(wait)
                await _send_json(send, 429, {"detail": f"Too many failed sign-ins: wait {seconds} s and try again."},
                                 ((b"retry-after", str(seconds).encode()),))
                return
            if not hold:
                # until this attempt's outcome is known, further attempts from the client are refused
                entry.blocked_until = now + self.settings.login_max_delay_s
        if hold:
            await asyncio.sleep(wait)
            async with self.lock:
                entry.holding = False
                entry.blocked_until = self.clock() + self.settings.login_max_delay_s
        status = 0

        async def watched_send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        finally:
            async with self.lock:
                now = self.clock()
                if status == 200:
                    self.failures.pop(client, None)
                else:
                    entry.count += 1 if status in (400, 401, 403) else 0
                    entry.blocked_until = now + failure_delay(entry.count, self.settings)
                    entry.last = now

    def _forget_old(self, now: float) -> None:
        for client in [c for c, f in self.failures.items() if now - f.last > self.settings.login_forget_after_s and f.blocked_until < now]:
            del self.failures[client]


def hide_input_values(app) -> None:
    """Gradio's 'not enough inputs' error lists the values received (a question); keep only the counts."""
    original = app.validate_inputs

    def validate_inputs(block_fn, inputs):
        try:
            original(block_fn, inputs)
        except ValueError:
            raise ValueError(f"An API call to {block_fn.name or 'an event'} sent {len(inputs)} input values, "
                             f"{len(block_fn.inputs)} are needed (values not logged).") from None

    app.validate_inputs = validate_inputs
