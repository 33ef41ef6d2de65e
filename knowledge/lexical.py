"""BM25 over chunks with bm25s: one tokenizer for corpus and queries, saved without pickle."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

import numpy as np

_WORD = re.compile(r"(?u)\b\w\w+\b")
# Question words carry no topic; patients use them in almost every question.
_QUESTION_WORDS = {"what", "how", "why", "when", "who", "whom", "which", "does", "do", "did", "can", "could",
                   "would", "should", "will", "shall", "may", "might", "must", "is", "are", "am", "get", "got",
                   "im", "ive", "dont", "doesnt", "ok", "okay", "please", "tell", "know", "mean", "means"}


def _import_bm25s():
    """bm25s without numba and scipy: it imports both when installed (over a second of a cold start, and memory
    in the chat), though its numpy backend, the one we build and search with, uses neither."""
    import sys

    if "bm25s" not in sys.modules:
        blocked = [name for name in ("numba", "scipy") if name not in sys.modules]
        sys.modules.update({name: None for name in blocked})  # type: ignore[misc]  # None makes `import numba` an ImportError
        try:
            import bm25s  # noqa: F401
        finally:
            for name in blocked:
                if sys.modules.get(name, 0) is None:
                    del sys.modules[name]
    return sys.modules["bm25s"]


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    _import_bm25s()
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN) | _QUESTION_WORDS


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    """Lowercased, stop-worded, Snowball-stemmed word tokens."""
    stop = _stopwords()
    words = [w for w in _WORD.findall(text.lower().replace("_", " ")) if w not in stop]
    return _stemmer().stemWords(words) if words else []


class LexicalIndex:
    """A BM25 index whose row i is the i-th chunk id in `ids`."""

    def __init__(self, retriever, ids: np.ndarray) -> None:
        self._retriever = retriever
        self.ids = ids
        self._idf: dict[str, float] | None = None

    def idf(self, token: str) -> float:
        """BM25 inverse document frequency of a stemmed token; rare words weigh more, unknown words most."""
        if self._idf is None:
            scores = self._retriever.scores
            n = float(scores["num_docs"])
            df = np.diff(np.asarray(scores["indptr"]))
            idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
            self._idf = {tok: float(idf[i]) for tok, i in self._retriever.vocab_dict.items() if i < len(idf)}
            self._idf_max = float(np.log(1.0 + (n + 0.5) / 0.5))
        return self._idf.get(token, self._idf_max)

    def vocabulary(self) -> frozenset[str]:
        """Every stemmed token the index knows: the words a question can share with the library."""
        self.idf("")  # fills the table
        return frozenset(self._idf or ())

    def term_weights(self) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
        """(token, rows, BM25 weights) for every token: bm25s's precomputed scores, which another store can hold
        so that its inner product with a query's token counts is exactly `search`'s score."""
        scores = self._retriever.scores
        data, indices, indptr = (np.asarray(scores[key]) for key in ("data", "indices", "indptr"))
        for token, i in self._retriever.vocab_dict.items():
            if i < len(indptr) - 1:
                yield token, indices[indptr[i] : indptr[i + 1]], data[indptr[i] : indptr[i + 1]]

    @classmethod
    def build(cls, texts: list[str], ids: list[int]) -> LexicalIndex:
        """Index texts (title and headings included by the caller) under their chunk ids."""
        bm25s = _import_bm25s()
        retriever = bm25s.BM25(method="lucene", backend="numpy", csc_backend="numpy")
        corpus = [tokenize(t) or ["_empty_"] for t in texts]
        retriever.index(corpus, show_progress=False)
        return cls(retriever, np.asarray(ids, dtype=np.int64))

    def save(self, directory: Path) -> None:
        """bm25s's own JSON + .npy files, plus the row -> chunk id map."""
        directory.mkdir(parents=True, exist_ok=True)
        self._retriever.save(str(directory), show_progress=False)
        np.save(directory / "ids.npy", self.ids, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> LexicalIndex:
        """Load what `save` wrote."""
        bm25s = _import_bm25s()
        retriever = bm25s.BM25.load(str(directory), show_progress=False)
        return cls(retriever, np.load(directory / "ids.npy", allow_pickle=False))

    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        """Top-k (chunk id, BM25 score) for a query; empty when no query word is in the corpus."""
        vocab = self._retriever.vocab_dict
        tokens = [t for t in tokenize(query) if t in vocab]
        if not tokens or len(self.ids) == 0:
            return []
        scores = self._retriever.get_scores(tokens)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(int(self.ids[i]), float(scores[i])) for i in top if scores[i] > 0]
