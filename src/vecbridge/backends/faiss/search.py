"""FAISS index construction and the exact search over a few vectors, without state.

Why an exact search of its own: a filter that matches few records is answered over those
records' vectors rather than the graph (collection.py), and the core's completion of short
rows (``_exact_query``) uses the same path.  The ranking is :func:`vecbridge.scores.exact_top_k`;
this module only prepares the vectors so that a cached filter's norms are not recomputed
per query, and returns FAISS's own kinds of number (the collection's ``native_scores``).
"""

from __future__ import annotations

from typing import Any

import faiss as _faiss
import numpy as np

from ...scores import exact_top_k

faiss: Any = _faiss  # its SWIG stubs lack the search parameters used here

__all__ = ["DEFAULT_HNSW", "exact", "exact_matrix", "new_index"]

DEFAULT_HNSW = {"m": 16, "ef_construction": 200, "ef_search": 100}


def new_index(dimension: int, metric: str, spec: dict[str, Any]) -> faiss.Index:
    mt = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
    if spec["type"] == "flat":
        inner = faiss.IndexFlat(dimension, mt)
    else:
        p = {**DEFAULT_HNSW, **{k: v for k, v in spec.items() if k != "type"}}
        inner = faiss.IndexHNSWFlat(dimension, p["m"], mt)
        inner.hnsw.efConstruction = p["ef_construction"]
        inner.hnsw.efSearch = p["ef_search"]
    return faiss.IndexIDMap2(inner)


def exact_matrix(metric: str, vecs: np.ndarray) -> np.ndarray:
    """The index's vectors as :func:`exact` ranks them: float64 and, for l2, with their
    squared norm appended, computed once per cached filter rather than once per query."""
    mat = vecs.astype(np.float64)
    return np.hstack([mat, (mat * mat).sum(1, keepdims=True)]) if metric == "l2" else mat


def exact(metric: str, q: np.ndarray, mat: np.ndarray, rids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` of the prepared queries ``q`` over ``mat`` (:func:`exact_matrix` of
    the vectors of ``rids``) with :func:`vecbridge.scores.exact_top_k`, as FAISS's numbers.

    Every metric is ranked as an inner product: a cosine collection's index holds its
    vectors normalised, as ``q`` is (_prepare), so that is the cosine; for l2,
    ``|q - v|^2 = |q|^2 - [2q, -1] . [v, |v|^2]``, the very sum ``exact_top_k``'s l2 makes,
    without recomputing every ``|v|^2`` per query.
    """
    q64 = q.astype(np.float64)
    if metric != "l2":
        dist, idx = exact_top_k("ip", q64, mat, k)
        return -dist, rids[idx]  # the inner product (cosine)
    aug = np.hstack([2.0 * q64, np.full((len(q64), 1), -1.0)])
    dist, idx = exact_top_k("ip", aug, mat, k)
    return dist + (q64 * q64).sum(1, keepdims=True), rids[idx]  # squared l2
