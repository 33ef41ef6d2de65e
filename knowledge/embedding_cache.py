"""Text vectors kept between builds, addressed by the encoder's hash and the text's hash: an edited article, the
eval's per-folder indexes and a rebuild after `index clean` re-embed only texts no earlier build embedded.

A first build on a new machine finds the bundled articles' vectors in the shipped packs
(`knowledge.vector_packs`) instead. Stored as float32 bytes in SQLite (no pickle), so a hit is
the very vector the encoder gave; the file is capped in size and drops its least recently used rows beyond that.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

CACHE_FILE = "embeddings.sqlite"
ROW_OVERHEAD_BYTES = 700  # key, timestamp, the two indexes and page slack per row, on top of the vector (measured)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (
    encoder TEXT NOT NULL,
    text_sha256 BLOB NOT NULL,
    vector BLOB NOT NULL,
    used REAL NOT NULL,
    UNIQUE (encoder, text_sha256)
);
CREATE INDEX IF NOT EXISTS vectors_used ON vectors (used);
"""  # a rowid table: WITHOUT ROWID spills 1.5 KB rows to overflow pages (4.8 KB a row on disk against 2.2 KB)


def default_cache_file() -> Path:
    """Beside the cached ONNX exports, in the user cache: it is safe to delete at any time."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("patient-qa")) / CACHE_FILE


def text_key(text: str) -> bytes:
    """The text's SHA-256: the stored key, so the cache never holds article text."""
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Vectors of one encoder (`encoder` names the model and its pooling, e.g. `onnx:<model sha256>:<config>`), in
    an SQLite file."""

    def __init__(self, path: Path, encoder: str, dimension: int, max_mb: float) -> None:
        self.path = Path(path)
        self.encoder = encoder
        self.dimension = dimension
        self.max_rows = max(0, int(max_mb * 1_000_000 // (dimension * 4 + ROW_OVERHEAD_BYTES)))
        self._db: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection | None:
        """The open database, or None when the cache cannot be written here (a build then simply embeds)."""
        if self._db is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")  # concurrent builds (eval, tests) read while one writes
                db.executescript(_SCHEMA)
            except (OSError, sqlite3.Error):
                return None
            self._db = db
        return self._db

    def get(self, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        """The stored vectors among `keys`; their `used` time moves forward so they are pruned last."""
        db = self._connect()
        if db is None or not keys:
            return {}
        found: dict[bytes, np.ndarray] = {}
        try:
            for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
                part = list(keys[start : start + 500])
                marks = ",".join("?" * len(part))
                for key, blob in db.execute(
                    f"SELECT text_sha256, vector FROM vectors WHERE encoder = ? AND text_sha256 IN ({marks})",
                    [self.encoder, *part],
                ):
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape == (self.dimension,):
                        found[bytes(key)] = vector
            if found:
                with db:
                    db.executemany("UPDATE vectors SET used = ? WHERE encoder = ? AND text_sha256 = ?",
                                   [(time.time(), self.encoder, k) for k in found])
        except sqlite3.Error:
            return found
        return found

    def put(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        """Store new vectors, then drop the least recently used rows past the size cap."""
        db = self._connect()
        if db is None or not len(keys) or self.max_rows == 0:
            return
        now = time.time()
        rows = [(self.encoder, k, np.ascontiguousarray(v, dtype=np.float32).tobytes(), now)
                for k, v in zip(keys, vectors, strict=True)]
        try:
            with db:
                db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?)", rows)
                (count,) = db.execute("SELECT COUNT(*) FROM vectors").fetchone()
                if count > self.max_rows:
                    db.execute("DELETE FROM vectors WHERE rowid IN (SELECT rowid FROM vectors ORDER BY used LIMIT ?)",
                               (count - self.max_rows,))
        except sqlite3.Error:
            pass  # a full disk or a locked file costs the next build time, never this one its result

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class CachedEmbedder:
    """An embedder that asks the shipped vectors and the cache first and encodes only texts neither holds (each
    distinct text once)."""

    def __init__(self, inner: Any, cache: EmbeddingCache | None,
                 shipped: Mapping[bytes, np.ndarray] | None = None) -> None:
        self.inner = inner
        self.cache = cache
        self.shipped = shipped or {}
        self.hits = 0
        self.misses = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # count_tokens, max_tokens, dimension, threads, backend, load

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """The same rows `inner.encode(texts)` gives, from the cache where it holds them."""
        texts = list(texts)
        if not texts:
            return self.inner.encode(texts, batch_size=batch_size)
        keys = [text_key(t) for t in texts]
        found = {k: self.shipped[k] for k in keys if k in self.shipped}
        asked = [k for k in dict.fromkeys(keys) if k not in found]
        if self.cache is not None and asked:
            found.update(self.cache.get(asked))
        missing = {k: t for k, t in zip(keys, texts, strict=True) if k not in found}  # distinct, in first order
        self.hits += len(texts) - sum(1 for k in keys if k in missing)
        self.misses += len(missing)
        if missing:
            vectors = np.asarray(self.inner.encode(list(missing.values()), batch_size=batch_size), dtype=np.float32)
            if self.cache is not None:
                self.cache.put(list(missing), vectors)
            found.update(zip(missing, vectors, strict=True))
        return np.ascontiguousarray(np.stack([found[k] for k in keys]), dtype=np.float32)
