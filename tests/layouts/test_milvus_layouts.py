"""The frameworks' layouts on Milvus (issue 17): LangChain (langchain-milvus 0.4) and LlamaIndex
(llama-index-vector-stores-milvus 1.2, in its own virtualenv: milvus_app.py).

Data is written with the official packages; vecbridge opens it (the layout detected) and is
checked field by field against what was written; vecbridge then migrates it into a collection
of the same layout (and of the other framework's), and the official package on the target must
return, for the same queries, the same ids, texts and metadata, scores within 1e-3, as on the
source.  LlamaIndex runs against the Milvus server only (a Milvus Lite folder is not safe
across pymilvus versions); LangChain on Milvus Lite and the server.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import milvus_app as app
import numpy as np
import pytest
from pymilvus import MilvusClient

import vecbridge
from vecbridge import InvalidMetadataError, InvalidRecordError, filters
from vecbridge.validation import Batch

N = 8
RNG = np.random.default_rng(5)
TEXTS = [f"text number {i}" for i in range(N)]
VECS = {t: RNG.normal(size=6).round(4).tolist() for t in TEXTS}
IDS = [f"lc-{i}" for i in range(N)]
METAS = [{"source": f"s{i % 3}", "page": i, "score": i / 4, "ok": i % 2 == 0} for i in range(N)]
VARIANTS = {"default": {}, "dynamic": {"enable_dynamic_field": True}, "json": {"metadata_field": "metadata"}}


def _drop(uri: str, *names: str) -> None:
    n = MilvusClient(uri=uri)
    try:
        for name in names:
            if n.has_collection(name):
                n.drop_collection(name)
    finally:
        n.close()


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    path = str(tmp_path_factory.mktemp("milvus-layouts") / "l.db")
    return f"milvus:///{path}", path


@pytest.fixture(scope="module", params=["milvus-server"])  # the id puts its tests in the server shard
def server() -> tuple[str, str]:
    return app.server()


def _same_hits(a: list[Any], b: list[Any]) -> None:
    assert len(a) == len(b)
    for qa, qb in zip(a, b):
        assert [h[:3] for h in qa] == [h[:3] for h in qb]
        assert np.allclose([h[3] for h in qa], [h[3] for h in qb], atol=1e-3)


# -- LangChain --------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_langchain_written_by_the_package_reads(lite: tuple[str, str], variant: str) -> None:
    url, uri = lite
    name = f"lc_{variant}"
    app.langchain_write(uri, name, TEXTS, METAS, IDS, VECS, drop_old=True, **VARIANTS[variant])
    with vecbridge.connect(url) as client:
        assert {e["name"]: e for e in client.describe_collections()}[name] == \
            {"name": name, "layout": "langchain", "error": None}
        coll = client.get_collection(name)
        assert (coll.mapping.layout, coll.metric, coll.dimension) == ("langchain", "l2", 6)
        got = {r.id: r for r in coll.get(include=["vector", "metadata", "document"])}
        assert set(got) == set(IDS)
        for i, id_ in enumerate(IDS):
            assert (got[id_].document, got[id_].metadata) == (TEXTS[i], METAS[i])
            np.testing.assert_allclose(got[id_].vector, VECS[TEXTS[i]], rtol=0, atol=1e-6)
        for where in ({"source": "s1"}, {"page": {"$gte": 5}}, {"ok": False}, {"score": {"$lt": 0.6}},
                      {"$or": [{"source": "s0"}, {"page": 7}]}, {"source": {"$ne": "s2"}}):
            want = {IDS[i] for i in range(N) if filters.evaluate(where, METAS[i])}
            assert {r.id for r in coll.get(where=where)} == want, where
        q = np.asarray(VECS[TEXTS[2]], dtype=np.float32)
        hits = coll.query(q, k=3)
        brute = np.argsort([((np.asarray(VECS[t]) - q) ** 2).sum() for t in TEXTS])[:3]
        assert [h.id for h in hits] == [IDS[j] for j in brute]


def _fields(uri: str, name: str) -> list[tuple[str, Any, bool]]:
    n = MilvusClient(uri=uri)
    try:
        d = n.describe_collection(name)
        idx = n.describe_index(name, "vector")
        return [(f["name"], f["type"], bool(f.get("is_primary"))) for f in d["fields"]] + \
            [("dynamic", d["enable_dynamic_field"], False), ("index", idx["index_type"], False),
             ("metric", idx["metric_type"], False)]
    finally:
        n.close()


@pytest.mark.parametrize("variant", ["default", "json"])
@pytest.mark.parametrize("where", ["milvus-lite", "milvus-server"])
def test_langchain_migrated_answers_alike(lite: tuple[str, str], where: str, variant: str) -> None:
    src_url, src_uri = lite
    name = f"lcm_{variant}"
    kw = VARIANTS[variant]
    app.langchain_write(src_uri, name, TEXTS, METAS, IDS, VECS, drop_old=True, **kw)
    dst_url, dst_uri = lite if where == "milvus-lite" else app.server()
    target = f"{name}_copy"
    _drop(dst_uri, target)
    extra = "&metadata_field=metadata" if variant == "json" else ""
    report = vecbridge.migrate(f"{src_url}?collection={name}", f"{dst_url}?collection={target}&layout=langchain{extra}",
                               verify="full")
    assert report.ok and report.verification is not None and report.verification.checked == N
    # what the official package would have made: the same fields, types, key, index and metric
    assert _fields(dst_uri, target) == _fields(src_uri, name)
    a = app.langchain_query(src_uri, name, TEXTS, VECS, 4, **kw)
    b = app.langchain_query(dst_uri, target, TEXTS, VECS, 4, **kw)
    _same_hits(a, b)
    assert {h[1]: h[2] for q in b for h in q} == {TEXTS[i]: METAS[i] for i in range(N)}  # the data written
    _drop(dst_uri, target)


def test_langchain_refusals_name_the_record(lite: tuple[str, str]) -> None:
    url, uri = lite
    _drop(uri, "lc_new")
    with vecbridge.connect(url + "?layout=langchain") as client:
        coll = client.create_collection("lc_new", 6, "l2")
        vec = np.asarray([VECS[TEXTS[0]]] * 2, dtype=np.float32)
        with pytest.raises(InvalidMetadataError, match="'tags'"):  # no scalar field for a list
            coll._vb_check_batch(Batch(["a"], vec[:1].copy(), [{"tags": ["x"]}], ["t"]))
        with pytest.raises(InvalidRecordError, match="page"):  # langchain's fields come from the first record
            coll._vb_check_batch(Batch(["a", "b"], vec, [{"page": 1}, {"other": 2}], ["t", "u"]))
        with pytest.raises(InvalidMetadataError, match="'pk'"):
            coll.add(["a"], vec[:1], [{"pk": "x"}], ["t"])
        with pytest.raises(InvalidRecordError, match="page"):  # a refused first batch decides no fields
            coll.add(["a", "b"], vec, [{"page": 1}, {"other": 2}], ["t", "u"])
        assert [f[0] for f in _fields(uri, "lc_new")] == ["text", "pk", "vector", "dynamic", "index", "metric"]
        assert coll.count() == 0
        coll.add(["a", "b"], vec, [{"page": 1}, {"page": 2}], ["t", None])
        with pytest.raises(InvalidRecordError, match="page"):
            coll.add(["c"], vec[:1], [{"other": 1}], ["t"])
        assert sorted((r.id, r.document, r.metadata["page"]) for r in coll.get()) == [("a", "t", 1), ("b", "", 2)]
    assert [f[0] for f in _fields(uri, "lc_new")][:4] == ["text", "pk", "vector", "page"]


# -- LlamaIndex -------------------------------------------------------------------------------
LI_RNG = np.random.default_rng(9)
NODES = [{"id": f"node-{i}", "text": f"llama text {i}", "metadata": {"author": f"a{i % 2}", "year": 2000 + i,
                                                                   "weight": i / 8},
          "embedding": LI_RNG.normal(size=5).round(4).tolist(), "source": f"doc-{i % 2}" if i < 4 else None}
         for i in range(6)]
LI_QUERIES = [LI_RNG.normal(size=5).round(4).tolist() for _ in range(3)]


def _li(op: str, uri: str, collection: str, **kw: Any) -> Any:
    return app.llamaindex({"op": op, "uri": uri, "collection": collection, "dim": 5, **kw})  # kw may set dim


@pytest.fixture(scope="module")
def li_source(server: tuple[str, str]) -> str:
    assert _li("write", server[1], "li_src", overwrite=True, nodes=NODES)["ids"] == [n["id"] for n in NODES]
    return "li_src"


def test_llamaindex_written_by_the_package_reads(server: tuple[str, str], li_source: str) -> None:
    from llama_index.core.vector_stores.utils import metadata_dict_to_node

    url, _ = server
    with vecbridge.connect(url) as client:
        assert {e["name"]: e["layout"] for e in client.describe_collections()}[li_source] == "llamaindex"
        coll = client.get_collection(li_source)
        assert (coll.mapping.layout, coll.metric, coll.dimension) == ("llamaindex", "ip", 5)
        got = {r.id: r for r in coll.get(include=["vector", "metadata", "document"])}
        assert set(got) == {n["id"] for n in NODES}
        for n in NODES:
            r = got[n["id"]]
            assert r.document == n["text"]
            assert {k: v for k, v in r.metadata.items() if not k.startswith("_") and k not in
                    ("doc_id", "document_id", "ref_doc_id")} == n["metadata"]
            ref = n["source"] or "None"
            assert (r.metadata["doc_id"], r.metadata["ref_doc_id"], r.metadata["_node_type"]) == (ref, ref, "TextNode")
            np.testing.assert_allclose(r.vector, n["embedding"], rtol=0, atol=1e-6)
            node = metadata_dict_to_node(r.metadata, text=r.document)  # the node arrives whole
            assert (node.node_id, node.metadata, node.get_content()) == (n["id"], n["metadata"], n["text"])
            assert node.ref_doc_id == n["source"]
        for where in ({"author": "a1"}, {"year": {"$gt": 2002}}, {"weight": {"$lte": 0.25}}):
            want = {n["id"] for n in NODES if filters.evaluate(where, n["metadata"])}
            assert {r.id for r in coll.get(where=where)} == want, where


def test_llamaindex_migrated_answers_alike(server: tuple[str, str], li_source: str) -> None:
    url, uri = server
    _drop(uri, "li_copy")
    report = vecbridge.migrate(f"{url}?collection={li_source}", f"{url}?collection=li_copy&layout=llamaindex",
                               verify="full")
    assert report.ok and report.verification is not None and report.verification.checked == len(NODES)
    n = MilvusClient(uri=uri)
    try:
        src, dst = n.describe_collection(li_source), n.describe_collection("li_copy")
        assert [(f["name"], f["type"]) for f in dst["fields"]] == [(f["name"], f["type"]) for f in src["fields"]]
        assert dst["enable_dynamic_field"] and \
            n.describe_index("li_copy", "embedding")["index_type"] == n.describe_index(li_source, "embedding")["index_type"]
    finally:
        n.close()
    a = _li("query", uri, li_source, queries=LI_QUERIES, k=4)
    b = _li("query", uri, "li_copy", queries=LI_QUERIES, k=4)
    for qa, qb in zip(a, b):
        assert [{k: v for k, v in h.items() if k != "score"} for h in qa] == \
            [{k: v for k, v in h.items() if k != "score"} for h in qb]
        assert np.allclose([h["score"] for h in qa], [h["score"] for h in qb], atol=1e-3)
    nodes = {x["id"]: x for x in _li("get", uri, "li_copy", ids=[m["id"] for m in NODES])}
    for m in NODES:  # text, metadata and the SOURCE relationship, as written
        assert (nodes[m["id"]]["text"], nodes[m["id"]]["metadata"], nodes[m["id"]]["source"]) == \
            (m["text"], m["metadata"], m["source"])
    _drop(uri, "li_copy")


def test_across_frameworks(server: tuple[str, str], lite: tuple[str, str], li_source: str) -> None:
    """LlamaIndex (server) -> LangChain (Lite): texts and the nodes' own metadata, node keys left
    out; LangChain (Lite) -> LlamaIndex (server): plain TextNodes with ids, texts, metadata."""
    url, uri = server
    lurl, luri = lite
    _drop(luri, "from_li")
    report = vecbridge.migrate(f"{url}?collection={li_source}", f"{lurl}?collection=from_li&layout=langchain")
    assert report.records_copied == len(NODES)
    vectors = {n["text"]: n["embedding"] for n in NODES}
    got = app.langchain_query(luri, "from_li", [n["text"] for n in NODES], vectors, 1)
    emb = np.asarray([n["embedding"] for n in NODES])
    best = [NODES[int(np.argmax(emb @ e))] for e in emb]  # the copy keeps the source's metric: ip
    assert [q[0][:3] for q in got] == [(n["id"], n["text"], n["metadata"]) for n in best]
    app.langchain_write(luri, "lc_for_li", TEXTS, METAS, IDS, VECS, drop_old=True)
    _drop(uri, "li_from_lc")
    report = vecbridge.migrate(f"{lurl}?collection=lc_for_li", f"{url}?collection=li_from_lc&layout=llamaindex")
    assert report.records_copied == N
    # the copy keeps the source's metric (l2): the application names it, as it would have to
    hits = _li("query", uri, "li_from_lc", queries=[VECS[t] for t in TEXTS], k=N, metric="L2", dim=6)
    assert [q[0]["id"] for q in hits] == IDS  # each text's own vector is its nearest
    seen = {h["id"]: h for q in hits for h in q}
    assert {k: (h["text"], h["metadata"], h["class"]) for k, h in seen.items()} == \
        {IDS[i]: (TEXTS[i], METAS[i], "TextNode") for i in range(N)}
    _drop(uri, "li_from_lc")


def test_llamaindex_venv_missing_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(app, "LI_PYTHON", tmp_path / "nope" / "python")
    with pytest.raises(RuntimeError, match="virtualenv of its own"):
        app.llamaindex({"op": "get"})


def test_llamaindex_through_milvus_lite_and_back(server: tuple[str, str], lite: tuple[str, str],
                                                 li_source: str) -> None:
    """A LlamaIndex layout created on Milvus Lite (vecbridge only: the package's pymilvus 2 cannot
    open a Lite folder of pymilvus 3) carries the nodes whole back to the server."""
    url, uri = server
    lurl, luri = lite
    _drop(luri, "li_lite")
    _drop(uri, "li_back")
    assert vecbridge.migrate(f"{url}?collection={li_source}", f"{lurl}?collection=li_lite&layout=llamaindex",
                             verify="full").ok
    with vecbridge.connect(lurl) as client:
        assert {e["name"]: e["layout"] for e in client.describe_collections()}["li_lite"] == "llamaindex"
    assert vecbridge.migrate(f"{lurl}?collection=li_lite", f"{url}?collection=li_back&layout=llamaindex",
                             verify="full").ok
    a = _li("query", uri, li_source, queries=LI_QUERIES, k=3)
    b = _li("query", uri, "li_back", queries=LI_QUERIES, k=3)
    assert [[(h["id"], h["text"], h["metadata"], h["source"]) for h in q] for q in a] == \
        [[(h["id"], h["text"], h["metadata"], h["source"]) for h in q] for q in b]
    assert np.allclose([h["score"] for q in a for h in q], [h["score"] for q in b for h in q], atol=1e-3)
    _drop(uri, "li_back")


def test_into_qdrant_layouts(lite: tuple[str, str], server: tuple[str, str], tmp_path: Path) -> None:
    """Milvus -> Qdrant in the same framework's layout (Qdrant's layouts are on main): the official
    package on Qdrant answers as the official package on Milvus (both cosine: langchain-qdrant and
    llama-index-vector-stores-qdrant make cosine collections)."""
    import qdrant_app

    emb = qdrant_app.embedding()

    def unit(text: str) -> list[float]:  # Qdrant keeps cosine vectors normalised: unit vectors compare exactly
        v = np.asarray(emb.embed_query(text), dtype=np.float64)
        return (v / np.linalg.norm(v)).tolist()

    texts = [f"cross text {i}" for i in range(N)]
    vectors = {t: unit(t) for t in texts}
    ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, i)) for i in IDS]  # a Qdrant point id is an integer or a UUID
    lurl, luri = lite
    app.langchain_write(luri, "lc_cos", texts, METAS, ids, vectors, drop_old=True,
                        index_params={"metric_type": "COSINE", "index_type": "AUTOINDEX", "params": {}})
    q = f"qdrant:///{tmp_path}/q"
    report = vecbridge.migrate(f"{lurl}?collection=lc_cos", f"{q}?collection=lc_copy&layout=langchain", verify="full")
    assert report.ok, report.summary()
    a = app.langchain_query(luri, "lc_cos", texts[:4], vectors, 3)
    b = qdrant_app.langchain_search(q, "lc_copy", texts[:4], k=3)
    _same_hits(a, [[(h["id"], h["text"], h["metadata"], h["score"]) for h in hs] for hs in b])
    url, uri = server
    nodes = [{**n, "id": str(uuid.uuid5(uuid.NAMESPACE_URL, n["id"])), "embedding": unit(n["text"])}
             for n in NODES]
    _li("write", uri, "li_cos", overwrite=True, nodes=nodes, dim=qdrant_app.DIM, metric="COSINE")
    report = vecbridge.migrate(f"{url}?collection=li_cos", f"{q}?collection=li_copy&layout=llamaindex", verify="full")
    assert report.ok and report.verification is not None and report.verification.checked == len(NODES)
    # LlamaIndex keeps the text inside _node_content on Qdrant, beside it on Milvus: the nodes
    # differ by the text, and only by it
    with vecbridge.connect(url) as mc:
        src = {r.id: json.loads(r.metadata["_node_content"]) for r in mc.get_collection("li_cos").get()}
    with vecbridge.connect(q) as qc:
        dst = {r.id: json.loads(r.metadata["_node_content"]) for r in qc.get_collection("li_copy").get()}
    assert {k: {**n, "text": ""} for k, n in dst.items()} == src
    a = _li("query", uri, "li_cos", queries=[unit(n["text"]) for n in NODES[:3]], k=3,
            dim=qdrant_app.DIM, metric="COSINE")
    b = qdrant_app.llamaindex_query(q, "li_copy", [n["text"] for n in NODES[:3]], k=3)
    assert [[(h["id"], h["text"], h["metadata"], h["ref_doc_id"]) for h in hs] for hs in a] == \
        [[(h["id"], h["text"], h["metadata"], h["ref_doc_id"]) for h in hs] for hs in b]
    assert np.allclose([h["score"] for hs in a for h in hs], [h["score"] for hs in b for h in hs], atol=1e-3)
    _drop(uri, "li_cos")
