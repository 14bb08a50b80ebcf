"""Conformance: writing and reading records; exact round trips of ids, vectors, metadata."""

from __future__ import annotations

import numpy as np
import pytest

from vecbridge import errors

from ._helpers import assert_same_metadata, assert_same_vector, filled

ALL = ["vector", "metadata", "document"]

ODD_IDS = [
    "plain", "1", "01", "00000000-0000-0000-0000-000000000000", "42", "with space", " lead", "trail ",
    "quote'single", 'quote"double', "back\\slash", "a/b/c", "semi;colon", "' OR 1=1 --", "\"); DROP TABLE x; --",
    "ünïcödé", "日本語", "emoji🙂", "tab\tnew\nline", "x" * 256, "é" * 128, "%s", "{}", "$eq", "_vb_id",
]

ODD_METADATA = [
    {"i": 1, "f": 1.0, "half": 0.5, "neg": -3, "big": 2**62, "negf": -2.25, "t": True, "fl": False},
    {"s": "", "s2": "it's \"x\"", "u": "ünï", "zero": 0, "zerof": 0.0},
    {"li": [1, 2, 3], "lf": [1.0, 2.5], "ls": ["a", "b"], "lb": [True, False], "empty": []},
    {"a.b": 1, "with space": "v", "quote'key": 2, 'dq"key': 3.0, "ümlaut": "x", "1": "digit key"},
    {},
]


def test_add_get_roundtrip(make_collection, vb_backend):
    coll, ds = filled(make_collection, vb_backend)
    assert coll.count() == len(ds)
    got = coll.get(ds.ids, include=ALL)
    assert [r.id for r in got] == ds.ids
    for r, v, m, d in zip(got, ds.vectors, ds.metadatas, ds.documents):
        assert_same_vector(r.vector, v)
        assert_same_metadata(r.metadata, m)
        assert r.document == d


def test_odd_ids_roundtrip(make_collection):
    coll = make_collection(dimension=4, metric="l2")
    vecs = np.arange(len(ODD_IDS) * 4, dtype=np.float32).reshape(-1, 4)
    coll.add(ODD_IDS, vecs)
    assert sorted(r.id for r in coll.get(limit=1000, include=[])) == sorted(ODD_IDS)
    got = coll.get(ODD_IDS, include=["vector"])
    assert [r.id for r in got] == ODD_IDS
    for r, v in zip(got, vecs):
        assert_same_vector(r.vector, v)
    hits = coll.query(vecs[5], k=1)
    assert hits[0].id == ODD_IDS[5]
    coll.upsert(ODD_IDS[:3], vecs[:3] + 1)  # the same string upserts the same record
    assert coll.count() == len(ODD_IDS)
    coll.delete(ODD_IDS[-5:])
    assert coll.count() == len(ODD_IDS) - 5


@pytest.mark.parametrize("metadata", ODD_METADATA)
def test_metadata_types_roundtrip(make_collection, metadata):
    coll = make_collection(dimension=3)
    coll.add(["m"], [[0.1, 0.2, 0.3]], [metadata], ["doc"])
    (rec,) = coll.get(["m"], include=["metadata", "document"])
    assert_same_metadata(rec.metadata, metadata)
    assert rec.document == "doc"
    (hit,) = coll.query([0.1, 0.2, 0.3], k=1, include=["metadata"])
    assert_same_metadata(hit.metadata, metadata)


@pytest.mark.parametrize("document", ["", "x" * 20000, "line\nbreaks\tand 'quotes\"", "ünïcödé 日本語", None])
def test_documents_roundtrip(make_collection, document):
    coll = make_collection(dimension=2)
    coll.add(["d"], [[1.0, 2.0]], documents=[document])
    assert coll.get(["d"])[0].document == document


def test_vectors_are_float32_exact(make_collection):
    coll = make_collection(dimension=8, metric="cosine")
    rng = np.random.default_rng(3)
    vecs = (rng.normal(size=(20, 8)) * 1e3).astype(np.float64)
    coll.add([f"v{i}" for i in range(20)], vecs.tolist())  # a list of lists of float64 is accepted
    for r, v in zip(coll.get([f"v{i}" for i in range(20)], include=["vector"]), vecs):
        assert_same_vector(r.vector, v.astype(np.float32))


def test_add_duplicate_writes_nothing(make_collection):
    coll = make_collection(dimension=2)
    coll.add(["a", "b"], [[1, 0], [0, 1]], [{"v": 1}, {"v": 2}])
    with pytest.raises(errors.DuplicateIdError) as info:
        coll.add(["c", "b", "d"], [[1, 1], [2, 2], [3, 3]], [{"v": 3}, {"v": 99}, {"v": 4}])
    assert "'b'" in str(info.value)
    assert coll.count() == 2
    assert coll.get(["c", "d"]) == []
    assert coll.get(["b"])[0].metadata == {"v": 2}


def test_upsert_replaces_whole_records(make_collection):
    coll = make_collection(dimension=2, metric="l2")
    coll.add(["a", "b"], [[1, 0], [0, 1]], [{"x": 1, "y": "keep?"}, {"x": 2}], ["doc a", "doc b"])
    coll.upsert(["a", "c"], [[5, 5], [6, 6]], [{"x": 10}, {"z": True}])
    assert coll.count() == 3
    a, b, c = coll.get(["a", "b", "c"], include=ALL)
    assert_same_vector(a.vector, [5, 5])
    assert a.metadata == {"x": 10} and a.document is None
    assert b.metadata == {"x": 2} and b.document == "doc b"
    assert c.metadata == {"z": True}
    assert [h.id for h in coll.query([5, 5], k=1)] == ["a"]


def test_update_given_fields_only(make_collection):
    coll = make_collection(dimension=2, metric="l2")
    coll.add(["a", "b"], [[1, 0], [0, 1]], [{"x": 1}, {"x": 2}], ["doc a", "doc b"])
    coll.update(["a"], metadatas=[{"x": 5, "new": "yes"}])
    a = coll.get(["a"], include=ALL)[0]
    assert a.metadata == {"x": 5, "new": "yes"} and a.document == "doc a"
    assert_same_vector(a.vector, [1, 0])
    coll.update(["b"], vectors=[[9, 9]])
    b = coll.get(["b"], include=ALL)[0]
    assert_same_vector(b.vector, [9, 9])
    assert b.metadata == {"x": 2} and b.document == "doc b"
    assert [h.id for h in coll.query([9, 9], k=1)] == ["b"]
    coll.update(["a", "b"], documents=["A", None])
    assert [r.document for r in coll.get(["a", "b"])] == ["A", None]
    assert coll.count({"x": 5}) == 1


def test_update_missing_writes_nothing(make_collection):
    coll = make_collection(dimension=2)
    coll.add(["a"], [[1, 0]], [{"x": 1}])
    with pytest.raises(errors.RecordNotFoundError) as info:
        coll.update(["a", "ghost"], metadatas=[{"x": 2}, {"x": 3}])
    assert "'ghost'" in str(info.value)
    assert coll.get(["a"])[0].metadata == {"x": 1}
    assert coll.count() == 1


@pytest.mark.needs("ids", "vectors")
def test_get_by_ids_order_and_unknown(shared_collection):
    coll, ds = shared_collection("l2")
    want = [ds.ids[5], "nope", ds.ids[2], ds.ids[17], "missing-too"]
    assert [r.id for r in coll.get(want)] == [ds.ids[5], ds.ids[2], ds.ids[17]]
    assert coll.get([]) == []
    recs = coll.get([ds.ids[3]], include=[])
    assert recs[0].vector is None and recs[0].metadata is None and recs[0].document is None


@pytest.mark.needs("ids", "vectors")
def test_get_pages_cover_everything_once(shared_collection):
    coll, ds = shared_collection("l2")
    seen: list[str] = []
    for offset in range(0, len(ds) + 10, 10):
        seen += [r.id for r in coll.get(limit=10, offset=offset, include=[])]
    assert sorted(seen) == sorted(ds.ids)
    assert len(coll.get(limit=7)) == 7
    assert coll.get(limit=0) == []
    assert len(coll.peek(5)) == 5
    assert coll.peek(5)[0].vector is not None


@pytest.mark.needs("ids", "vectors")  # metadata and documents: as the collection holds them
@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_scan_yields_every_record_once(shared_collection, batch_size):
    coll, ds = shared_collection("l2")
    batches = list(coll.scan(batch_size=batch_size))
    assert all(0 < len(b) <= batch_size for b in batches)
    got = {r.id: r for b in batches for r in b}
    assert sum(len(b) for b in batches) == len(ds) == len(got)
    for i, id_ in enumerate(ds.ids):
        assert_same_vector(got[id_].vector, ds.vectors[i])
        assert_same_metadata(got[id_].metadata, ds.metadatas[i])
        assert got[id_].document == ds.documents[i]


def test_delete_by_ids_where_and_both(make_collection, vb_backend):
    coll, ds = filled(make_collection, vb_backend, n=60)
    coll.delete(ids=ds.ids[:5] + ["never-there"])
    assert coll.count() == 55
    assert coll.get(ds.ids[:5]) == []
    jazz = [i for i in ds.ids[5:] if ds.metadatas[ds.ids.index(i)].get("genre") == "jazz"]
    coll.delete(where={"genre": "jazz"})
    assert coll.count() == 55 - len(jazz)
    assert coll.count({"genre": "jazz"}) == 0
    rest = [r.id for r in coll.get(limit=1000, include=[])]
    target = [i for i in rest if ds.metadatas[ds.ids.index(i)].get("year", 0) >= 2000]
    both = rest[:10]
    coll.delete(ids=both, where={"year": {"$gte": 2000}})
    gone = set(both) & set(target)
    assert coll.count() == len(rest) - len(gone)
    with pytest.raises(ValueError):
        coll.delete()
    assert [h.id for h in coll.query(ds.vectors[0], k=100) if h.id in gone] == []


def test_empty_collection_reads(make_collection):
    coll = make_collection(dimension=3)
    assert coll.count() == 0
    assert coll.get(limit=10) == []
    assert list(coll.scan()) == []
    assert coll.query([1, 2, 3], k=5) == []
    assert coll.query([[1, 2, 3], [3, 2, 1]], k=5) == [[], []]
