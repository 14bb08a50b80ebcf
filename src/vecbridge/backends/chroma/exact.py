"""Exact top-k over the records a Chroma filter selects: the fallback of a short HNSW answer.

Chroma's HNSW search with a filter walks the graph and can miss matching records that
are reachable only through non-matching ones; it has no exact index and no brute-force
path that a client can ask for.  When a query row comes back with fewer hits than
matching records, :func:`exact_top_k` pages through the records the *native* filter
selects (their vectors only) and ranks them with numpy in Chroma's own distances.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PAGE = 10_000


def native_distances(metric: str, queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Chroma's numbers: squared l2, ``1 - dot``, ``1 - cos`` (float64)."""
    q = np.asarray(queries, dtype=np.float64)
    v = np.asarray(vectors, dtype=np.float64)
    if metric == "l2":
        return np.maximum((q * q).sum(1)[:, None] + (v * v).sum(1)[None, :] - 2.0 * q @ v.T, 0.0)
    if metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        v = np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)
    return 1.0 - q @ v.T


def exact_top_k(native: Any, metric: str, queries: np.ndarray, k: int,
                where: dict[str, Any] | None) -> list[list[tuple[str, float]]]:
    """The exact ``k`` best ``(id, native distance)`` among the records Chroma's filter ``where`` selects."""
    nq = len(queries)
    best_d = np.empty((nq, 0))
    best_i = np.empty((nq, 0), dtype=object)
    offset = 0
    while True:  # pages of vectors only: memory stays bounded by PAGE
        got = native.get(where=where, include=["embeddings"], limit=PAGE, offset=offset or None)
        ids = got["ids"]
        if ids:
            d = native_distances(metric, queries, got["embeddings"])
            best_d = np.hstack([best_d, d])
            best_i = np.hstack([best_i, np.broadcast_to(np.array(ids, dtype=object), d.shape)])
            order = np.argsort(best_d, axis=1, kind="stable")[:, :k]
            best_d = np.take_along_axis(best_d, order, axis=1)
            best_i = np.take_along_axis(best_i, order, axis=1)
        if len(ids) < PAGE:
            break
        offset += len(ids)
    return [[(str(i), float(d)) for i, d in zip(best_i[r], best_d[r])] for r in range(nq)]
