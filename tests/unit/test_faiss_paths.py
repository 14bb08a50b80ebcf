"""FAISS search paths the small conformance data does not reach: large filters, tombstones."""

from __future__ import annotations

import numpy as np
import pytest

import vecbridge
from vecbridge.backends.faiss.collection import EXACT_LIMIT
from vecbridge.testing import brute_force

pytest.importorskip("faiss")


@pytest.fixture
def big():
    n = EXACT_LIMIT + 2000
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, 8)).astype(np.float32)
    ids = [f"r{i}" for i in range(n)]
    metas = [{"cat": i % 6} for i in range(n)]
    with vecbridge.connect("faiss://") as client:
        coll = client.create_collection("big", 8, "l2", index={"type": "hnsw", "m": 16, "ef_search": 200})
        coll.add(ids, X, metas)
        yield coll, X, ids, metas


def test_large_filter_uses_the_graph_and_returns_k_matches(big):
    coll, X, ids, metas = big
    mask = np.array([m["cat"] != 0 for m in metas])
    assert mask.sum() > EXACT_LIMIT  # the selector path, not the exact one
    Q = np.random.default_rng(2).normal(size=(20, 8)).astype(np.float32)
    want = brute_force("l2", Q, X, ids, 10, mask=mask)
    got = coll.query(Q, k=10, where={"cat": {"$ne": 0}})
    recall = np.mean([len({h.id for h in g} & {i for i, _ in w}) / 10 for g, w in zip(got, want)])
    assert recall >= 0.95
    for row in got:
        assert len(row) == 10 and all(h.metadata["cat"] != 0 for h in row)


def test_deleted_points_never_come_back(big):
    coll, X, ids, _ = big
    gone = set(ids[:1500])
    coll.delete(ids=list(gone))
    Q = X[:30]  # the deleted records' own vectors
    for row in coll.query(Q, k=10, include=[]):
        assert len(row) == 10 and not {h.id for h in row} & gone
    coll.upsert(ids[:5], X[:5])  # re-added under new row ids
    assert coll.query(X[0], k=1)[0].id == ids[0]
