"""Conformance: top-k, scores and distances against numpy brute force."""

from __future__ import annotations

import numpy as np
import pytest

from vecbridge import Hit, filters

from ._helpers import assert_same_metadata, assert_same_vector, filled
from .data import brute_force

TOL = 1e-4


def _check(hits: list[Hit], expected: list[tuple[str, float]], metric: str) -> None:
    assert len(hits) == len(expected)
    got_d = [h.distance for h in hits]
    want_d = [d for _, d in expected]
    np.testing.assert_allclose(got_d, want_d, rtol=TOL, atol=TOL)
    assert got_d == sorted(got_d), "hits come best first"
    # ties may come in any order: compare ids where the distance is unambiguous
    by_id = dict(expected)
    for h in hits:
        if h.id in by_id:
            assert abs(h.distance - by_id[h.id]) <= TOL * max(1.0, abs(by_id[h.id]))
    assert {h.id for h in hits} == {i for i, _ in expected} or _tied(expected, hits)
    for h in hits:
        want_score = {"cosine": 1.0 - h.distance, "l2": -h.distance, "ip": -h.distance}[metric]
        assert abs(h.score - want_score) <= 1e-6 * max(1.0, abs(want_score))


def _tied(expected: list[tuple[str, float]], hits: list[Hit]) -> bool:
    last = expected[-1][1]
    return all(abs(h.distance - last) <= TOL for h in hits if h.id not in dict(expected))


@pytest.mark.needs("ids", "vectors")
@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_topk_matches_brute_force(shared_collection, metric):
    coll, ds = shared_collection(metric)
    rng = np.random.default_rng(11)
    queries = rng.normal(size=(5, 16)).astype(np.float32)
    want = brute_force(metric, queries, ds.vectors, ds.ids, 10)
    got = coll.query(queries, k=10)
    assert isinstance(got, list) and len(got) == 5
    for hits, exp in zip(got, want):
        _check(hits, exp, metric)
    single = coll.query(queries[0], k=10)
    assert isinstance(single, list) and all(isinstance(h, Hit) for h in single)
    _check(single, want[0], metric)


@pytest.mark.needs("ids", "vectors")
@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_self_query_scores(shared_collection, metric):
    coll, ds = shared_collection(metric)
    v = ds.vectors[7]
    hits = coll.query(v, k=40)
    top = {"cosine": 0, "l2": 0, "ip": None}[metric]
    if top is not None:
        assert hits[0].id == ds.ids[7]
        assert abs(hits[0].distance) <= TOL
    if metric == "cosine":
        assert abs(hits[0].score - 1.0) <= TOL
    if metric == "ip":
        best = int(np.argmax(ds.vectors @ v))
        assert hits[0].id == ds.ids[best]
        assert abs(hits[0].score - float(ds.vectors[best] @ v)) <= 1e-3


@pytest.mark.needs("ids", "vectors")
def test_k_larger_than_collection(shared_collection):
    coll, ds = shared_collection("l2")
    hits = coll.query(ds.vectors[0], k=len(ds) + 30)
    assert sorted(h.id for h in hits) == sorted(ds.ids)


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
@pytest.mark.parametrize("where", [
    {"genre": "jazz"},
    {"year": {"$gte": 2010}},
    {"tags": {"$contains": "rare"}},
    {"live": True},
    {"$not": {"genre": "rock"}},
])
def test_filtered_query_returns_k_best_matches(shared_collection, metric, where):
    coll, ds = shared_collection(metric)
    mask = np.array([filters.evaluate(where, m) for m in ds.metadatas])
    assert 0 < mask.sum() < len(ds)
    rng = np.random.default_rng(5)
    queries = rng.normal(size=(3, 16)).astype(np.float32)
    k = 8
    want = brute_force(metric, queries, ds.vectors, ds.ids, k, mask=mask)
    for hits, exp in zip(coll.query(queries, k=k, where=where), want):
        assert len(hits) == min(k, int(mask.sum())), "a filtered query returns k hits when k records match"
        _check(hits, exp, metric)


def test_query_include(shared_collection):
    coll, ds = shared_collection("cosine")
    hit = coll.query(ds.vectors[3], k=1, include=["vector", "metadata", "document"])[0]
    assert hit.id == ds.ids[3]
    assert_same_vector(hit.vector, ds.vectors[3])
    assert_same_metadata(hit.metadata, ds.metadatas[3])
    assert hit.document == ds.documents[3]
    bare = coll.query(ds.vectors[3], k=1, include=[])[0]
    assert bare.id == ds.ids[3] and bare.vector is None and bare.metadata is None and bare.document is None
    default = coll.query(ds.vectors[3], k=1)[0]
    assert default.metadata == ds.metadatas[3] and default.vector is None


def test_query_after_updates_and_deletes(make_collection, vb_backend):
    coll, ds = filled(make_collection, vb_backend, metric="l2", n=50)
    coll.delete(ds.ids[:10])
    moved = ds.vectors[20] + 100
    coll.upsert([ds.ids[20]], [moved])
    hits = coll.query(ds.vectors[0], k=50)
    assert not {h.id for h in hits} & set(ds.ids[:10])
    assert len(hits) == 40
    assert coll.query(moved, k=1)[0].id == ds.ids[20]
