"""Exact top-k on FAISS: a graph search that comes back short is completed to the exact answer
(by the core, through the backend's ``_exact_query``); small filters are searched exactly.
Expected answers are numpy brute force written here, not vecbridge's own."""

from __future__ import annotations

import numpy as np
import pytest

import vecbridge
from vecbridge.backends.faiss import collection as faiss_collection

pytest.importorskip("faiss")

N, DIM, K = 4000, 16, 20


def numpy_top_k(metric: str, q: np.ndarray, X: np.ndarray, k: int) -> tuple[list[int], np.ndarray]:
    q64, X64 = q.astype(np.float64), X.astype(np.float64)
    if metric == "l2":
        d = np.sqrt(((X64 - q64) ** 2).sum(1))
    elif metric == "ip":
        d = -(X64 @ q64)
    else:
        d = 1.0 - (X64 @ q64) / (np.linalg.norm(X64, axis=1) * np.linalg.norm(q64))
    order = np.argsort(d, kind="stable")[:k]
    return order.tolist(), d[order]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(N, DIM)).astype(np.float32)
    rare = np.zeros(N, dtype=bool)
    rare[rng.choice(N, 60, replace=False)] = True  # few matches, spread over the graph
    Q = rng.normal(size=(8, DIM)).astype(np.float32)
    return X, rare, Q


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
def test_short_graph_rows_are_completed_to_the_exact_top_k(data, metric, monkeypatch, tmp_path):
    X, rare, Q = data
    monkeypatch.setattr(faiss_collection, "EXACT_LIMIT", 0)  # every filter goes to the graph
    ids = [f"r{i}" for i in range(N)]
    with vecbridge.connect(f"faiss:///{tmp_path}") as client:
        coll = client.create_collection("short", DIM, metric,
                                        index={"type": "hnsw", "m": 4, "ef_construction": 16, "ef_search": 1})
        coll.add(ids, X, [{"rare": bool(r)} for r in rare])
        node = coll._parse_where({"rare": True})
        raw = coll._query(Q, K, node, frozenset())
        assert any(len(row) < K for row in raw), "the graph search must come back short for this test"
        got = coll.query(Q, k=K, where={"rare": True}, include=[])
    pos = np.nonzero(rare)[0]
    for qi, row in enumerate(got):
        want, dist = numpy_top_k(metric, Q[qi], X[pos], K)
        assert [h.id for h in row] == [ids[pos[j]] for j in want]
        np.testing.assert_allclose([h.distance for h in row], dist, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
def test_small_filters_are_searched_exactly(data, metric):
    X, rare, Q = data
    ids = [f"r{i}" for i in range(N)]
    with vecbridge.connect("faiss://") as client:
        coll = client.create_collection("small", DIM, metric,
                                        index={"type": "hnsw", "m": 4, "ef_construction": 16, "ef_search": 1})
        coll.add(ids, X, [{"rare": bool(r)} for r in rare])
        got = coll.query(Q, k=K, where={"rare": True}, include=[])
        few = coll.query(Q[0], k=K, where={"$and": [{"rare": True}, {"rare": {"$ne": False}}]}, include=[])
    pos = np.nonzero(rare)[0]
    for qi, row in enumerate(got):
        want, dist = numpy_top_k(metric, Q[qi], X[pos], K)
        assert [h.id for h in row] == [ids[pos[j]] for j in want]
        np.testing.assert_allclose([h.distance for h in row], dist, rtol=1e-4, atol=1e-4)
        assert all(abs(h.score - (-h.distance if metric != "cosine" else 1 - h.distance)) < 1e-9 for h in row)
    assert [h.id for h in few] == [h.id for h in got[0]]


def test_unfiltered_exact_query_over_a_graph_with_tombstones(data):
    X, _, Q = data
    ids = [f"r{i}" for i in range(N)]
    with vecbridge.connect("faiss://") as client:
        coll = client.create_collection("tomb", DIM, "l2", index={"type": "hnsw", "m": 4, "ef_search": 1})
        coll.add(ids, X)
        coll.delete(ids[:500])  # tombstoned in the graph, never returned
        rows = coll._exact_query(Q, K, None, frozenset())
    for qi, row in enumerate(rows):
        want, dist = numpy_top_k("l2", Q[qi], X[500:], K)
        assert [h.id for h in row] == [ids[500 + j] for j in want]
        np.testing.assert_allclose([h.value for h in row], dist ** 2, rtol=1e-4, atol=1e-4)  # squared l2
