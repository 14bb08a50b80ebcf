"""The rows FAISS queries return come from a cache: it never serves a stale or shared row."""

from __future__ import annotations

import numpy as np
import pytest

import vecbridge
from vecbridge.backends.faiss import store as faiss_store

pytest.importorskip("faiss")

X = np.random.default_rng(5).normal(size=(50, 4)).astype(np.float32)
IDS = [f"r{i}" for i in range(len(X))]
METAS = [{"n": i, "tags": ["a", str(i)]} for i in range(len(X))]


def test_hits_do_not_share_metadata_with_the_cache():
    with vecbridge.connect("faiss://") as client:
        coll = client.create_collection("rows", 4, "l2", index={"type": "flat"})
        coll.add(IDS, X, METAS)
        hit = coll.query(X[3], k=1)[0]
        hit.metadata["n"] = -1
        hit.metadata["tags"].append("changed")
        assert coll.query(X[3], k=1)[0].metadata == METAS[3]


def test_an_update_by_another_client_shows_in_the_next_query(tmp_path):
    url = "faiss:///" + str(tmp_path / "s")
    with vecbridge.connect(url) as a, vecbridge.connect(url) as b:
        coll = a.create_collection("rows", 4, "l2")
        coll.add(IDS, X, METAS, documents=[f"doc {i}" for i in range(len(X))])
        assert coll.query(X[7], k=1)[0].metadata == METAS[7]  # now cached
        b.get_collection("rows").update(["r7"], metadatas=[{"n": 700}], documents=["new"])
        hit = coll.query(X[7], k=1)[0]
        assert (hit.id, hit.metadata, hit.document) == ("r7", {"n": 700}, "new")
        coll.update(["r7"], vectors=X[8:9] + 0.01)  # and by the same client
        assert [h.id for h in coll.query(X[8], k=2)] == ["r8", "r7"]  # distances 0 and 0.02
        assert coll.get(["r7"], include=["metadata"])[0].metadata == {"n": 700}


def test_a_batch_larger_than_the_cache_returns_every_row(monkeypatch):
    monkeypatch.setattr(faiss_store, "ROW_CACHE_LIMIT", 7)
    with vecbridge.connect("faiss://") as client:
        coll = client.create_collection("rows", 4, "l2", index={"type": "flat"})
        coll.add(IDS, X, METAS)
        rows = coll.query(X, k=5)
        for i, row in enumerate(rows):
            assert len(row) == 5 and row[0].id == IDS[i]
            assert all(h.metadata == METAS[int(h.id[1:])] for h in row)
