"""FAISS keeps a collection's configuration document in its info table: it survives reopening,
holds the collection's facts, and folders made before it existed still open."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

import vecbridge

pytest.importorskip("faiss")


def test_set_config_survives_reopening(tmp_path):
    url = f"faiss:///{tmp_path}/f"
    with vecbridge.connect(url) as client:
        coll = client.create_collection("conf", 3, "ip", index={"type": "hnsw", "m": 8})
        coll.add(["a"], [[1.0, 2.0, 3.0]])
        coll.set_config(embedding="x", note={"n": 1})
        coll.set_config(note=None)
    with vecbridge.connect(url) as client:
        conf = client.get_collection("conf").config
    assert conf["embedding"] == "x" and "note" not in conf
    assert conf["dimension"] == 3 and conf["metric"] == "ip" and conf["layout"] == "vecbridge"
    assert conf["index"] == {"type": "hnsw", "m": 8}
    # what the file holds, read natively
    conn = sqlite3.connect(tmp_path / "f" / "conf" / "records.sqlite")
    stored = json.loads(conn.execute("SELECT value FROM info WHERE key = 'config'").fetchone()[0])
    conn.close()
    assert stored == {"dimension": 3, "metric": "ip", "index": {"type": "hnsw", "m": 8},
                      "layout": "vecbridge", "embedding": "x"}


def test_in_memory_config(tmp_path):
    with vecbridge.connect("faiss://") as client:
        coll = client.create_collection("mem", 2, "cosine")
        coll.set_config(embedding="y")
        assert client.get_collection("mem").config["embedding"] == "y"
        assert coll.config["index"] == {"type": "hnsw"}


def test_a_folder_from_before_the_config_document_still_opens(tmp_path):
    url = f"faiss:///{tmp_path}/f"
    X = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    with vecbridge.connect(url) as client:
        client.create_collection("old", 4, "l2", index={"type": "flat"}).add([f"r{i}" for i in range(5)], X)
    # the info table as earlier versions wrote it: the facts as keys of their own, no document
    conn = sqlite3.connect(tmp_path / "f" / "old" / "records.sqlite", isolation_level=None)
    conn.execute("DELETE FROM info WHERE key = 'config'")
    conn.executemany("INSERT INTO info (key, value) VALUES (?, ?)",
                     [("dimension", "4"), ("metric", '"l2"'), ("index", '{"type": "flat"}')])
    conn.close()
    with vecbridge.connect(url) as client:
        coll = client.get_collection("old")
        assert (coll.dimension, coll.metric, coll.index) == (4, "l2", {"type": "flat"})
        assert coll.query(X[2], k=1)[0].id == "r2"
        assert "embedding" not in coll.config
        coll.set_config(embedding="z")
    with vecbridge.connect(url) as client:
        coll = client.get_collection("old")
        assert coll.config["embedding"] == "z" and coll.config["metric"] == "l2"
        assert coll.count() == 5
