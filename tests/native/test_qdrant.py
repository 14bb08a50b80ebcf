"""Qdrant collections made by qdrant-client, not by vecbridge (issue 12, CONTRACT §7).

qdrant-client creates collections with integer ids, UUID ids, named vectors and nested
payload; vecbridge lists them (the ones it cannot open with their reason), opens them
through the core's mapping, reads, filters, searches, writes and migrates them to FAISS and
back.  Every expected answer comes from the data written here with the native client (the
payload flattened by the test's own rule), the native client's own reads, numpy brute force
and the reference filter evaluator, never from vecbridge's reads of the collection.  Local
mode on disk and in memory; a server too where ``VECBRIDGE_TEST_QDRANT_URL`` points at one.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest
from qdrant_client import models

import vecbridge
from vecbridge import errors, filters
from vecbridge.cli import main as cli_main
from vecbridge.scores import brute_force_distances

FORMS = ["memory", "disk"] + (["server"] if os.environ.get("VECBRIDGE_TEST_QDRANT_URL") else [])
RNG = np.random.default_rng(12)
N = 40


def _flat(payload: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The contract's metadata of a payload, by the rule written out here: nested objects as
    dotted keys, nulls left out."""
    out: dict[str, Any] = {}
    for k, v in payload.items():
        if v is None:
            continue
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


class Data:
    """What the native client wrote: per collection, point ids, vectors, payloads."""

    def __init__(self, tag: str):
        self.tag = tag
        ints = [int(x) for x in RNG.choice(10**12, N, replace=False)]
        self.ints = dict(zip(ints, RNG.normal(size=(N, 4)).astype(np.float32)))
        self.int_payloads = {p: {"text": f"doc {i}", "year": 1990 + i % 20, "score": i / 4, "ok": i % 3 == 0,
                                 "tags": [f"t{i % 4}", "all"], "info": {"lang": ["en", "de"][i % 2],
                                                                        "stats": {"n": i, "gone": None}},
                                 "none": None}
                             for i, p in enumerate(ints)}
        uuids = [str(uuid.UUID(int=int(RNG.integers(0, 2**62)) << 64 | i)) for i in range(N)]
        self.uuids = dict(zip(uuids, RNG.normal(size=(N, 6)).astype(np.float32)))
        self.uuid_payloads = {p: {"page_content": f"page {i}", "metadata": {"source": f"s{i % 5}", "page": i}}
                              for i, p in enumerate(uuids)}
        self.img = RNG.normal(size=(N, 3)).astype(np.float32)
        self.txt = RNG.normal(size=(N, 5)).astype(np.float32)

    def names(self) -> dict[str, str]:
        return {k: f"{k}_{self.tag}" for k in ("ints", "uuids", "named", "sparse", "manhattan")}


@pytest.fixture(params=FORMS)
def world(request, tmp_path):
    """A database with collections written by qdrant-client: (url, native client, data)."""
    if request.param == "server":
        url = os.environ["VECBRIDGE_TEST_QDRANT_URL"]
    else:
        url = "qdrant://" if request.param == "memory" else f"qdrant:///{tmp_path}/q"
    client = vecbridge.connect(url)
    native = client._native  # the same engine (local mode admits one client per folder)
    data = Data(uuid.uuid4().hex[:6])
    n = data.names()
    native.create_collection(n["ints"], vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    native.upsert(n["ints"], [models.PointStruct(id=p, vector=v.tolist(), payload=data.int_payloads[p])
                              for p, v in data.ints.items()], wait=True)
    native.create_collection(n["uuids"], vectors_config=models.VectorParams(size=6, distance=models.Distance.COSINE))
    native.upsert(n["uuids"], [models.PointStruct(id=p, vector=v.tolist(), payload=data.uuid_payloads[p])
                               for p, v in data.uuids.items()], wait=True)
    native.create_collection(n["named"], vectors_config={
        "img": models.VectorParams(size=3, distance=models.Distance.DOT),
        "txt": models.VectorParams(size=5, distance=models.Distance.EUCLID)})
    native.upsert(n["named"], [models.PointStruct(id=i, vector={"img": data.img[i].tolist(), "txt": data.txt[i].tolist()},
                                                  payload={"content": f"c{i}", "k": i % 3}) for i in range(N)], wait=True)
    native.create_collection(n["sparse"], vectors_config={},
                             sparse_vectors_config={"bm": models.SparseVectorParams()})
    native.create_collection(n["manhattan"],
                             vectors_config=models.VectorParams(size=2, distance=models.Distance.MANHATTAN))
    try:
        yield url, client, native, data
    finally:
        if request.param == "server":
            for name in n.values():
                native.delete_collection(name)
        client.close()


def test_listing_never_fails(world, capsys):
    url, client, _, data = world
    n = data.names()
    assert set(n.values()) <= set(client.list_collections())
    rows = {r["name"]: r for r in client.describe_collections()}
    # the page_content/metadata payload is LangChain's (langchain-qdrant's layout, detected by its keys)
    assert {name: rows[name]["layout"] for name in n.values()} == {
        name: "langchain" if k == "uuids" else "native" for k, name in n.items()}
    assert "error" not in rows[n["ints"]] and "error" not in rows[n["uuids"]]
    assert "several vector fields (img, txt)" in rows[n["named"]]["error"]
    assert "no dense vector" in rows[n["sparse"]]["error"]
    assert "Manhattan" in rows[n["manhattan"]]["error"]
    if url != "qdrant://":  # the command line opens its own client: a database it can reach
        client.close()
        assert cli_main(["ls", url]) == 0
        out = capsys.readouterr().out
        assert f"{n['ints']}" in out and f"{n['manhattan']}  cannot be opened" in out
        assert cli_main(["ls", url, "--json"]) == 0
        listed = {c["name"]: c for c in json.loads(capsys.readouterr().out)["collections"]}
        assert (listed[n["ints"]]["count"], listed[n["ints"]]["layout"]) == (N, "native")
        assert "error" in listed[n["sparse"]]


def test_integer_ids_and_nested_payload(world):
    _, client, _, data = world
    coll = client.get_collection(data.names()["ints"])
    assert coll.config["layout"] == "native" and coll.mapping.document_field == "text"
    assert (coll.dimension, coll.metric, coll.count()) == (4, "ip", N)
    ids = list(data.ints)
    want = {str(p): _flat({k: v for k, v in pl.items() if k != "text"}) for p, pl in data.int_payloads.items()}
    got = coll.get([str(ids[3]), "nope", str(ids[0]), "123456789012345678901234"], include=["metadata", "document",
                                                                                            "vector"])
    assert [r.id for r in got] == [str(ids[3]), str(ids[0])]
    assert got[0].metadata == want[str(ids[3])] and got[0].document == data.int_payloads[ids[3]]["text"]
    assert "info.stats.n" in got[0].metadata and "none" not in got[0].metadata
    np.testing.assert_array_equal(got[1].vector, data.ints[ids[0]])
    assert sorted(r.id for b in coll.scan(batch_size=7) for r in b) == sorted(want)
    wheres = [{"year": {"$gte": 2000}}, {"info.lang": "de"}, {"info.stats.n": {"$in": [1, 2, 30]}},
              {"$and": [{"ok": True}, {"score": {"$lt": 5}}]}, {"tags": {"$contains": "t2"}},
              {"$not": {"info.lang": "en"}}, {"info.stats.n": {"$ne": 4}}, {"none": {"$exists": False}},
              {"info.stats.gone": {"$exists": True}}, {"$or": [{"year": 1990}, {"score": 1.25}]}]
    vectors = np.stack(list(data.ints.values()))
    q = RNG.normal(size=4).astype(np.float32)
    for where in wheres:
        match = sorted(i for i, m in want.items() if filters.evaluate(where, m))
        assert coll.count(where=where) == len(match), where
        assert sorted(r.id for r in coll.get(where=where, limit=1000)) == match, where
        keep = [j for j, p in enumerate(ids) if str(p) in set(match)]
        hits = coll.query(q, k=5, where=where)
        d = brute_force_distances("ip", q[None, :], vectors[keep])[0]
        order = np.argsort(d, kind="stable")[:5]
        assert [h.id for h in hits] == [str(ids[keep[j]]) for j in order], where
        np.testing.assert_allclose([h.distance for h in hits], d[order], rtol=1e-5, atol=1e-5)
    with pytest.raises(errors.UnsupportedFilterError, match="document"):  # not metadata: never matched
        coll.count(where={"text": "doc 5"})


def test_uuid_ids_and_a_metadata_object(world):
    _, client, _, data = world
    coll = client.get_collection(data.names()["uuids"])
    assert (coll.mapping.document_field, coll.mapping.metadata_field, coll.metric) == ("page_content", "metadata",
                                                                                        "cosine")
    ids = list(data.uuids)
    got = coll.get([ids[5], ids[5].upper(), ids[9]], include=["metadata", "document", "vector"])
    assert [(r.id, r.metadata, r.document) for r in got] == [
        (ids[5], data.uuid_payloads[ids[5]]["metadata"], "page 5"), (ids[9], data.uuid_payloads[ids[9]]["metadata"],
                                                                     "page 9")]
    np.testing.assert_allclose(got[0].vector, _unit(data.uuids[ids[5]]), rtol=1e-6, atol=1e-6)  # Qdrant's own
    where = {"source": {"$in": ["s1", "s3"]}, "page": {"$gt": 10}}
    match = sorted(p for p, pl in data.uuid_payloads.items() if filters.evaluate(where, pl["metadata"]))
    assert sorted(r.id for r in coll.get(where=where)) == match and coll.count(where=where) == len(match)
    q = RNG.normal(size=6).astype(np.float32)
    vectors = np.stack(list(data.uuids.values()))
    keep = [j for j, p in enumerate(ids) if p in set(match)]
    d = brute_force_distances("cosine", q[None, :], vectors[keep])[0]
    hits = coll.query(q, k=4, where=where)
    assert [h.id for h in hits] == [ids[keep[j]] for j in np.argsort(d, kind="stable")[:4]]


def test_named_vectors(world):
    url, client, _, data = world
    name = data.names()["named"]
    with pytest.raises(errors.UnsupportedFeatureError, match=r"vector_field"):
        client.get_collection(name)
    with vecbridge.connect(url, vector_field="txt") if url != "qdrant://" else _same(client, vector_field="txt") as c:
        coll = c.get_collection(name)
        assert (coll.dimension, coll.metric, coll.mapping.vector_field) == (5, "l2", "txt")
        q = RNG.normal(size=5).astype(np.float32)
        d = brute_force_distances("l2", q[None, :], data.txt)[0]
        hits = coll.query(q, k=6, where={"k": {"$ne": 0}})
        keep = [i for i in range(N) if i % 3 != 0]
        dk = brute_force_distances("l2", q[None, :], data.txt[keep])[0]
        assert [h.id for h in hits] == [str(keep[j]) for j in np.argsort(dk, kind="stable")[:6]]
        assert d.shape == (N,)
        rec = coll.get(["7"], include=["vector", "document"])[0]
        np.testing.assert_array_equal(rec.vector, data.txt[7])
        assert rec.document == "c7"
        # a write takes the chosen vector only; the point's other vector is the native client's business
        coll.upsert(["7"], [[1.0, 2.0, 3.0, 4.0, 5.0]], [{"k": 9}], ["seven"])
        point = c._native.retrieve(name, [7], with_payload=True, with_vectors=True)[0]
        assert point.payload == {"k": 9, "content": "seven"} and point.vector["txt"] == [1.0, 2.0, 3.0, 4.0, 5.0]


class _same:
    """A vecbridge client with other options on the same in-memory engine (a new one would be empty)."""

    def __init__(self, client, **options):
        from vecbridge.backends.qdrant import QdrantClient

        self.c = QdrantClient("qdrant://", **options)
        self.c._native = client._native

    def __enter__(self):
        return self.c

    def __exit__(self, *exc):
        self.c._closed = True  # the engine stays the fixture's


def test_writes_map_back(world):
    _, client, native, data = world
    name = data.names()["ints"]
    coll = client.get_collection(name)
    first = next(iter(data.ints))
    coll.add(["77"], [[1.0, 0.0, 0.0, 0.0]], [{"year": 2030, "info.lang": "fr", "info.stats.n": 77, "tags": ["x"]}],
             ["seventy-seven"])
    coll.update([str(first)], metadatas=[{"year": 1, "deep.er.key": True}])
    point = native.retrieve(name, [77], with_payload=True)[0]
    assert point.payload == {"year": 2030, "info": {"lang": "fr", "stats": {"n": 77}}, "tags": ["x"],
                             "text": "seventy-seven"}
    point = native.retrieve(name, [first], with_payload=True)[0]
    assert point.payload == {"year": 1, "deep": {"er": {"key": True}}, "text": data.int_payloads[first]["text"]}
    assert coll.count(where={"deep.er.key": True}) == 1 and coll.count(where={"info.lang": "fr"}) == 1
    before = native.count(name, exact=True).count
    for bad, err in (((["x-1"], [{}]), errors.InvalidRecordError), ((["78"], [{"a": 1, "a.b": 2}]),
                                                                     errors.InvalidMetadataError),
                     ((["79"], [{"text": "clash"}]), errors.InvalidMetadataError)):
        with pytest.raises(err):
            coll.upsert([*bad[0], "80"], [[0.0, 1.0, 0.0, 0.0]] * 2, [*bad[1], {}])
    assert native.count(name, exact=True).count == before  # nothing of those batches was written
    coll.delete(ids=["77", "not-a-point"])
    coll.delete(where={"year": 1})
    assert native.count(name, exact=True).count == before - 2
    # documents into a collection without a document key say how to name one
    other = client.get_collection(data.names()["uuids"])
    other.upsert([str(uuid.UUID(int=1))], [[1.0] * 6], [{"source": "new"}], ["doc"])
    stored = native.retrieve(data.names()["uuids"], [str(uuid.UUID(int=1))], with_payload=True)[0].payload
    assert stored == {"metadata": {"source": "new"}, "page_content": "doc"}


def _expected(data: Data, which: str) -> tuple[dict[Any, tuple[np.ndarray, dict[str, Any]]], str, dict[str, str]]:
    """Per point id, the vector (as Qdrant keeps it) and payload written; the metric; the options
    that map the collection (and recreate its layout on the way back)."""
    if which == "ints":
        return ({p: (v, data.int_payloads[p]) for p, v in data.ints.items()}, "ip", {"document_field": "text"})
    if which == "uuids":
        return ({p: (_unit(v), data.uuid_payloads[p]) for p, v in data.uuids.items()}, "cosine",
                {"document_field": "page_content", "metadata_field": "metadata"})
    return ({i: (data.txt[i], {"content": f"c{i}", "k": i % 3}) for i in range(N)}, "l2",
            {"document_field": "content", "vector_field": "txt"})


@pytest.mark.parametrize("which", ["ints", "uuids", "named"])
def test_migrate_to_faiss_and_back(world, tmp_path, which):
    url, client, native, data = world
    name, back = data.names()[which], f"back_{which}_{data.tag}"
    points, metric, opts = _expected(data, which)
    doc_key, outer = opts["document_field"], opts.get("metadata_field")
    faiss_url = f"faiss:///{tmp_path}/f"
    if url == "qdrant://":  # an in-memory database is reached through its open collections
        source: Any = _same(client, **opts).c.get_collection(name)
        target: Any = _same(client, layout="native", **opts).c.create_collection(back, source.dimension, metric)
    else:
        query = "&".join(f"{k}={v}" for k, v in opts.items())
        source, target = f"{url}?collection={name}&{query}", f"{url}?collection={back}&layout=native&{query}"
    report = vecbridge.migrate(source, f"{faiss_url}?collection=copy", verify="full", checkpoint=False)
    assert report.records_copied == N and report.verification.ok and report.verification.checked == N
    want = {str(p): (_flat(pl[outer]) if outer else _flat({k: v for k, v in pl.items() if k != doc_key}), pl[doc_key])
            for p, (_, pl) in points.items()}
    with vecbridge.connect(faiss_url) as fc:
        copy = fc.get_collection("copy")
        assert copy.metric == metric
        recs = {r.id: r for b in copy.scan() for r in b}
        assert {i: (r.metadata, r.document) for i, r in recs.items()} == want
        for p, (v, _) in points.items():
            np.testing.assert_allclose(recs[str(p)].vector, v, rtol=1e-6, atol=1e-6)
    # back, into a new collection in Qdrant's own layout, mapped as the source was: the points the
    # native client wrote, under the same ids and keys
    report = vecbridge.migrate(f"{faiss_url}?collection=copy", target, verify="full", checkpoint=False)
    assert report.records_copied == N and report.verification.ok and report.verification.checked == N
    got, _ = native.scroll(back, limit=1000, with_payload=True, with_vectors=True)
    assert {p.id for p in got} == set(points)
    for p in got:
        assert p.payload == _no_nulls(points[p.id][1])
        vector = p.vector["txt"] if which == "named" else p.vector  # created with the named vector
        np.testing.assert_allclose(np.asarray(vector, dtype=np.float32), points[p.id][0], rtol=1e-6, atol=1e-6)
    native.delete_collection(back)


def _no_nulls(payload):
    out = {}
    for k, v in payload.items():
        if isinstance(v, dict):
            v = _no_nulls(v)
        if v is not None:
            out[k] = v
    return out
