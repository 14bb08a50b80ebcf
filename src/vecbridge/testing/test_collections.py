"""Conformance: collections and clients."""

from __future__ import annotations

import pytest

import vecbridge
from vecbridge import errors

from .gaps import INDEX_GAPS, has_index
from .plugin import unique_name


def test_create_get_list_delete(vb_client, make_collection):
    name = unique_name()
    coll = make_collection(dimension=12, metric="l2", name=name)
    assert (coll.name, coll.dimension, coll.metric) == (name, 12, "l2")
    assert name in vb_client.list_collections()
    again = vb_client.get_collection(name)
    assert (again.name, again.dimension, again.metric) == (name, 12, "l2")
    vb_client.delete_collection(name)
    assert name not in vb_client.list_collections()
    with pytest.raises(errors.CollectionNotFoundError):
        vb_client.get_collection(name)


@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_metric_and_dimension_reported(vb_client, make_collection, metric):
    coll = make_collection(dimension=5, metric=metric)
    reopened = vb_client.get_collection(coll.name)
    assert (reopened.dimension, reopened.metric) == (5, metric)


def test_create_existing_raises(vb_client, make_collection):
    coll = make_collection()
    with pytest.raises(errors.CollectionExistsError):
        vb_client.create_collection(coll.name, 16)


def test_missing_collection(vb_client):
    with pytest.raises(errors.CollectionNotFoundError):
        vb_client.get_collection(unique_name("missing"))
    with pytest.raises(errors.CollectionNotFoundError):
        vb_client.delete_collection(unique_name("missing"))


def test_get_or_create(vb_client, make_collection):
    coll = make_collection(dimension=4, metric="ip")
    same = vb_client.get_or_create_collection(coll.name, 4, "ip")
    assert same.dimension == 4 and same.metric == "ip"
    with pytest.raises(errors.DimensionMismatchError):
        vb_client.get_or_create_collection(coll.name, 5, "ip")
    name = unique_name()
    try:
        made = vb_client.get_or_create_collection(name, 3, "l2")
        assert (made.dimension, made.metric) == (3, "l2")
    finally:
        vb_client.delete_collection(name)


@pytest.mark.parametrize("name", ["abc", "A" + "b" * 61 + "9", "docs_2024", "Mixed_Case_Name"])
def test_portable_names_work(vb_client, make_collection, name):
    name = f"{name}{unique_name('')[1:7]}" if len(name) < 50 else name[:-6] + unique_name("")[1:7]
    coll = make_collection(dimension=3, name=name)
    assert coll.name == name
    assert name in vb_client.list_collections()


@pytest.mark.parametrize("name", ["", "ab", "1abc", "has space", "semi;colon", "x" * 600, "a/b", "../up"])
def test_bad_names_refused(vb_client, name):
    with pytest.raises(errors.InvalidCollectionNameError):
        vb_client.create_collection(name, 3)
    assert name not in vb_client.list_collections()


def test_bad_dimension_and_metric(vb_client):
    with pytest.raises(vecbridge.InvalidRecordError):
        vb_client.create_collection(unique_name(), 0)
    with pytest.raises(errors.UnsupportedFeatureError):
        vb_client.create_collection(unique_name(), 3, metric="hamming")


_INDEX_SPECS = {"flat": {"type": "flat"}, "hnsw": {"type": "hnsw", "m": 8, "ef_construction": 64, "ef_search": 40}}


@pytest.mark.parametrize("index_type", [None, *INDEX_GAPS])
def test_index_choices(vb_backend, vb_client, make_collection, index_type):
    """Every backend accepts the default index and each type of the suite's table, unless the
    table (not the backend's own declaration) says it lacks that type: then it refuses it."""
    spec = None if index_type is None else _INDEX_SPECS[index_type]
    if index_type is not None and not has_index(vb_backend.name, index_type):
        with pytest.raises(errors.UnsupportedFeatureError):
            make_collection(dimension=4, index=spec)
        return
    coll = make_collection(dimension=4, index=spec)
    coll.add(["a", "b"], [[1.0, 2.0, 3.0, 4.0], [-1.0, 0.5, 0.0, 2.0]])
    assert [h.id for h in coll.query([1.0, 2.0, 3.0, 4.0], k=2)] == ["a", "b"]
    assert vb_client.get_collection(coll.name).count() == 2


def test_unknown_index_type_refused(make_collection):
    with pytest.raises(errors.UnsupportedFeatureError):
        make_collection(dimension=4, index={"type": "lsh"})


def test_client_is_context_manager(vb_backend, vb_api):
    with vb_api.connect(vb_backend.url) as client:
        assert isinstance(client.list_collections(), list)
    assert isinstance(client, vecbridge.Client)


def test_open_collection_by_url(vb_backend, vb_api, make_collection):
    coll = make_collection(dimension=3, metric="l2")
    coll.add(["x"], [[1.0, 0.0, 0.0]])
    sep = "&" if "?" in vb_backend.url else "?"
    if not vb_backend.persistent:
        pytest.skip("an in-memory store is private to its client")
    with vb_api.open_collection(f"{vb_backend.url}{sep}collection={coll.name}") as opened:
        assert isinstance(opened, vecbridge.Collection)
        assert (opened.dimension, opened.metric, opened.count()) == (3, "l2", 1)


def test_persistence_across_reopen(vb_backend, vb_api, make_collection):
    if not vb_backend.persistent:
        pytest.skip("in-memory form")
    coll = make_collection(dimension=3, metric="ip")
    coll.add(["p1", "p2"], [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], [{"n": 1}, {"n": 2.5}], ["one", None])
    coll._client.close()
    with vb_api.connect(vb_backend.url) as client:
        again = client.get_collection(coll.name)
        recs = again.get(["p1", "p2"], include=["vector", "metadata", "document"])
        assert [r.id for r in recs] == ["p1", "p2"]
        assert [r.metadata for r in recs] == [{"n": 1}, {"n": 2.5}]
        assert [r.document for r in recs] == ["one", None]
        assert [h.id for h in again.query([1.0, 2.0, 3.0], k=2)] == ["p1", "p2"]
        client.delete_collection(coll.name)
