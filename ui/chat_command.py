"""`patient-qa chat`: argument parsing only; the Gradio app is imported when the command runs."""

from __future__ import annotations

import argparse


def add_chat_parser(sub) -> None:
    chat = sub.add_parser("chat", help="open the web chat (http://127.0.0.1:7860)")
    chat.add_argument("--index", help="index folder")
    chat.set_defaults(func=cmd_chat)


def cmd_chat(args: argparse.Namespace) -> int:
    print("The web chat arrives with the web UI (issue 5).")
    return 0
