"""Qdrant answers the core's exact top-k hook itself: ``_exact_query`` is a native search
with ``SearchParams(exact=True)`` (none in local mode, which always searches exactly), the
filter applied inside Qdrant, its values of the kind ``exact_scores`` says.

Expected answers: numpy brute force (``vecbridge.scores.brute_force_distances``) over the
records that ``vecbridge.filters.evaluate`` says match.  With ``VECBRIDGE_TEST_QDRANT_URL``
set, the public query on an HNSW collection where few matches are spread through many
points (the case where a filtered HNSW search comes back short) is checked the same way.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import vecbridge
from vecbridge import filters
from vecbridge.base import BaseCollection
from vecbridge.scores import brute_force_distances, converter

pytest.importorskip("qdrant_client")

FORMS = ["memory", "disk"] + (["server"] if os.environ.get("VECBRIDGE_TEST_QDRANT_URL") else [])


def _url(form, tmp_path):
    return {"memory": "qdrant://", "disk": f"qdrant:///{tmp_path}/q"}.get(form) or os.environ["VECBRIDGE_TEST_QDRANT_URL"]


def _expected(metric, queries, vectors, metas, where, k):
    keep = [i for i, m in enumerate(metas) if filters.evaluate(where, m)]
    d = brute_force_distances(metric, queries, vectors[keep])
    return [[(f"r{keep[j]}", float(row[j])) for j in np.argsort(row, kind="stable")[:k]] for row in d]


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_exact_query_is_native_and_equals_brute_force(form, metric, tmp_path):
    rng = np.random.default_rng(7)
    n, dim, k = 300, 16, 10
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    metas = [{"g": int(i % 7), "x": float(i)} for i in range(n)]
    queries = rng.normal(size=(3, dim)).astype(np.float32)
    where = {"$or": [{"g": 3}, {"x": {"$lt": 20}}]}
    with vecbridge.connect(_url(form, tmp_path)) as client:
        name = f"exact_{metric}_{form}"
        if name in client.list_collections():
            client.delete_collection(name)
        coll = client.create_collection(name, dim, metric, index={"type": "hnsw", "m": 4, "ef_search": 4})
        try:
            assert type(coll)._exact_query is not BaseCollection._exact_query
            coll.add([f"r{i}" for i in range(n)], vectors, metas)
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # local mode warns on search params it ignores: none sent
                rows = coll._exact_query(queries, k, filters.parse(where), frozenset({"metadata"}))
            conv = converter(metric, coll.exact_scores[metric])
            want = _expected(metric, queries, vectors, metas, where, k)
            for row, exp in zip(rows, want):
                got = sorted(((h.id, conv(h.value)[1]) for h in row), key=lambda t: t[1])
                assert [i for i, _ in got] == [i for i, _ in exp]
                np.testing.assert_allclose([d for _, d in got], [d for _, d in exp], rtol=1e-4, atol=1e-4)
                assert all(filters.evaluate(where, h.metadata) for h in row)
        finally:
            client.delete_collection(name)


@pytest.mark.parametrize("form", FORMS)
def test_filtered_query_with_few_spread_matches_is_the_exact_top_k(form, tmp_path):
    rng = np.random.default_rng(11)
    n, dim, k = 2000, 32, 10
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    metas = [{"rare": i % 125 == 0} for i in range(n)]  # 16 matches spread through the collection
    queries = rng.normal(size=(4, dim)).astype(np.float32)
    where = {"rare": True}
    with vecbridge.connect(_url(form, tmp_path)) as client:
        name = f"spread_{form}"
        if name in client.list_collections():
            client.delete_collection(name)
        coll = client.create_collection(name, dim, "l2", index={"type": "hnsw", "m": 4, "ef_construction": 8,
                                                               "ef_search": 1})
        try:
            coll.add([f"r{i}" for i in range(n)], vectors, metas)
            got = coll.query(queries, k=k, where=where)
            for row, exp in zip(got, _expected("l2", queries, vectors, metas, where, k)):
                assert [h.id for h in row] == [i for i, _ in exp]
                np.testing.assert_allclose([h.distance for h in row], [d for _, d in exp], rtol=1e-4, atol=1e-4)
        finally:
            client.delete_collection(name)
