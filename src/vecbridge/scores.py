"""Score conversion: a backend's native number -> the contract's distance and score.

=========  =========================  =====================
metric     ``distance`` (lower closer)  ``score`` (higher closer)
=========  =========================  =====================
cosine     1 - cos(q, v)              cos(q, v)
l2         ||q - v||  (not squared)   -distance
ip         -(q . v)                   q . v
=========  =========================  =====================

A backend declares, per metric, which kind of number it returns; nothing else
about scores is decided in a backend.
"""

from __future__ import annotations

import math
from typing import Literal

__all__ = ["NativeKind", "brute_force_distances", "convert", "converter", "exact_top_k"]

#: What a backend's number is:
#: ``distance``: already the contract's distance;
#: ``squared_l2``: the square of the l2 distance;
#: ``similarity``: cos (cosine) or dot (ip);
#: ``one_minus_similarity``: 1 - cos or 1 - dot;
#: ``neg_similarity``: -cos or -dot.
NativeKind = Literal["distance", "squared_l2", "similarity", "one_minus_similarity", "neg_similarity"]


def convert(metric: str, kind: str, value: float) -> tuple[float, float]:
    """Return ``(score, distance)`` for a native ``value`` of ``kind`` under ``metric``."""
    value = float(value)
    if kind == "squared_l2":
        if metric != "l2":
            raise ValueError(f"squared_l2 is not a native kind for {metric}")
        d = math.sqrt(value) if value > 0.0 else 0.0
        return -d, d
    if kind == "distance":
        d = value
    elif kind == "similarity":
        if metric == "l2":
            raise ValueError("similarity is not a native kind for l2")
        return value, (1.0 - value if metric == "cosine" else -value)
    elif kind == "one_minus_similarity":
        s = 1.0 - value
        return s, (1.0 - s if metric == "cosine" else -s)
    elif kind == "neg_similarity":
        s = -value
        return s, (1.0 - s if metric == "cosine" else -s)
    else:
        raise ValueError(f"unknown native score kind {kind!r}")
    if metric == "cosine":
        return 1.0 - d, d
    return -d, d  # l2: score = -distance; ip: distance = -dot, score = dot


def converter(metric: str, kind: str):  # type: ignore[no-untyped-def]
    """:func:`convert` for one (metric, kind), as a function of the native value alone: the
    decision is taken once per query rather than once per hit."""
    convert(metric, kind, 1.0)  # refuses a pair that makes no sense
    if kind == "squared_l2":
        def f(value: float) -> tuple[float, float]:
            d = math.sqrt(value) if value > 0.0 else 0.0
            return -d, d
    elif kind == "similarity":
        if metric == "cosine":
            def f(value: float) -> tuple[float, float]:
                return value, 1.0 - value
        else:
            def f(value: float) -> tuple[float, float]:
                return value, -value
    elif kind == "distance" and metric != "cosine":
        def f(value: float) -> tuple[float, float]:
            return -value, value
    else:
        def f(value: float) -> tuple[float, float]:
            return convert(metric, kind, value)
    return f


def brute_force_distances(metric: str, queries, vectors):  # type: ignore[no-untyped-def]
    """Contract distances of every query to every vector, with numpy (float64)."""
    import numpy as np

    q = np.asarray(queries, dtype=np.float64)
    v = np.asarray(vectors, dtype=np.float64)
    if metric == "l2":
        d2 = (q * q).sum(1)[:, None] + (v * v).sum(1)[None, :] - 2.0 * q @ v.T
        return np.sqrt(np.maximum(d2, 0.0))
    if metric == "ip":
        return -(q @ v.T)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    vn = v / np.linalg.norm(v, axis=1, keepdims=True)
    return 1.0 - qn @ vn.T


def exact_top_k(metric: str, queries, vectors, k: int):  # type: ignore[no-untyped-def]
    """The one brute-force search: ``(distances, indices)`` of the ``k`` nearest rows of
    ``vectors`` to each query, best first, in the contract's distances.  Rows are fewer
    than ``k`` when ``vectors`` has fewer rows.  Ties keep the vectors' order."""
    import numpy as np

    d = brute_force_distances(metric, queries, vectors)
    n = d.shape[1]
    kk = min(int(k), n)
    if kk == 0:
        return np.empty((d.shape[0], 0)), np.empty((d.shape[0], 0), dtype=np.int64)
    part = np.argpartition(d, kk - 1, axis=1)[:, :kk] if kk < n else np.tile(np.arange(n), (d.shape[0], 1))
    rows = np.arange(d.shape[0])[:, None]
    order = np.lexsort((part, d[rows, part]), axis=1)
    best = part[rows, order]
    return d[rows, best], best
