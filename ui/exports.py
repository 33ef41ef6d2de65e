"""Exported visit sheets, kept per browser session and deleted when the session ends or the server stops."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path


class ExportFolder:
    """Exported visit sheets, kept per browser session: removed when the session ends or the server stops.

    Files are written 0600 in a private temporary folder, handed to Gradio's cache (the copy keeps the mode) for
    download, and the private copy is removed at once; the served copies are deleted by `end_session`/`close`.
    """

    def __init__(self) -> None:
        self.root: Path | None = None
        self.served: dict[str, set[Path]] = {}
        self.lock = threading.Lock()
        atexit.register(self.close)

    @classmethod
    def create(cls) -> ExportFolder:
        return cls()

    def new(self) -> Path:
        """A fresh private folder to write one export into."""
        with self.lock:
            if self.root is None:
                self.root = Path(tempfile.mkdtemp(prefix="patient-qa-exports-"))
        folder = self.root / uuid.uuid4().hex
        folder.mkdir(mode=0o700, parents=True)
        return folder

    def track(self, session: str, paths: Sequence[str | Path]) -> None:
        """Remember files served to `session`, to delete them when it ends."""
        with self.lock:
            self.served.setdefault(session, set()).update(Path(p) for p in paths)

    def end_session(self, session: str) -> None:
        """The browser tab was closed: its exports go."""
        with self.lock:
            paths = self.served.pop(session, set())
        _remove_files(paths)

    def close(self) -> None:
        """The server stops: every export goes."""
        with self.lock:
            paths = set().union(*self.served.values()) if self.served else set()
            self.served.clear()
            root, self.root = self.root, None
        _remove_files(paths)
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)


def _remove_files(paths: Iterable[Path]) -> None:
    """Delete files and their (Gradio cache) folder when it is left empty."""
    for path in paths:
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()
        except OSError:
            pass
