"""Qdrant local mode: ``scan`` with small batches is cheap and still exact.

Each local-mode scroll call sorts and filters the whole collection, whatever its limit,
so the number of native scroll calls is what a scan costs.  The native ``scroll`` is
wrapped to count the calls and record their limits; the records come from the real engine.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import vecbridge

pytest.importorskip("qdrant_client")

N = 2345


@pytest.fixture(scope="module", params=["memory", "disk"])
def coll(request, tmp_path_factory):
    url = "qdrant://" if request.param == "memory" else f"qdrant:///{tmp_path_factory.mktemp('scan')}/q"
    client = vecbridge.connect(url)
    c = client.create_collection("scanned", 8, "cosine")
    rng = np.random.default_rng(3)
    c.vectors = rng.normal(size=(N, 8)).astype(np.float32)
    c.add([f"k{i}" for i in range(N)], c.vectors, [{"i": i} for i in range(N)], [f"doc {i}" for i in range(N)])
    yield c
    client.close()


@pytest.fixture
def scroll_limits(coll, monkeypatch):
    limits: list[int] = []
    real = coll._native.scroll

    def scroll(*args, **kwargs):
        limits.append(kwargs["limit"])
        return real(*args, **kwargs)

    monkeypatch.setattr(coll._native, "scroll", scroll)
    return limits


@pytest.mark.parametrize("batch_size", [1, 7, 999, 1000, 1001, 5000])
def test_scan_gives_every_record_once_in_the_callers_batch_size(coll, scroll_limits, batch_size):
    batches = list(coll.scan(batch_size=batch_size))
    sizes = [len(b) for b in batches]
    assert sizes == [batch_size] * (N // batch_size) + ([N % batch_size] if N % batch_size else [])
    got = {r.id: r for b in batches for r in b}
    assert len(got) == N
    for i in range(N):
        r = got[f"k{i}"]
        assert r.metadata == {"i": i} and r.document == f"doc {i}"
        np.testing.assert_array_equal(r.vector, coll.vectors[i])
    # native pages of at least 1,000 points, never more than the larger of that and the batch
    page = max(batch_size, 1000)
    assert len(scroll_limits) <= math.ceil(N / page) + 1
    assert max(scroll_limits) <= page


def test_scan_stops_early_without_reading_the_rest(coll, scroll_limits):
    it = coll.scan(batch_size=7)
    first = next(it)
    assert len(first) == 7
    assert len(scroll_limits) == 1
