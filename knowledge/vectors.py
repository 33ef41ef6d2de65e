"""The FAISS index over chunk vectors: exact inner product (unit vectors, so cosine) with stable ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from knowledge.settings import IndexSettings


def new_vector_index(dimension: int, size: int, settings: IndexSettings = IndexSettings()):
    """IndexIDMap2(IndexFlatIP) for our sizes; HNSW (ids kept by the map) from `settings.approximate_from` chunks.

    The switch point and the HNSW parameters are measured by `patient-qa bench` (see IndexSettings).
    """
    import faiss

    inner: faiss.Index
    if size >= settings.approximate_from:
        inner = faiss.IndexHNSWFlat(dimension, settings.hnsw_neighbours, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = settings.hnsw_ef_construction
        inner.hnsw.efSearch = settings.hnsw_ef_search
    else:
        inner = faiss.IndexFlatIP(dimension)
    return faiss.IndexIDMap2(inner)


def build_vector_index(vectors: np.ndarray, ids: np.ndarray, settings: IndexSettings = IndexSettings()):
    """A filled index: row i of `vectors` is findable under `ids[i]`."""
    index = new_vector_index(vectors.shape[1], len(ids), settings)
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
    return index


def save_vector_index(index, path: Path) -> None:
    """FAISS's own format."""
    import faiss

    faiss.write_index(index, str(path))


def load_vector_index(path: Path):
    """Read what `save_vector_index` wrote."""
    import faiss

    return faiss.read_index(str(path))


def reconstruct(index, ids: list[int]) -> np.ndarray:
    """Stored vectors by id, so unchanged documents are never re-embedded."""
    if not ids:
        return np.zeros((0, index.d), dtype=np.float32)
    return np.vstack([index.reconstruct(int(i)) for i in ids]).astype(np.float32)


def search_vectors(index, query: np.ndarray, k: int) -> list[tuple[int, float]]:
    """Top-k (id, cosine) for one unit query vector."""
    if index.ntotal == 0:
        return []
    scores, ids = index.search(query.reshape(1, -1).astype(np.float32), min(k, index.ntotal))
    return [(int(i), float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0]
