"""``layout=native`` on Chroma: vecbridge creates a plain chromadb collection (issue 12 item 4).

Each test creates a collection through vecbridge with ``?layout=native``, writes records, and
checks them with chromadb's OWN client (never vecbridge): ids, documents and metadata as
Chroma keeps them (no ``_vb`` keys, no uris), the HNSW space of the metric, the vectors;
chromadb's own search against numpy brute force; then the collection reopened by vecbridge
is ``layout native`` with the written records.  Forms: a folder, a named database of the
in-memory engine, a Chroma server.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import engines
import numpy as np
import pytest

import vecbridge
from vecbridge.errors import InvalidMetadataError
from vecbridge.validation import Batch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "layouts"))
from chroma_app import open_chromadb

chromadb = pytest.importorskip("chromadb")

METRICS = ["cosine", "l2", "ip"]
N, DIM = 40, 6


def _data(seed: int) -> tuple[list[str], np.ndarray, list[dict[str, Any]], list[str | None]]:
    rng = np.random.default_rng(seed)
    ids = [f"r{i}" for i in range(N)]
    vecs = rng.standard_normal((N, DIM)).astype(np.float32)
    metas: list[dict[str, Any]] = [
        {"lang": ["en", "de", "fr"][i % 3], "n": i, "x": i / 4, "whole": 2.0, "ok": i % 2 == 0,
         "tags": [f"t{i % 4}", "all"], "ns": [i, i + 1], "fs": [0.5, 1.5], "bs": [True, False]}
        if i % 5 else {} for i in range(N)]
    docs = [f"text {i}" if i % 3 else None for i in range(N)]
    return ids, vecs, metas, docs


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with engines.chroma_server() as engine:
        yield engine.url


@pytest.fixture(params=["folder", "memory", "server"])
def url(request: Any, tmp_path: Path) -> str:
    if request.param == "folder":
        return f"chroma:///{tmp_path}/data"
    if request.param == "memory":
        return f"chroma://?database=app_{uuid.uuid4().hex[:8]}"
    return request.getfixturevalue("server")


def _join(url: str, query: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{query}"


@pytest.mark.parametrize("metric", METRICS)
def test_native_layout_is_a_plain_chromadb_collection(url, metric):
    ids, vecs, metas, docs = _data(METRICS.index(metric))
    name = f"made_{metric}_{uuid.uuid4().hex[:6]}"
    with open_chromadb(url) as app:  # the application's own client stays open throughout
        with vecbridge.connect(_join(url, "layout=native")) as vb:
            coll = vb.create_collection(name, DIM, metric)
            assert coll.config["layout"] == "native"
            coll.add(ids[:20], vecs[:20], metas[:20], docs[:20])
            coll.upsert(ids[20:], vecs[20:], metas[20:], docs[20:])
        native = app.get_collection(name, embedding_function=None)
        # the collection: its space is the metric; one metadata key, vecbridge's config (no format marker)
        assert native.configuration_json["hnsw"]["space"] == metric
        assert set(native.metadata) == {"vecbridge_config"}
        assert json.loads(native.metadata["vecbridge_config"]) == {"dimension": DIM, "metric": metric,
                                                                    "layout": "native"}
        got = native.get(include=["embeddings", "metadatas", "documents", "uris"])
        assert sorted(got["ids"]) == sorted(ids)
        at = {id_: i for i, id_ in enumerate(got["ids"])}
        for i, id_ in enumerate(ids):
            j = at[id_]
            stored = got["metadatas"][j]
            assert (stored or {}) == metas[i], id_  # as written: no _vb keys, no type tags
            assert all(type(stored[k]) is type(v) for k, v in metas[i].items())  # 2.0 stays a float
            assert got["documents"][j] == docs[i]
            assert got["uris"][j] is None  # no exact-vector copy
            if metric == "cosine":  # Chroma keeps norm x unit vector: close, not bit-exact
                np.testing.assert_allclose(got["embeddings"][j], vecs[i], rtol=1e-5, atol=1e-6)
            else:
                np.testing.assert_array_equal(np.asarray(got["embeddings"][j], np.float32), vecs[i])
        # chromadb's own search ranks as numpy brute force does
        q = vecs[3] + 0.1
        if metric == "l2":
            d = ((vecs - q) ** 2).sum(1)
        elif metric == "ip":
            d = -(vecs @ q)
        else:
            d = 1 - (vecs @ q) / np.linalg.norm(vecs, axis=1) / np.linalg.norm(q)
        hits = native.query(query_embeddings=[q], n_results=5)
        assert hits["ids"][0] == [ids[i] for i in np.argsort(d)[:5]]
    # reopened by vecbridge (no layout option): layout native, the records as written
    with open_chromadb(url), vecbridge.connect(url) as vb:
        coll = vb.get_collection(name)
        assert coll.config["layout"] == "native" and coll.mapping is not None and coll.mapping.layout == "native"
        assert (coll.dimension, coll.metric) == (DIM, metric)
        back = {r.id: r for r in coll.get(include=["vector", "metadata", "document"])}
        for i, id_ in enumerate(ids):
            assert back[id_].metadata == metas[i] and back[id_].document == docs[i]
            np.testing.assert_allclose(back[id_].vector, vecs[i], rtol=1e-5, atol=1e-6)
        assert any("gives up" in line for line in coll.mapping.describe())
        assert coll.config["mapping"] == coll.mapping.describe()
        coll.set_config(note="kept")  # the mapping is described, never stored
    with open_chromadb(url) as app:
        stored = json.loads(app.get_collection(name).metadata["vecbridge_config"])
        assert stored == {"dimension": DIM, "metric": metric, "layout": "native", "note": "kept"}


def test_an_empty_native_collection_reopens(tmp_path):
    url = f"chroma:///{tmp_path}/data"
    with vecbridge.connect(_join(url, "layout=native")) as vb:
        vb.create_collection("empty_one", DIM, "ip")
    with vecbridge.connect(url) as vb:  # Chroma knows no dimension yet: the config key says it
        coll = vb.get_collection("empty_one")
        assert (coll.dimension, coll.metric, coll.config["layout"], coll.count()) == (DIM, "ip", "native", 0)


@pytest.mark.parametrize("meta,key", [({"e": []}, "'e'"), ({"#k": 1}, "'#k'"), ({"chroma:x": "v"}, "'chroma:x'")])
def test_what_chroma_cannot_hold_is_refused_before_writing(tmp_path, meta, key):
    url = f"chroma:///{tmp_path}/data"
    with open_chromadb(url) as app:
        with vecbridge.connect(_join(url, "layout=native")) as vb:
            coll = vb.create_collection("refusals", 2, "l2")
            batch = Batch(["a", "b"], np.ones((2, 2), np.float32), [{"fine": 1}, meta], [None, None])
            with pytest.raises(InvalidMetadataError, match=key):
                coll._vb_check_batch(batch)  # the planner's look-ahead: the same error
            with pytest.raises(InvalidMetadataError, match=key):
                coll.upsert(["a", "b"], [[1, 1], [2, 2]], [{"fine": 1}, meta])
            with pytest.raises(InvalidMetadataError, match=key):
                coll.add(["a", "b"], [[1, 1], [2, 2]], [{"fine": 1}, meta])
        assert app.get_collection("refusals").count() == 0  # nothing written, chromadb says


def test_migrate_faiss_into_native_layout(tmp_path):
    ids, vecs, metas, docs = _data(11)
    src = f"faiss:///{tmp_path}/faiss"
    with vecbridge.connect(src) as vb:
        vb.create_collection("src", DIM, "l2").upsert(ids, vecs, metas, docs)
    dst = f"chroma:///{tmp_path}/chroma"
    report = vecbridge.migrate(f"{src}?collection=src", f"{dst}?collection=moved&layout=native")
    assert report.ok and report.records_copied == N
    with open_chromadb(dst) as app:
        native = app.get_collection("moved")
        assert native.configuration_json["hnsw"]["space"] == "l2"
        got = native.get(include=["embeddings", "metadatas", "documents"])
        at = {id_: i for i, id_ in enumerate(got["ids"])}
        assert set(at) == set(ids)
        for i, id_ in enumerate(ids):
            assert (got["metadatas"][at[id_]] or {}) == metas[i] and got["documents"][at[id_]] == docs[i]
            np.testing.assert_array_equal(np.asarray(got["embeddings"][at[id_]], np.float32), vecs[i])


def test_a_vecbridge_collection_is_not_opened_as_native(tmp_path):
    url = f"chroma:///{tmp_path}/data"
    with vecbridge.connect(url) as vb:
        vb.create_collection("ours", 2, "l2")
    with vecbridge.connect(_join(url, "layout=native")) as vb, \
            pytest.raises(vecbridge.UnsupportedFeatureError, match="vecbridge's layout"):
        vb.get_collection("ours")
