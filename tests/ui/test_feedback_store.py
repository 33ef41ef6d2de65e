"""Local feedback storage: what is kept, and nothing more."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from knowledge.settings import Settings
from ui.feedback import FeedbackStore, feedback_path


def test_feedback_lives_under_the_data_dir(tmp_path):
    assert feedback_path(Settings.from_env(data_dir=tmp_path)) == tmp_path / "feedback.sqlite"


def test_records_only_question_quotes_rating_comment_and_time(tmp_path):
    store = FeedbackStore(tmp_path / "deep" / "feedback.sqlite")
    row = store.record("like", "What is CRS?", ["CRS is an inflammatory reaction.", "It is common."])
    store.add_comment(row, "  very clear  ")
    [saved] = store.rows()
    assert (saved.rating, saved.question, saved.quotes, saved.comment) == (
        "like", "What is CRS?", ("CRS is an inflammatory reaction.", "It is common."), "very clear")
    assert saved.created_at.endswith("+00:00")
    columns = [c[1] for c in sqlite3.connect(store.path).execute("PRAGMA table_info(feedback)")]
    assert columns == ["id", "created_at", "rating", "question", "quotes", "comment"]


def test_rating_can_change_or_be_taken_back(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite")
    row = store.record("like", "q", [])
    store.set_rating(row, "dislike")
    assert store.rows()[0].rating == "dislike"
    store.delete(row)
    assert store.rows() == []
    with pytest.raises(ValueError):
        store.record("meh", "q", [])


def test_several_sessions_can_write_at_once(tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite")
    threads = [threading.Thread(target=lambda i=i: store.record("like", f"q{i}", [])) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.question for r in store.rows()) == sorted(f"q{i}" for i in range(8))
