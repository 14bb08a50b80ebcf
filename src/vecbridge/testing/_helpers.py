"""Shared helpers of the suite's test modules."""

from __future__ import annotations

from typing import Any

import numpy as np

from .data import BackendUnderTest, Dataset, make_dataset
from .gaps import has_index


def exact_index(backend: BackendUnderTest) -> dict[str, Any] | None:
    """An exact index where the suite's own table (:mod:`.gaps`) says the backend has one,
    else its default: test data wants exact answers, and what the backend declares about
    itself is not what the suite trusts."""
    return {"type": "flat"} if has_index(backend.name, "flat") else None


def filled(make_collection: Any, backend: BackendUnderTest, metric: str = "cosine", n: int = 120,
           dimension: int = 16, seed: int = 7) -> tuple[Any, Dataset]:
    ds = make_dataset(n, dimension, seed)
    coll = make_collection(dimension=dimension, metric=metric, index=exact_index(backend))
    coll.add(ds.ids, ds.vectors, ds.metadatas, ds.documents)
    return coll, ds


def assert_same_vector(got: Any, want: Any) -> None:
    got = np.asarray(got)
    assert got.dtype == np.float32, f"vectors come back as float32, got {got.dtype}"
    np.testing.assert_array_equal(got, np.asarray(want, dtype=np.float32))


def assert_same_metadata(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert got == want
    for key, value in want.items():  # == says 1 == 1.0 == True: the types must match too
        g = got[key]
        assert type(g) is type(value), f"{key!r}: {type(g).__name__} came back for {type(value).__name__}"
        if isinstance(value, list):
            assert [type(x) for x in g] == [type(x) for x in value], f"{key!r}: list item types changed"
