"""The last few question vectors, shared by every embedder: one chat turn embeds its question for triage and retrieval."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

RECENT_QUERIES = 64  # one chat turn embeds its question once for triage and once for retrieval


class RecentQueries:
    """A small thread-safe LRU of read-only question vectors."""

    def __init__(self, size: int = RECENT_QUERIES) -> None:
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, text: str, compute: Callable[[str], np.ndarray]) -> np.ndarray:
        """The vector of `text`, computed once while it stays among the last `size` questions."""
        with self._lock:
            if text in self._vectors:
                self._vectors.move_to_end(text)
                return self._vectors[text]
        vector = compute(text)
        vector.setflags(write=False)
        with self._lock:
            self._vectors[text] = vector
            while len(self._vectors) > self.size:
                self._vectors.popitem(last=False)
        return vector
