"""Qdrant's native partitions: point-id ranges of the ordered scroll (issue 15 item 1).

Before, Qdrant used the core's default ``hash`` partitions, each of which read the whole
collection.  Now each partition is a range of point ids, read from its lower bound with the
ordered scroll.  Expected answers come from the data written and the native client's own
scroll (its order is the one the ranges cut), never from vecbridge's reads.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import uuid

import numpy as np
import pytest
from qdrant_client import QdrantClient as NativeClient
from qdrant_client import models

import vecbridge
from vecbridge.backends.qdrant.ops import order_key
from vecbridge.types import Partition

FORMS = ["memory", "disk"] + (["server"] if os.environ.get("VECBRIDGE_TEST_QDRANT_URL") else [])


@pytest.fixture(params=FORMS)
def url(request, tmp_path):
    if request.param == "memory":
        return "qdrant://"
    if request.param == "disk":
        return f"qdrant:///{tmp_path}/q"
    return os.environ["VECBRIDGE_TEST_QDRANT_URL"]


def _name(tag: str) -> str:
    return f"part_{tag}_{uuid.uuid4().hex[:8]}"


def _native_of(client):
    """The native client under a vecbridge client: the expected answers' independent reader."""
    return client._native


def _native_order(native: NativeClient, name: str) -> list:
    """Every point id in the native scroll's order."""
    out, offset = [], None
    while True:
        points, offset = native.scroll(name, limit=97, offset=offset, with_payload=False, with_vectors=False)
        out += [p.id for p in points]
        if offset is None:
            return out


def _in_range(pid, p: Partition) -> bool:
    return (p.lower is None or order_key(pid) >= order_key(p.lower)) and \
        (p.upper is None or order_key(pid) < order_key(p.upper))


def _check(coll, native: NativeClient, n: int, want_ids: set[str], point_of: dict) -> list[Partition]:
    parts = coll.partitions(n)
    assert 1 <= len(parts) <= n
    assert all(p.kind == "range" and p.count == len(parts) and p.extra == {"by": "point_id"} for p in parts)
    assert [p.index for p in parts] == list(range(len(parts)))
    assert parts[0].lower is None and parts[-1].upper is None
    for a, b in itertools.pairwise(parts):
        assert a.upper == b.lower  # contiguous
    seen: list[str] = []
    order = _native_order(native, coll.name)
    for p in parts:
        again = Partition.from_json(p.to_json())
        assert again == p and pickle.loads(pickle.dumps(p)) == p
        got = [r.id for batch in coll.scan(batch_size=3, partition=again) for r in batch]
        # the partition holds exactly the points the native order puts in its range
        assert [point_of[i] for i in got] == [pid for pid in order if _in_range(pid, p)]
        seen += got
    assert sorted(seen) == sorted(want_ids)  # every record exactly once
    return parts


def test_native_scroll_order_is_the_order_key(tmp_path):
    native = NativeClient(":memory:")
    native.create_collection("mixed", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    rng = np.random.default_rng(3)
    ids = [int(x) for x in rng.integers(0, 2**63, 40)] + [0, 1, 2**64 - 1] + [str(uuid.UUID(int=int(x)))
                                                                                   for x in rng.integers(0, 2**62, 40)]
    ids += [str(uuid.UUID(int=2**128 - 1)), str(uuid.UUID(int=0)), "ffffffff-0000-4000-8000-000000000000"]
    native.upsert("mixed", [models.PointStruct(id=i, vector=[1.0, 0.0]) for i in ids])
    order = _native_order(native, "mixed")
    assert order == sorted(order, key=order_key)
    assert len(order) == len(set(map(str, ids)))


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_vecbridge_collection(url, n):
    with vecbridge.connect(url) as client:
        name = _name("vb")
        coll = client.create_collection(name, 4, "l2")
        try:
            ids = [f"id-{i}" for i in range(123)]
            coll.add(ids, np.random.default_rng(n).normal(size=(123, 4)).astype(np.float32))
            native = _native_of(client)
            # vecbridge's points are named by UUIDs; the payload's _vb_id is the record id
            points, _ = native.scroll(name, limit=1000, with_payload=["_vb_id"])
            point_of = {p.payload["_vb_id"]: p.id for p in points}
            parts = _check(coll, native, n, set(ids), point_of)
            if n > 1:
                assert len(parts) == n  # 123 points sampled whole: an exact split
                sizes = [sum(len(b) for b in coll.scan(partition=p)) for p in parts]
                assert max(sizes) - min(sizes) <= 1
        finally:
            client.delete_collection(name)


@pytest.mark.parametrize("kind", ["int", "uuid", "mixed"])
@pytest.mark.parametrize("n", [2, 5, 40])
def test_native_collection(url, kind, n):
    rng = np.random.default_rng(7)
    ints = sorted({int(x) for x in rng.integers(0, 2**63, 60)})
    uuids = [str(uuid.UUID(int=int(x) << 64 | int(y))) for x, y in zip(rng.integers(0, 2**62, 60),
                                                                      rng.integers(0, 2**62, 60))]
    pids = {"int": ints, "uuid": uuids, "mixed": ints[:30] + uuids[:30]}[kind]
    with vecbridge.connect(url) as client:
        native = _native_of(client)
        name = _name(kind)
        native.create_collection(name, vectors_config=models.VectorParams(size=3, distance=models.Distance.EUCLID))
        try:
            native.upsert(name, [models.PointStruct(id=p, vector=[float(i), 1.0, 2.0], payload={"i": i})
                                 for i, p in enumerate(pids)], wait=True)
            coll = client.get_collection(name)
            point_of = {str(p): p for p in pids}
            _check(coll, native, n, set(point_of), point_of)
        finally:
            native.delete_collection(name)


@pytest.mark.parametrize("size", [0, 1, 2, 3])
def test_empty_and_tiny(url, size):
    with vecbridge.connect(url) as client:
        native = _native_of(client)
        name = _name("tiny")
        native.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
        try:
            if size:
                native.upsert(name, [models.PointStruct(id=10 * i + 5, vector=[1.0, float(i)]) for i in range(size)],
                              wait=True)
            coll = client.get_collection(name)
            point_of = {str(10 * i + 5): 10 * i + 5 for i in range(size)}
            for n in (1, 2, 8):
                parts = _check(coll, native, n, set(point_of), point_of)
                assert len(parts) == max(1, min(n, size))
        finally:
            native.delete_collection(name)


def test_partitions_read_in_another_client(tmp_path):
    """A partition made by one client, as JSON, read by another (another process would do the same)."""
    url = f"qdrant:///{tmp_path}/q"
    with vecbridge.connect(url) as client:
        coll = client.create_collection("shared", 2, "ip")
        coll.add([str(i) for i in range(50)], np.random.default_rng(1).normal(size=(50, 2)).astype(np.float32),
                 [{"i": i} for i in range(50)])
        texts = [p.to_json() for p in coll.partitions(4)]
    seen = []
    with vecbridge.connect(url) as client:
        coll = client.get_collection("shared")
        for text in texts:
            assert json.loads(text)["kind"] == "range"
            for batch in coll.scan(partition=Partition.from_json(text), include=["metadata"]):
                seen += [(r.id, r.metadata["i"]) for r in batch]
    assert sorted(seen) == sorted((str(i), i) for i in range(50))


def test_a_partition_of_another_kind_is_refused():
    with vecbridge.connect("qdrant://") as client:
        coll = client.create_collection("other", 2, "l2")
        coll.add(["a", "b"], [[1.0, 0.0], [0.0, 1.0]])
        # the core's hash partitions still read (a partition saved before this change)
        got = [r.id for i in range(2) for b in coll.scan(partition=Partition("other", i, 2, "hash")) for r in b]
        assert sorted(got) == ["a", "b"]
        with pytest.raises(ValueError, match="did not make"):
            list(coll.scan(partition=Partition("other", 0, 1, "offset", 0, 10)))
