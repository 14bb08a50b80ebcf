"""Qdrant collections written by qdrant-client: the ids ``scan`` shows name those points.

Contract §7: point 42 shows as ``"42"``, a UUID point as its canonical string, and those
strings name the same points again in ``get``, ``delete``, ``update`` and ``add``; an id
no point can have is refused on write (it was hashed into a UUID point before, which the
collection's own clients could not tell from their points).  Before,
they were hashed like vecbridge ids, so ``get`` found nothing and ``delete`` reported
success having deleted nothing.  Expected answers come from the native client's own reads.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

import vecbridge

pytest.importorskip("qdrant_client")

U = str(uuid.UUID("0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"))


@pytest.fixture
def folder(tmp_path):
    from qdrant_client import QdrantClient as NativeClient
    from qdrant_client import models

    path = str(tmp_path / "q")
    native = NativeClient(path=path)
    native.create_collection("foreign", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    native.upsert("foreign", [
        models.PointStruct(id=42, vector=[1.0, 0.0], payload={"s": "int"}),
        models.PointStruct(id=7, vector=[0.0, 1.0], payload={"s": "seven"}),
        models.PointStruct(id=U, vector=[1.0, 1.0], payload={"s": "uuid"}),
    ])
    native.close()
    return path


def _native_points(path):
    from qdrant_client import QdrantClient as NativeClient

    native = NativeClient(path=path)
    try:
        points, _ = native.scroll("foreign", limit=100, with_payload=True)
        return {str(p.id): p.payload for p in points}
    finally:
        native.close()


def test_ids_shown_by_scan_name_their_points(folder):
    with vecbridge.connect(f"qdrant:///{folder}") as client:
        coll = client.get_collection("foreign")
        shown = sorted(r.id for b in coll.scan() for r in b)
        assert shown == sorted(["42", "7", U])
        got = coll.get(shown, include=["metadata", "vector"])
        assert {r.id: r.metadata["s"] for r in got} == {"42": "int", "7": "seven", U: "uuid"}
        np.testing.assert_array_equal(coll.get(["42"], include=["vector"])[0].vector, [1.0, 0.0])
        # spellings that would not come back as given are other ids, not these points
        assert coll.get(["042", U.upper(), "+7"]) == []
        with pytest.raises(vecbridge.DuplicateIdError):
            coll.add(["42"], [[3.0, 3.0]])
        coll.update(["7"], metadatas=[{"s": "updated"}])
        coll.delete(ids=[U])
        assert coll.count() == 2
    native = _native_points(folder)
    assert set(native) == {"42", "7"}  # the UUID point itself was deleted, nothing was added
    assert native["7"]["s"] == "updated" and native["42"] == {"s": "int"}


def test_a_new_integer_id_becomes_that_point(folder):
    with vecbridge.connect(f"qdrant:///{folder}") as client:
        coll = client.get_collection("foreign")
        coll.add(["1000"], [[1.0, 2.0]], [{"s": "new"}])
        assert [r.id for r in coll.get(["1000"])] == ["1000"]
        # an id no point can have (CONTRACT §7): refused, naming it, and nothing of the batch is written
        with pytest.raises(vecbridge.InvalidRecordError, match=r"ids\[1\]: 'not-a-number' cannot name a Qdrant point"):
            coll.add(["1001", "not-a-number"], [[1.0, 2.0], [2.0, 1.0]], [{"s": "a"}, {"s": "b"}])
        with pytest.raises(vecbridge.InvalidRecordError, match="canonical form"):
            coll.upsert([U.upper()], [[1.0, 2.0]])
    native = _native_points(folder)
    assert native["1000"] == {"s": "new"}
    assert set(native) == {"42", "7", U, "1000"}


def test_vecbridge_points_without_collection_metadata_keep_their_ids():
    """A server that keeps no collection metadata (older than it) holds vecbridge's points
    without the configuration document: every sampled point has ``_vb_id``, so the
    collection is read in vecbridge's layout, not as a native one showing UUIDs."""
    from qdrant_client import models

    with vecbridge.connect("qdrant://") as client:
        made = client.create_collection("made", 2, "l2")
        made.add(["a", "b/c"], [[1.0, 2.0], [3.0, 4.0]], [{"k": 1}, {"k": [2]}], ["doc", None])
        native = client._native
        points, _ = native.scroll("made", limit=10, with_payload=True, with_vectors=True)
        native.create_collection("bare", vectors_config=models.VectorParams(size=2, distance=models.Distance.EUCLID))
        native.upsert("bare", [models.PointStruct(id=p.id, vector=p.vector, payload=p.payload) for p in points])
        assert "vecbridge" not in (native.get_collection("bare").config.metadata or {})
        coll = client.get_collection("bare")
        got = coll.get(["a", "b/c"], include=["metadata", "document"])
        assert [(r.id, r.metadata, r.document) for r in got] == [("a", {"k": 1}, "doc"), ("b/c", {"k": [2]}, None)]
