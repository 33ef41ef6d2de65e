"""20 people asking 5 questions each at once, through gradio_client: every answer arrives, each to its asker.

Timings are printed by `python tests/ui/chat_load.py`, never asserted (they depend on the machine).
"""

from __future__ import annotations

import pytest
from chat_load import PIPELINE_S, run_load
from ui_fixtures import FakeAssistant, free_port

from knowledge.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword).*")]


def test_20_users_x_5_questions_get_their_own_answers_without_errors():
    from ui.chat import build_app, launch  # here, not at the top: a fast run would import Gradio at collection

    app = build_app(FakeAssistant(delay=PIPELINE_S), Settings.from_env(feedback=False))
    port = free_port()
    launch(app, port=port, prevent_thread_lock=True, quiet=True)
    try:
        report = run_load(f"http://127.0.0.1:{port}/", users=20, questions=5)
    finally:
        app.close()
    print(report.summary())
    assert report.errors == []
    assert report.crosstalk == []
    assert len(report.latencies_s) == 100
