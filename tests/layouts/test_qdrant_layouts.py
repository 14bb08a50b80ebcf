"""The frameworks' layouts on Qdrant (issue 17): data written by langchain-qdrant and by
llama-index-vector-stores-qdrant, opened by vecbridge, migrated, and read back by the same
official package on the target.

Expected values come from what the official packages were given and from what they return
on the source; never from vecbridge's reads.  Local mode on disk (one client per folder:
vecbridge is closed while a package has the folder) and in memory (the packages share
vecbridge's engine); a server too where ``VECBRIDGE_TEST_QDRANT_URL`` points at one.

(The file is not named ``test_qdrant.py``: tests/native has one, and without packages pytest
cannot import two test modules of one name.)
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from qdrant_client import models

import vecbridge
from vecbridge import errors, filters

sys.path.insert(0, str(Path(__file__).parent))
import qdrant_app as app

FORMS = ["memory", "disk"] + (["server"] if os.environ.get("VECBRIDGE_TEST_QDRANT_URL") else [])
TEXTS = [f"text number {i} about {['cats', 'dogs', 'birds'][i % 3]}" for i in range(24)]
QUERIES = ["about cats", "text number 7", "birds and dogs"]


def _lc_meta(i: int) -> dict[str, Any]:
    return {"source": f"s{i % 4}", "page": i, "score": i / 8, "ok": i % 2 == 0, "tags": [f"t{i % 3}"],
            "info": {"lang": ["en", "de"][i % 2], "n": i}}


def _flat(meta: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif v is not None:
            out[f"{prefix}{k}"] = v
    return out


def _unit(v: Any) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    return a / np.linalg.norm(a)


class World:
    """One database: vecbridge URLs of its collections, and the official packages' access to it."""

    def __init__(self, form: str, tmp: Path):
        self.form = form
        self.tag = uuid.uuid4().hex[:6]
        if form == "server":
            self.base = os.environ["VECBRIDGE_TEST_QDRANT_URL"]
        else:
            self.base = "qdrant://" if form == "memory" else f"qdrant:///{tmp}/q"
        self.memory = vecbridge.connect("qdrant://") if form == "memory" else None

    def name(self, what: str) -> str:
        return f"{what}_{self.tag}"

    def app(self) -> Any:
        """What the official packages are given: the folder / server URL, or the in-memory engine."""
        return self.memory._native if self.memory is not None else self.base

    def collection(self, name: str, **options: str) -> Any:
        """A vecbridge collection (the caller closes its client: ``coll.client`` … see :meth:`close`)."""
        if self.memory is not None:
            from vecbridge.backends.qdrant import QdrantClient as VbQdrant

            client = VbQdrant("qdrant://", **options)
            client._native.close()
            client._native = self.memory._native  # the same engine, with the options given
            client._borrowed = True
        else:
            client = vecbridge.connect(self.base, **options)
        coll = client.get_collection(name) if name in client.list_collections() else None
        return client, coll

    def close(self, client: Any) -> None:
        if getattr(client, "_borrowed", False):
            client._closed = True  # the engine stays the world's
        else:
            client.close()


@pytest.fixture(params=FORMS)
def world(request, tmp_path):
    w = World(request.param, tmp_path)
    yield w
    if w.memory is not None:
        w.memory.close()
    elif w.form == "server":
        with app.native(w.base) as c:
            for col in c.get_collections().collections:
                if col.name.endswith(w.tag):
                    c.delete_collection(col.name)


def _migrate(world: World, source: str, target: str, src_opts: dict[str, str], tgt_opts: dict[str, str]) -> Any:
    """vecbridge.migrate from one collection of the world to a new one."""
    if world.memory is None:
        q = lambda o: "".join(f"&{k}={v}" for k, v in o.items())
        sep = "&" if "?" in world.base else "?"
        return vecbridge.migrate(f"{world.base}{sep}collection={source}{q(src_opts)}",
                                 f"{world.base}{sep}collection={target}{q(tgt_opts)}", verify="full",
                                 checkpoint=False)
    sc, scoll = world.collection(source, **src_opts)
    tc, _ = world.collection(target, **tgt_opts)
    try:
        tcoll = tc.create_collection(target, scoll.dimension, scoll.metric)
        return vecbridge.migrate(scoll, tcoll, verify="full", checkpoint=False)
    finally:
        world.close(sc)
        world.close(tc)


def _same_hits(got: list[list[dict[str, Any]]], want: list[list[dict[str, Any]]]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert [{k: v for k, v in h.items() if k != "score"} for h in g] == \
               [{k: v for k, v in h.items() if k != "score"} for h in w]
        np.testing.assert_allclose([h["score"] for h in g], [h["score"] for h in w], atol=1e-3)


# -- LangChain -------------------------------------------------------------------------
@pytest.mark.parametrize("vector_name", ["", "x"])
def test_langchain_qdrant_opens_migrates_and_serves_the_application(world, vector_name, tmp_path):
    name, copy = world.name("lc"), world.name("lc_copy")
    metas = [_lc_meta(i) for i in range(len(TEXTS))]
    ids = app.langchain_write(world.app(), name, TEXTS, metas, vector_name=vector_name)
    assert all(uuid.UUID(i).hex == i for i in ids)  # LangChain's uuid4 hex ids
    emb = app.embedding()
    opts = {"vector_field": vector_name} if vector_name else {}
    client, coll = world.collection(name, **opts)
    try:
        assert coll.config["layout"] == "langchain"  # detected from the payload keys
        assert (coll.metric, coll.dimension, coll.count()) == ("cosine", app.DIM, len(TEXTS))
        recs = {r.id: r for b in coll.scan(include=["metadata", "document", "vector"]) for r in b}
        assert set(recs) == {str(uuid.UUID(i)) for i in ids}  # point ids in canonical form
        for i, text, meta in zip(ids, TEXTS, metas):
            r = recs[str(uuid.UUID(i))]
            assert (r.document, r.metadata) == (text, _flat(meta))
            np.testing.assert_allclose(_unit(r.vector), _unit(emb.embed_query(text)), atol=1e-6)
        # filters on metadata keys are metadata.<key> payload paths
        where = {"$and": [{"source": {"$in": ["s1", "s2"]}}, {"info.lang": "de"}, {"page": {"$gte": 4}}]}
        match = sorted(str(uuid.UUID(i)) for i, m in zip(ids, metas) if filters.evaluate(where, _flat(m)))
        assert sorted(r.id for r in coll.get(where=where, limit=100)) == match and match
        flt = coll._filter(filters.parse({"source": "s1"}))
        assert flt.must[0].key == '"metadata"."source"'
        # a write through vecbridge is what LangChain reads
        new = str(uuid.uuid4())
        coll.add([new], [emb.embed_query("a new text")], [{"source": "vb", "deep.er": 1}], ["a new text"])
    finally:
        world.close(client)
    with app.native(world.app()) as nc:
        assert nc.retrieve(name, [new], with_payload=True)[0].payload == {
            "page_content": "a new text", "metadata": {"source": "vb", "deep": {"er": 1}}}
        nc.delete(name, models.PointIdsList(points=[new]), wait=True)
    source_hits = app.langchain_search(world.app(), name, QUERIES, k=5, vector_name=vector_name)
    source_filtered = app.langchain_search(world.app(), name, QUERIES, k=3, filter={"source": "s2"},
                                           vector_name=vector_name)
    report = _migrate(world, name, copy, opts, {"layout": "langchain", **opts})
    assert report.records_copied == len(TEXTS) and report.verification.ok and report.verification.checked == len(TEXTS)
    with app.native(world.app()) as nc:  # created as langchain-qdrant creates it
        info = nc.get_collection(copy).config.params
        vectors = info.vectors
        if isinstance(vectors, dict):
            assert list(vectors) == [vector_name] and vectors[vector_name].distance == models.Distance.COSINE
        else:  # a server shows the vector named "" as the unnamed one
            assert vector_name == "" and vectors.distance == models.Distance.COSINE
        points = nc.scroll(copy, limit=100, with_payload=True)[0]
        assert all(set(p.payload) == {"page_content", "metadata"} for p in points)
    _same_hits(app.langchain_search(world.app(), copy, QUERIES, k=5, vector_name=vector_name), source_hits)
    _same_hits(app.langchain_search(world.app(), copy, QUERIES, k=3, filter={"source": "s2"},
                                    vector_name=vector_name), source_filtered)
    # into vecbridge's own layout (FAISS), field by field
    faiss = f"faiss:///{tmp_path}/f?collection=lcfaiss"
    if world.memory is None:
        rep = vecbridge.migrate(f"{world.base}?collection={name}" + (f"&vector_field={vector_name}" if vector_name
                                                                     else ""), faiss, checkpoint=False)
    else:
        c, src = world.collection(name, **opts)
        rep = vecbridge.migrate(src, faiss, checkpoint=False)
        world.close(c)
    assert rep.records_copied == len(TEXTS)
    with vecbridge.connect(faiss) as fc:
        got = {r.id: (r.document, r.metadata) for b in fc.get_collection("lcfaiss").scan() for r in b}
    assert got == {str(uuid.UUID(i)): (t, _flat(m)) for i, t, m in zip(ids, TEXTS, metas)}


# -- LlamaIndex ------------------------------------------------------------------------
def _li_specs() -> list[dict[str, Any]]:
    out = []
    for i, t in enumerate(TEXTS):
        meta: dict[str, Any] = {"author": f"a{i % 3}", "year": 2000 + i, "text": f"a key named text {i}"}
        # a nested object first or last: the node JSON keeps the order LlamaIndex wrote
        meta = {"nest": {"x": i % 2, "y": {"z": i}}, **meta} if i % 2 else {**meta, "nest": {"x": i % 2}}
        out.append({"id": str(uuid.UUID(int=1000 + i)), "text": t + (" — café" if i == 3 else ""), "metadata": meta,
                    "source": f"doc-{i // 4}" if i % 5 else None})
    return out


@pytest.mark.parametrize("dense", [None, "text-dense"])
def test_llamaindex_qdrant_opens_migrates_and_serves_the_application(world, dense, tmp_path):
    name, copy = world.name("li"), world.name("li_copy")
    specs = _li_specs()
    app.llamaindex_write(world.app(), name, specs, dense_vector_name=dense)
    ids = [s["id"] for s in specs]
    written = app.llamaindex_get(world.app(), name, ids)  # the nodes as LlamaIndex gives them back
    with app.native(world.app()) as nc:
        vectors = nc.get_collection(name).config.params.vectors
        assert isinstance(vectors, dict) == bool(dense)  # 0.10 makes an unnamed vector unless hybrid
        payloads = {str(p.id): p.payload for p in nc.scroll(name, limit=100, with_payload=True)[0]}
    emb = app.embedding()
    client, coll = world.collection(name)
    try:
        assert coll.config["layout"] == "llamaindex"
        assert (coll.metric, coll.dimension, coll.count()) == ("cosine", app.DIM, len(specs))
        recs = {r.id: r for b in coll.scan(include=["metadata", "document", "vector"]) for r in b}
        assert set(recs) == set(ids)
        for s in specs:
            r = recs[s["id"]]
            assert r.document == s["text"]  # out of _node_content
            node_keys = {k: payloads[s["id"]][k] for k in ("_node_content", "_node_type", "document_id", "doc_id",
                                                           "ref_doc_id")}
            assert r.metadata == {**_flat(s["metadata"]), **node_keys}
            assert r.metadata["ref_doc_id"] == (s["source"] or "None")
            np.testing.assert_allclose(_unit(r.vector), _unit(emb.embed_query(s["text"])), atol=1e-6)
        only_doc = coll.get([ids[3]], include=["document"])[0]
        assert (only_doc.document, only_doc.metadata) == (specs[3]["text"], None)
        where = {"$and": [{"author": "a1"}, {"nest.x": 1}]}
        match = sorted(s["id"] for s in specs if filters.evaluate(where, _flat(s["metadata"])))
        assert sorted(r.id for r in coll.get(where=where)) == match and match
        assert coll.count(where={"text": specs[2]["metadata"]["text"]}) == 1  # a metadata key, not the document
    finally:
        world.close(client)
    source_hits = app.llamaindex_query(world.app(), name, QUERIES, k=5)
    source_filtered = app.llamaindex_query(world.app(), name, QUERIES, k=3, filter={"author": "a2"})
    tgt = {"layout": "llamaindex", **({"vector_field": dense} if dense else {})}
    report = _migrate(world, name, copy, {}, tgt)
    assert report.records_copied == len(specs) and report.verification.ok and report.verification.checked == len(specs)
    with app.native(world.app()) as nc:  # created as the package creates it, the node JSON as it wrote it
        vectors = nc.get_collection(copy).config.params.vectors
        assert isinstance(vectors, dict) == bool(dense)
        got = {str(p.id): p.payload for p in nc.scroll(copy, limit=100, with_payload=True)[0]}
    assert {i: {**p, "_node_content": json.loads(p["_node_content"])} for i, p in got.items()} == \
           {i: {**p, "_node_content": json.loads(p["_node_content"])} for i, p in payloads.items()}
    # the application on the target: the same nodes, whole (text, metadata, relationships, ref_doc_id)
    assert app.llamaindex_get(world.app(), copy, ids) == written
    assert written[ids[1]]["relationships"] == {"1": "doc-0"} and written[ids[1]]["ref_doc_id"] == "doc-0"
    _same_hits(app.llamaindex_query(world.app(), copy, QUERIES, k=5), source_hits)
    _same_hits(app.llamaindex_query(world.app(), copy, QUERIES, k=3, filter={"author": "a2"}), source_filtered)


def test_langchain_into_llamaindex_on_qdrant(world):
    """Across frameworks: a LangChain store becomes a LlamaIndex one (plain TextNodes)."""
    name, copy = world.name("lcx"), world.name("lix")
    metas = [{"source": f"s{i % 3}", "page": i} for i in range(len(TEXTS))]
    ids = app.langchain_write(world.app(), name, TEXTS, metas)
    ids += app.langchain_write(world.app(), name, ["no metadata at all"], None)  # "metadata": None
    texts, metas = [*TEXTS, "no metadata at all"], [*metas, {}]
    report = _migrate(world, name, copy, {}, {"layout": "llamaindex"})
    assert report.records_copied == len(texts)  # (verification sees the node keys the target adds)
    got = app.llamaindex_get(world.app(), copy, [str(uuid.UUID(i)) for i in ids])
    assert {i: (n["text"], n["metadata"], n["type"]) for i, n in got.items()} == {
        str(uuid.UUID(i)): (t, m, "TextNode") for i, t, m in zip(ids, texts, metas)}
    client, _ = world.collection(copy)
    try:
        rows = {r["name"]: r["layout"] for r in client.describe_collections()}
        assert (rows[name], rows[copy]) == ("langchain", "llamaindex")
    finally:
        world.close(client)
    client, _ = world.collection("unused", layout="langchain")  # not what the payload shows: refused
    try:
        with pytest.raises(errors.UnsupportedFeatureError, match="has the layout 'llamaindex', not 'langchain'"):
            client.get_collection(copy)
    finally:
        world.close(client)
    hits = app.llamaindex_query(world.app(), copy, ["about dogs"], k=3, filter={"source": "s1"})[0]
    want = app.langchain_search(world.app(), name, ["about dogs"], k=3, filter={"source": "s1"})[0]
    assert [(h["id"], h["text"]) for h in hits] == [(h["id"], h["text"]) for h in want]
    np.testing.assert_allclose([h["score"] for h in hits], [h["score"] for h in want], atol=1e-3)  # both cos
    # and back into LangChain: the node keys are left out (LangChain keeps no relationships)
    back = world.name("lcy")
    report = _migrate(world, copy, back, {}, {"layout": "langchain"})
    assert report.records_copied == len(texts)
    _same_hits(app.langchain_search(world.app(), back, QUERIES, k=6), app.langchain_search(world.app(), name, QUERIES,
                                                                                          k=6))
    with app.native(world.app()) as nc:
        assert all(set(p.payload["metadata"]) <= {"source", "page"} for p in nc.scroll(back, limit=100,
                                                                                         with_payload=True)[0])


def test_framework_writes_are_checked_before_anything_is_written(world):
    """A record the layout cannot take is refused by ``_vb_check_batch`` and by the write alike."""
    from vecbridge.validation import Batch

    client, _ = world.collection("unused", layout="llamaindex")
    try:
        coll = client.create_collection(world.name("chk"), 4, "cosine")
        vec = np.ones((1, 4), dtype=np.float32)
        for batch, err in ((Batch(["not-a-uuid"], vec, [{}], ["t"]), errors.InvalidRecordError),
                           (Batch([str(uuid.uuid4())], vec, [{"_node_content": "{broken"}], ["t"]),
                            errors.InvalidMetadataError)):
            with pytest.raises(err):
                coll._vb_check_batch(batch)
            with pytest.raises(err):
                coll.upsert(batch.ids, batch.vectors, batch.metadatas, batch.documents)
        assert coll.count() == 0
        assert not coll.conversions  # the checks counted nothing
    finally:
        world.close(client)
