"""Conformance: every filter operator against the reference evaluator."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from vecbridge import errors, filters

from .data import GENRES, make_dataset
from .gaps import differing_gap, filter_gap

CASES: list[dict[str, Any]] = [
    {"genre": "jazz"},
    {"genre": {"$eq": "ünïcödé"}},
    {"genre": "it's \"quoted\""},
    {"genre": {"$ne": "jazz"}},
    {"year": 1990},
    {"year": 1990.0},
    {"year": {"$ne": 1990}},
    {"year": {"$gt": 2000}},
    {"year": {"$gte": 2000, "$lt": 2010}},
    {"year": {"$lte": 1985.5}},
    {"rating": 1},
    {"rating": 1.0},
    {"rating": {"$gt": 0.5}},
    {"rating": {"$lt": 3}},
    {"live": True},
    {"live": False},
    {"live": 1},
    {"live": {"$ne": True}},
    {"live": {"$gt": 0}},
    {"genre": {"$in": ["jazz", "pop"]}},
    {"genre": {"$nin": ["jazz", "pop"]}},
    {"year": {"$in": [1987, 2001.0, 1999]}},
    {"year": {"$nin": [1987, 1994]}},
    {"live": {"$in": [True]}},
    {"live": {"$in": [1, "x"]}},
    {"tags": {"$contains": "live"}},
    {"tags": {"$contains": "rare"}},
    {"nums": {"$contains": 1}},
    {"nums": {"$contains": 1.0}},
    {"genre": {"$contains": "jazz"}},
    {"tags": "live"},
    {"tags": {"$ne": "live"}},
    {"genre": {"$gt": 1}},
    {"a.b": 1},
    {"a.b": {"$ne": 1}},
    {"with space": "x"},
    {"missing": {"$ne": 1}},
    {"missing": {"$nin": [1]}},
    {"missing": 1},
    {"$and": [{"genre": "jazz"}, {"year": {"$gt": 1990}}]},
    {"$or": [{"genre": "jazz"}, {"tags": {"$contains": "live"}}]},
    {"$not": {"genre": "jazz"}},
    {"$not": {"year": {"$gt": 2000}}},
    {"$not": {"$or": [{"genre": "rock"}, {"live": True}]}},
    {"$not": {"$and": [{"tags": {"$contains": "live"}}, {"rating": {"$gte": 1}}]}},
    {"$or": [{"$not": {"genre": {"$in": ["jazz", "rock"]}}}, {"year": {"$nin": [1980, 2019]}}]},
    {"genre": "rock", "year": {"$lt": 2000}},
    {"genre": "' OR 1=1 --"},
    {"' OR 1=1 --": "x"},
    {"genre": "\"); DROP TABLE records; --"},
    {"genre": {"$exists": True}},
    {"missing": {"$exists": True}},
    {"missing": {"$exists": False}},
    {"tags": {"$exists": True}},
    {"rating": {"$exists": False}},
    {"$not": {"live": {"$exists": True}}},
    {"$or": [{"genre": {"$exists": False}}, {"year": {"$gt": 2010}}]},
]


def _expected(ds: Any, where: Any) -> set[str]:
    return {i for i, m in zip(ds.ids, ds.metadatas) if filters.evaluate(where, m)}


@pytest.fixture
def filter_collection(shared_collection):
    return shared_collection("l2")


@pytest.mark.parametrize("where", CASES, ids=[str(c) for c in CASES])
def test_filter_matches_reference(vb_backend, vb_layout, filter_collection, where):
    coll, ds = filter_collection
    want = _expected(ds, where)
    try:
        got = coll.count(where)
    except errors.UnsupportedFilterError as exc:
        refused_as_allowed(vb_backend.name, where, exc, vb_layout)
        return
    assert got == len(want)
    assert {r.id for r in coll.get(where=where, limit=1000, include=[])} == want
    hits = coll.query(ds.vectors[0], k=len(ds), where=where, include=[])
    assert {h.id for h in hits} == want


def test_get_by_ids_and_where(filter_collection):
    coll, ds = filter_collection
    where = {"genre": "jazz"}
    got = [r.id for r in coll.get(ds.ids[:30], where=where)]
    assert got == [i for i in ds.ids[:30] if i in _expected(ds, where)]


@pytest.mark.needs("ids", "vectors")
@pytest.mark.parametrize("where", [
    "genre = 'jazz'", {"genre": {"$regex": "j.*"}}, {"$nor": [{"a": 1}]}, {"year": {"$gt": "2000"}},
    {"year": {"$gt": True}}, {"genre": {"$in": []}}, {"genre": {"$in": "jazz"}}, {"genre": ["jazz"]},
    {"genre": {"jazz": 1}}, {"$and": []}, {"$or": {"a": 1}}, {"x": {"$eq": [1]}}, {"x": {"$eq": None}},
    {"x": float("nan")}, {"_vb_id": "a"}, {"$not": []},
])
def test_invalid_filters_refused(filter_collection, where):
    coll, _ = filter_collection
    with pytest.raises(errors.InvalidFilterError):
        coll.count(where)
    with pytest.raises(errors.InvalidFilterError):
        coll.query([0.0] * 16, k=1, where=where)


# -- property-based: generated filters against the reference evaluator --------------------
_scalar = st.one_of(
    st.sampled_from(GENRES + ["nope", "live", "rare"]),
    st.integers(1978, 2021),
    st.sampled_from([0, 1, 2, 3, 0.0, 1.0, 2.5, 4.5, True, False]),
)
_number = st.one_of(st.integers(-1, 2021), st.sampled_from([0.5, 1.0, 2.5, 1990.5, 2005.0]))
_keys = st.sampled_from(["genre", "year", "rating", "live", "tags", "nums", "a.b", "with space", "missing"])


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda k, v: {k: v}, _keys, _scalar),
        st.builds(lambda k, op, v: {k: {op: v}}, _keys, st.sampled_from(["$eq", "$ne", "$contains"]), _scalar),
        st.builds(lambda k, op, v: {k: {op: v}}, _keys, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), _number),
        st.builds(lambda k, op, v: {k: {op: v}}, _keys, st.sampled_from(["$in", "$nin"]),
                  st.lists(_scalar, min_size=1, max_size=3)),
        st.builds(lambda k, v: {k: {"$exists": v}}, _keys, st.booleans()),
    )


_filter = st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"$and": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"$or": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"$not": x}, inner),
    ),
    max_leaves=5,
)


def refused_as_allowed(backend: str, where: Any, exc: errors.UnsupportedFilterError, layout: str = "vecbridge") -> None:
    """A refusal passes only where the suite's gap table (:mod:`.gaps`) allows it for this
    backend, layout and filter; anything else fails, so that a backend refusing every filter fails."""
    gap = filter_gap(backend, where, layout)
    if gap is None:
        pytest.fail(f"{backend} refused {where!r} ({exc}), and no entry of vecbridge.testing.gaps "
                    "allows that backend to refuse it")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])
@given(where=_filter)
def test_generated_filters_match_reference(vb_backend, vb_layout, filter_collection, where):
    # a filter that a native collection answers otherwise by its gap entry is drawn again: the
    # entry's fixed cases are strict xfails (test_filter_matches_reference)
    assume(differing_gap(vb_backend.name, vb_layout, where) is None)
    coll, ds = filter_collection
    want = _expected(ds, where)
    try:
        got = coll.count(where)
    except errors.UnsupportedFilterError as exc:
        refused_as_allowed(vb_backend.name, where, exc, vb_layout)
        with pytest.raises(errors.UnsupportedFilterError):  # refused the same way by every read
            coll.query(ds.vectors[1], k=len(ds), where=where, include=[])
        return
    assert got == len(want), where
    hits = coll.query(ds.vectors[1], k=len(ds), where=where, include=[])
    assert {h.id for h in hits} == want, where


def test_dataset_exercises_the_rules():
    """The shared dataset holds what the filter cases rely on (guards the test data itself)."""
    ds = make_dataset()
    metas = ds.metadatas
    assert any("genre" not in m for m in metas) and any(isinstance(m.get("genre"), list) for m in metas)
    assert any(m.get("rating") == 1.0 and isinstance(m["rating"], float) for m in metas)
    assert any(m.get("rating") == 1 and type(m["rating"]) is int for m in metas)
    assert any(type(m.get("live")) is int for m in metas) and any(m.get("live") is True for m in metas)
    assert any(m.get("tags") == [] for m in metas)
    assert np.isfinite(ds.vectors).all()
