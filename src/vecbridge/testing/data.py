"""Test data and the independent answers (numpy brute force) the suite compares with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..scores import brute_force_distances


@dataclass(frozen=True)
class BackendUnderTest:
    """One configured backend: a name (``family-form``) and a URL to connect to."""

    name: str
    url: str
    persistent: bool = True  # records survive closing and reconnecting

    @property
    def family(self) -> str:
        return self.name.split("-", 1)[0]


@dataclass
class Dataset:
    ids: list[str]
    vectors: np.ndarray
    metadatas: list[dict[str, Any]]
    documents: list[str | None]
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)


GENRES = ["jazz", "rock", "pop", "folk", "it's \"quoted\"", "ünïcödé"]


def make_dataset(n: int = 120, dimension: int = 16, seed: int = 7) -> Dataset:
    """Records whose metadata exercise every type, missing keys, lists and odd key names."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dimension)).astype(np.float32)
    ids, metas, docs = [], [], []
    for i in range(n):
        ids.append(f"rec-{i:04d}")
        m: dict[str, Any] = {}
        if i % 7 != 3:
            m["genre"] = GENRES[i % len(GENRES)]
        if i % 5 != 1:
            m["year"] = 1980 + (i * 7) % 40  # int
        if i % 4 == 0:
            m["rating"] = float((i % 10) / 2)  # float, some integral: 0.0, 1.0 …
        elif i % 4 == 1:
            m["rating"] = i % 6  # an int under the same key
        if i % 3 == 0:
            m["live"] = bool(i % 2)
        if i % 11 == 5:
            m["live"] = i % 2  # a number where others hold bools
        if i % 2 == 0:
            m["tags"] = [t for t, bit in zip(["live", "studio", "remaster", "rare"], [i % 3 == 0, i % 4 == 0, i % 5 == 0, i % 9 == 0]) if bit]
        if i % 6 == 2:
            m["nums"] = [i % 4, (i + 1) % 4]
        if i % 10 == 7:
            m["genre"] = ["jazz", "rock"]  # a list where others hold a string
        if i % 8 == 6:
            m["a.b"] = i % 3
        if i % 9 == 4:
            m["with space"] = "x" if i % 2 else "y"
        metas.append(m)
        docs.append(None if i % 13 == 0 else f"document {i}")
    return Dataset(ids, vectors, metas, docs)


def brute_force(metric: str, queries: Any, vectors: Any, ids: list[str], k: int,
                mask: np.ndarray | None = None) -> list[list[tuple[str, float]]]:
    """The exact top-k (id, distance) of each query under the contract's distances."""
    d = brute_force_distances(metric, np.atleast_2d(queries), vectors)
    out = []
    for row in d:
        order = np.argsort(row, kind="stable")
        if mask is not None:
            order = order[mask[order]]
        out.append([(ids[j], float(row[j])) for j in order[:k]])
    return out
