"""Like/dislike feedback on answers, kept locally in SQLite: the question, the quoted texts, a timestamp, the
rating and an optional comment — nothing else (no names, no IP addresses, no session ids).

    store = FeedbackStore(feedback_path(settings))
    row = store.record("dislike", "What is CRS?", ["Cytokine release syndrome (CRS) is ..."])
    store.add_comment(row, "I wanted to know how long it lasts")
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

FEEDBACK_FILE = "feedback.sqlite"
RATINGS = ("like", "dislike")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('like', 'dislike')),
    question TEXT NOT NULL,
    quotes TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT ''
)
"""


def feedback_path(settings) -> Path:
    """Where the chat keeps feedback: `<data_dir>/feedback.sqlite` (e.g. ~/.local/share/patient-qa/)."""
    return Path(settings.chat.data_dir).expanduser() / FEEDBACK_FILE


@dataclass(frozen=True)
class FeedbackRow:
    id: int
    created_at: str
    rating: str
    question: str
    quotes: tuple[str, ...]
    comment: str


class FeedbackStore:
    """One SQLite file; a short-lived connection per call, so several chat sessions can write at once."""

    def __init__(self, path: Path, max_comment_chars: int = 2000) -> None:
        self.max_comment_chars = max_comment_chars
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # questions are personal: only the owner may read them (SQLite gives its journal the same mode)
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(self.path, 0o600)
        with self._connect() as db:
            db.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10)

    def record(self, rating: str, question: str, quotes: Sequence[str], comment: str = "") -> int:
        """Store one rating; returns its row id (to attach a comment or change the rating later)."""
        if rating not in RATINGS:
            raise ValueError(f"rating must be one of {RATINGS}, not {rating!r}")
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        with self._connect() as db:
            cursor = db.execute(
                "INSERT INTO feedback (created_at, rating, question, quotes, comment) VALUES (?, ?, ?, ?, ?)",
                (now, rating, question, json.dumps(list(quotes), ensure_ascii=False), comment[: self.max_comment_chars]),
            )
            return int(cursor.lastrowid)

    def set_rating(self, row_id: int, rating: str) -> None:
        if rating not in RATINGS:
            raise ValueError(f"rating must be one of {RATINGS}, not {rating!r}")
        with self._connect() as db:
            db.execute("UPDATE feedback SET rating = ? WHERE id = ?", (rating, row_id))

    def add_comment(self, row_id: int, comment: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE feedback SET comment = ? WHERE id = ?", (comment.strip()[: self.max_comment_chars], row_id))

    def delete(self, row_id: int) -> None:
        """A rating taken back (the thumb clicked again) leaves no row."""
        with self._connect() as db:
            db.execute("DELETE FROM feedback WHERE id = ?", (row_id,))

    def rows(self) -> list[FeedbackRow]:
        with self._connect() as db:
            found = db.execute(
                "SELECT id, created_at, rating, question, quotes, comment FROM feedback ORDER BY id"
            ).fetchall()
        return [FeedbackRow(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), r[5]) for r in found]
