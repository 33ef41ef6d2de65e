"""`patient-qa chat`: argument parsing only; Gradio and the model load when the command runs."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from knowledge.errors import fail
from ui.default_index import default_index_is_stale, ensure_default_index  # noqa: F401 - shared with `ask`

DEFAULT_HOST = "127.0.0.1"


def add_chat_parser(sub) -> None:
    chat = sub.add_parser(
        "chat",
        help="open the web chat (http://127.0.0.1:7860)",
        description="Start the web chat. With the default index, the bundled articles are indexed first "
        "when the index is missing or out of date.",
    )
    chat.add_argument("--host", default=None, help=f"address to listen on (default {DEFAULT_HOST}: this computer only; "
                      "0.0.0.0 shares it on your network, so use --auth)")
    chat.add_argument("--port", type=int, default=None, help="port (default: the port setting, 7860; PATIENT_QA_PORT)")
    chat.add_argument("--index", help="index folder (default: the user cache, built from the bundled articles)")
    chat.add_argument("--store", help="the library: an index folder or a postgresql:// URL of a shared store "
                      "(default: PATIENT_QA_STORE, else --index)")
    chat.add_argument("--auth", metavar="USER:PASS", help="require this user name and password "
                      "(or set PATIENT_QA_AUTH=USER:PASS to keep it out of the process list)")
    chat.add_argument("--no-feedback", action="store_true",
                      help="hide the like/dislike buttons and store no feedback (also PATIENT_QA_FEEDBACK=0)")
    chat.set_defaults(func=cmd_chat)


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """'user:pass' -> ('user', 'pass'); the password may contain ':'."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError("--auth needs USER:PASS, for example --auth nurse:correct-horse")
    return user, password


def cmd_chat(args: argparse.Namespace) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from knowledge.settings import Settings

    try:
        auth = parse_auth(args.auth or os.environ.get("PATIENT_QA_AUTH"))
    except ValueError as err:
        return fail(str(err), 2)
    from knowledge.store import is_server_url, shown_location, where

    overrides: dict[str, object] = where(args.index, args.store)
    if args.no_feedback:
        overrides["feedback"] = False
    settings = Settings.from_env(**overrides)
    store = settings.index.store
    host = args.host or DEFAULT_HOST
    port = args.port or settings.chat.port

    folder = args.index or (store if store and not is_server_url(store) else None)
    if folder:
        if not (Path(folder).expanduser() / "manifest.json").exists():
            return fail(f"no index in {folder}. Build it first:\n"
                         f"  patient-qa index build [ARTICLES ...] --index {folder}\n"
                         "or leave out --index to use the bundled articles.", 1)
    elif store:
        print(f"Using the library at {shown_location(store)}", flush=True)
    else:
        code = ensure_default_index(settings)
        if code:
            return code

    from knowledge.embedding import ModelLoadError
    from knowledge.index import IndexError_
    from qa.assistant import Assistant
    from qa.triage_model import TriageModelError

    print("Loading the model ...", flush=True)
    try:
        assistant = Assistant(settings)
        assistant.warm_up()
    except (IndexError_, ModelLoadError, TriageModelError) as err:
        return fail(str(err), 1)

    from ui.chat import build_app, launch
    from ui.feedback import feedback_path

    app = build_app(assistant, settings)
    if settings.feedback:
        print(f"Feedback (likes, dislikes, comments) is stored in {feedback_path(settings)}; "
              "turn it off with --no-feedback or PATIENT_QA_FEEDBACK=0.", flush=True)
    else:
        print("Feedback is off.", flush=True)
    if host not in ("127.0.0.1", "localhost", "::1") and not auth:
        print(f"Warning: listening on {host} without --auth: anyone on the network can use this chat.",
              file=sys.stderr, flush=True)
    print(f"Open http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port} in your browser "
          "(Ctrl+C to stop).", flush=True)
    # a stopped service (SIGTERM) exits like Ctrl+C, so exported visit sheets are cleaned up
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        launch(app, host=host, port=port, auth=auth, quiet=True, max_request_bytes=settings.limits.max_request_bytes,
               chat_settings=settings.chat)
    except KeyboardInterrupt:
        pass
    except OSError as err:
        return fail(f"could not start the web server on {host}:{port} ({err}); try another --port.", 1)
    finally:
        app.exports.close()  # exported visit sheets do not outlive the server
    return 0
