"""Chroma collections made by chromadb itself (layout ``native``), opened by vecbridge while
the application's own chromadb client keeps the same folder open in the same process.

Collections are made with chromadb (default configuration, so chromadb records its default
embedding function -- never called: embeddings are passed), in the spaces cosine, l2 and ip,
with metadata of several types and documents.  Every expected answer comes from chromadb's
own reads of that data and numpy brute force, never from vecbridge's reads.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import vecbridge
from vecbridge import filters
from vecbridge.errors import InvalidRecordError
from vecbridge.scores import brute_force_distances

chromadb = pytest.importorskip("chromadb")

SPACES = ["cosine", "l2", "ip"]
N, DIM = 60, 8


def _make(app: Any, space: str, seed: int) -> tuple[str, dict[str, Any]]:
    rng = np.random.default_rng(seed)
    name = f"app_{space}_{uuid.uuid4().hex[:6]}"
    coll = app.create_collection(name, metadata={"hnsw:space": space, "owner": "app"})
    ids = [f"doc-{i}" for i in range(N)]
    vecs = rng.standard_normal((N, DIM)).astype(np.float32)
    metas = [{"lang": ["en", "de", "fr"][i % 3], "n": i, "score": float(i) / 7, "ok": i % 2 == 0,
              "tags": [f"t{i % 4}", "all"]} for i in range(N)]
    coll.add(ids=ids, embeddings=vecs, metadatas=metas, documents=[f"text {i}" for i in range(N)])
    got = coll.get(include=["embeddings", "metadatas", "documents"])  # chromadb's own read of it
    return name, {id_: (np.asarray(e, np.float32), m, d)
                  for id_, e, m, d in zip(got["ids"], got["embeddings"], got["metadatas"], got["documents"])}


@pytest.fixture()
def app(tmp_path: Any) -> Iterator[tuple[Any, str]]:
    folder = str(tmp_path / "appdata")
    client = chromadb.PersistentClient(path=folder)  # the application's client, default settings
    yield client, folder
    client.close()


def test_opens_next_to_the_applications_own_client(app):
    client_app, folder = app
    name, _ = _make(client_app, "l2", 1)
    with vecbridge.connect(f"chroma:///{folder}") as vb:  # failed: "An instance of Chroma already exists"
        coll = vb.get_collection(name)
        assert coll.count() == N
        coll.upsert(["new"], [[0.5] * DIM], [{"lang": "xx"}], ["new text"])
    # the application's client sees the write, in its own layout: no _vb keys
    got = client_app.get_collection(name).get(ids=["new"], include=["metadatas", "documents"])
    assert got["metadatas"] == [{"lang": "xx"}] and got["documents"] == ["new text"]


@pytest.mark.parametrize("space", SPACES)
def test_native_collection_reads_and_queries(app, space):
    client_app, folder = app
    name, data = _make(client_app, space, SPACES.index(space))
    client_app.create_collection(f"empty_{uuid.uuid4().hex[:6]}")  # no vector yet: its dimension is unknown
    with vecbridge.connect(f"chroma:///{folder}") as vb:
        rows = {r["name"]: r for r in vb.describe_collections()}
        assert set(rows) == {c.name for c in client_app.list_collections()}
        assert rows[name]["layout"] == "native" and rows[name]["error"] is None
        assert [r for r in rows.values() if r["error"]][0]["error"].count("dimension is unknown") == 1
        coll = vb.get_collection(name)
        assert coll.config["layout"] == "native" and coll.mapping is not None
        assert coll.dimension == DIM and coll.metric == space
        got = {r.id: r for r in coll.get(include=["vector", "metadata", "document"])}
        assert set(got) == set(data)
        for id_, (vec, meta, doc) in data.items():
            np.testing.assert_array_equal(got[id_].vector, vec)
            assert got[id_].metadata == meta and got[id_].document == doc
        ids = list(data)
        x = np.stack([data[i][0] for i in ids])
        for where in ({"lang": "de"}, {"n": {"$gte": 30}}, {"$and": [{"ok": True}, {"score": {"$lt": 5.0}}]},
                      {"lang": {"$in": ["en", "fr"]}}, {"tags": {"$contains": "t1"}}):
            match = [i for i in ids if filters.evaluate(where, data[i][1])]
            assert coll.count(where=where) == len(match), where
            assert sorted(r.id for r in coll.get(where=where, include=[])) == sorted(match)
            q = x[3]
            keep = [ids.index(i) for i in match]
            d = brute_force_distances(space, q[None, :], x[keep])[0]  # the contract's distances, numpy
            want = [match[j] for j in np.argsort(d, kind="stable")[:5]]
            hits = coll.query(q, k=5, where=where)
            assert [h.id for h in hits] == want, where
            np.testing.assert_allclose([h.distance for h in hits], np.sort(d)[:5], rtol=1e-4, atol=1e-4)


def test_a_value_chroma_cannot_hold_is_refused_and_nothing_written(app):
    client_app, folder = app
    name, _ = _make(client_app, "l2", 7)
    with vecbridge.connect(f"chroma:///{folder}") as vb:
        coll = vb.get_collection(name)
        with pytest.raises(InvalidRecordError, match="'empty'"):
            coll.upsert(["a1", "a2"], [[0.0] * DIM, [1.0] * DIM], [{"x": 1}, {"empty": []}])
    assert client_app.get_collection(name).get(ids=["a1", "a2"])["ids"] == []


@pytest.mark.parametrize("space", SPACES)
def test_migrates_to_faiss_and_back(app, tmp_path, space):
    client_app, folder = app
    name, data = _make(client_app, space, 10 + SPACES.index(space))
    faiss_url = f"faiss:///{tmp_path}/faiss"
    report = vecbridge.migrate(f"chroma:///{folder}?collection={name}", f"{faiss_url}?collection=copy")
    assert report.ok
    back = f"{name}_back"
    assert vecbridge.migrate(f"{faiss_url}?collection=copy", f"chroma:///{folder}?collection={back}").ok
    for url, coll_name in ((faiss_url, "copy"), (f"chroma:///{folder}", back)):
        with vecbridge.connect(url) as vb:
            coll = vb.get_collection(coll_name)
            assert coll.metric == space
            got = {r.id: r for r in coll.get(include=["vector", "metadata", "document"])}
            assert set(got) == set(data)
            for id_, (vec, meta, doc) in data.items():
                np.testing.assert_allclose(got[id_].vector, vec, rtol=1e-6)
                assert got[id_].metadata == meta and got[id_].document == doc


def test_vecbridge_ls_lists_what_it_cannot_open(app, capsys):
    import json

    from vecbridge.cli import main

    client_app, folder = app
    name, _ = _make(client_app, "ip", 4)
    empty = f"empty_{uuid.uuid4().hex[:6]}"
    client_app.create_collection(empty)  # no vector: vecbridge cannot know its dimension
    code = main(["ls", f"chroma:///{folder}", "--json"])  # failed before: the empty one raised
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["collections"]}
    assert code == 0 and set(rows) == {name, empty}
    assert rows[name]["layout"] == "native" and rows[name]["count"] == N and "error" not in rows[name]
    assert "dimension is unknown" in rows[empty]["error"]
    assert main(["ls", f"chroma:///{folder}"]) == 0
    out = capsys.readouterr().out
    assert f"{empty}" in out and "cannot be opened" in out
