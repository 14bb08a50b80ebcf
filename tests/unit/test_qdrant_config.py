"""Qdrant keeps a collection's configuration document in the collection's metadata.

``set_config`` survives closing and reopening; the document has dimension, metric, index,
layout and the entry; collections written before the document existed (metadata
``{"format": 1, "index": …}``) and collections made by other clients (no metadata: layout
``native``) open as before and take a configuration without changing how their ids name
points.  Expected values come from what was written and the native client's own reads.
"""

from __future__ import annotations

import pytest

import vecbridge
from vecbridge.locks import collection_lock

pytest.importorskip("qdrant_client")

from qdrant_client import QdrantClient as NativeClient
from qdrant_client import models


def _native_meta(path, name):
    native = NativeClient(path=path)
    try:
        return native.get_collection(name).config.metadata
    finally:
        native.close()


def test_set_config_survives_reopening(tmp_path):
    url = f"qdrant:///{tmp_path}/q"
    with vecbridge.connect(url) as client:
        coll = client.create_collection("conf", 8, "ip", index={"type": "hnsw", "m": 8})
        coll.set_config(embedding="x", extra={"n": 1})
    with vecbridge.connect(url) as client:
        config = client.get_collection("conf").config
    assert config == {"dimension": 8, "metric": "ip", "index": {"type": "hnsw", "m": 8}, "layout": "vecbridge",
                      "embedding": "x", "extra": {"n": 1}}
    stored = _native_meta(str(tmp_path / "q"), "conf")["vecbridge"]
    assert stored["embedding"] == "x" and stored["index"] == {"type": "hnsw", "m": 8}


def test_set_config_in_memory_and_removal():
    with vecbridge.connect("qdrant://") as client:
        coll = client.create_collection("conf", 4, "l2")
        coll.set_config(embedding="x")
        assert client.get_collection("conf").config["embedding"] == "x"
        coll.set_config(embedding=None)
        assert "embedding" not in client.get_collection("conf").config
        assert "format" not in coll.config  # the backend's own marker is not a configuration entry


def test_a_collection_of_the_first_form_opens_and_takes_a_configuration(tmp_path):
    path = str(tmp_path / "q")
    with vecbridge.connect(f"qdrant:///{path}") as client:
        client.create_collection("old", 4, "l2", index={"type": "flat"}).add(["a"], [[1.0, 0.0, 0.0, 0.0]])
        # what the backend wrote before the configuration document existed
        client._native.update_collection("old", metadata={"vecbridge": {"format": 1, "index": {"type": "flat"}}})
    with vecbridge.connect(f"qdrant:///{path}") as client:
        coll = client.get_collection("old")
        assert coll.config == {"dimension": 4, "metric": "l2", "index": {"type": "flat"}, "layout": "vecbridge"}
        coll.set_config(embedding="x")
    with vecbridge.connect(f"qdrant:///{path}") as client:
        coll = client.get_collection("old")
        assert coll.config["embedding"] == "x" and coll.index == {"type": "flat"}
        assert [r.id for r in coll.get(["a"])] == ["a"]  # still vecbridge's layout: the id is hashed


def test_a_native_collection_keeps_its_layout_after_set_config(tmp_path):
    path = str(tmp_path / "q")
    native = NativeClient(path=path)
    native.create_collection("foreign", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    native.upsert("foreign", [models.PointStruct(id=42, vector=[1.0, 0.0], payload={"s": "x"})])
    native.close()
    with vecbridge.connect(f"qdrant:///{path}") as client:
        coll = client.get_collection("foreign")
        assert coll.config["layout"] == "native"
        coll.set_config(note="kept")
    with vecbridge.connect(f"qdrant:///{path}") as client:
        coll = client.get_collection("foreign")
        assert coll.config["layout"] == "native" and coll.config["note"] == "kept"
        assert [r.id for r in coll.get(["42"])] == ["42"]  # "42" still names point 42


def test_clients_of_one_folder_share_the_cores_write_lock(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with vecbridge.connect("qdrant:///q") as a, vecbridge.connect(f"qdrant:///{tmp_path}/q") as b:
        assert collection_lock(a.location, "c") is collection_lock(b.location, "c")
    rest = vecbridge.connect("qdrant://Example.invalid:6333")
    grpc = vecbridge.connect("qdrant+grpc://example.invalid:6334")
    other = vecbridge.connect("qdrant://example.invalid:6333?prefix=p2")
    try:
        assert rest.location == grpc.location != other.location
    finally:
        for c in (rest, grpc, other):
            c.close()


def test_capabilities_per_form(tmp_path):
    mem = vecbridge.connect("qdrant://")
    disk = vecbridge.connect(f"qdrant:///{tmp_path}/q")
    rest = vecbridge.connect("qdrant://example.invalid:6333")
    grpc = vecbridge.connect("qdrant+grpc://example.invalid:6334")
    try:
        for c in (mem, disk, rest, grpc):
            caps = c.capabilities
            assert caps.atomic_add is False
            assert caps.filter_int_range == (-(2**53 - 1), 2**53 - 1)
            assert set(caps.metrics) == {"cosine", "l2", "ip"} and set(caps.index_types) == {"flat", "hnsw"}
        assert [c.capabilities.shared_between_processes for c in (mem, disk, rest, grpc)] == [False, False, True, True]
        assert [c.capabilities.persistent for c in (mem, disk, rest, grpc)] == [False, True, True, True]
        assert [c.capabilities.wire_bytes_per_float for c in (mem, disk, rest, grpc)] == [4, 4, 20, 4]
        assert [c.capabilities.max_request_bytes for c in (mem, disk, rest, grpc)] == [None, None, 32 << 20, 32 << 20]
    finally:
        for c in (mem, disk, rest, grpc):
            c.close()
