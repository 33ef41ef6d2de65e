"""Small hand-made fixtures for the eval tests: a model-free embedder, gold items and answers."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from eval.gold import GoldItem
from eval.runner import ItemResult, QuoteRecord


def fake_triage_embed(texts):
    """A stand-in for MiniLM in triage training: a unit vector from the text's hash (deterministic, no model)."""
    from qa.triage_features import normalise

    out = []
    for text in texts:
        seed = int.from_bytes(hashlib.sha256(normalise(text).encode()).digest()[:4], "little")
        v = np.random.default_rng(seed).standard_normal(384).astype(np.float32)
        out.append(v / np.linalg.norm(v))
    return np.stack(out)


class FakeEmbedder:
    """The Embedder interface without a model: hashed bag-of-words unit vectors, whitespace token counts."""

    model_name = "fake-eval-model"
    threads = 1
    max_tokens = 256
    dimension = 64

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [len(t.split()) + 2 for t in texts]

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        matrix = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()) or ["_"]:
                matrix[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimension] += 1.0
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode([text])[0]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def quote(text: str, article: str = "crs", ok: bool = True) -> QuoteRecord:
    return QuoteRecord(text, article, "What CRS is", f"{article}.md", ok, ok, "" if ok else "quote not found verbatim")


def result(item_id: str, kind: str, triage: str, quotes: tuple[QuoteRecord, ...] = (), facts: tuple[str, ...] = (),
           category: str = "side-effects", gold_article: str | None = None, abstained: bool = False,
           latency: float = 10.0, retrieved: tuple[str, ...] = ()) -> ItemResult:
    item = GoldItem(item_id, kind, f"question {item_id}?", (), facts, category, gold_article)
    return ItemResult(item, triage, abstained, quotes, retrieved, latency,
                      {"triage": 0.1, "retrieval": latency * 0.8, "compose": 1.0, "total": latency}, item.question)


def sample_results() -> list[ItemResult]:
    """Ten answers with known figures: fact hit 2/3, emergency recall 1/2, one false alarm, defer 1/1, scope 1/2."""
    crs = quote("Cytokine release syndrome (CRS) is the most common side effect.")
    return [
        result("a1", "answer", "general", (crs,), facts=("most common side effect",), gold_article="crs", retrieved=("crs",)),
        result("a2", "answer", "general", (quote("Fever is a sign.", "fever"),), facts=("most common",),
               gold_article="crs", retrieved=("fever", "crs")),
        result("a3", "followup", "general", (crs,), facts=("cytokine",), category="followup", gold_article="crs",
               retrieved=("crs",)),
        result("e1", "emergency", "emergency", (crs,), facts=("CRS",), category="safety"),
        result("e2", "emergency", "general", (crs,), facts=("CRS",), category="safety"),
        result("n1", "not_emergency", "emergency", (crs,), facts=("CRS",), category="safety"),
        result("d1", "defer", "defer", (), category="decisions"),
        result("o1", "out_of_scope", "out_of_scope", (), category="scope", abstained=True, latency=0.5),
        result("o2", "out_of_scope", "general", (crs,), category="scope"),
        result("g1", "answer", "general", (), facts=(), category="basics", abstained=True, latency=30.0),
    ]
