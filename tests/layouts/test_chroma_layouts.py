"""The frameworks' Chroma layouts (issue 17): data written by langchain-chroma and by
llama-index-vector-stores-chroma themselves, opened by vecbridge, migrated, and read back by
the same packages on the target.

Every test keeps the application's own chromadb client (``chromadb.PersistentClient(path)``,
default settings) open on the folder while vecbridge works on it in the same process.
Expected answers come from what was written and from the official packages' reads of the
source; vecbridge's reads are only what is checked.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import engines
import numpy as np
import pytest

import vecbridge
from vecbridge import filters

sys.path.insert(0, str(Path(__file__).resolve().parent))
from chroma_app import (
    FixedEmbedding,
    chromadb_client,
    langchain_get,
    langchain_query,
    langchain_write,
    llamaindex_nodes,
    llamaindex_query,
    llamaindex_write,
)

chromadb = pytest.importorskip("chromadb")
pytest.importorskip("langchain_chroma")
pytest.importorskip("llama_index.vector_stores.chroma")

N, DIM = 24, 8
QUERIES = ["question one", "question two", "text 5"]


def _table(seed: int) -> dict[str, list[float]]:
    rng = np.random.default_rng(seed)
    texts = [f"text {i}" for i in range(N)] + QUERIES
    return {t: rng.standard_normal(DIM).astype(np.float32).tolist() for t in texts}


def _langchain_data() -> tuple[list[str], list[str], list[dict[str, Any]]]:
    ids = [f"lc-{i}" for i in range(N)]
    texts = [f"text {i}" for i in range(N)]
    metas = [{"source": f"file{i % 3}.txt", "page": i, "score": i / 8, "draft": i % 2 == 0} for i in range(N)]
    return ids, texts, metas


@pytest.fixture()
def app(tmp_path: Path) -> Iterator[tuple[Any, str]]:
    folder = str(tmp_path / "app")
    client = chromadb.PersistentClient(path=folder)  # the application's client, open throughout
    yield client, f"chroma:///{folder}"
    client.close()


def _records(url: str, name: str) -> dict[str, vecbridge.Record]:
    with vecbridge.connect(url) as vb:
        return {r.id: r for r in vb.get_collection(name).get(include=["vector", "metadata", "document"])}


def _same_answers(a: list[list[tuple[str, str, dict[str, Any], float]]],
                  b: list[list[tuple[str, str, dict[str, Any], float]]]) -> None:
    assert len(a) == len(b)
    for row_a, row_b in zip(a, b):
        assert [(i, t, m) for i, t, m, _ in row_a] == [(i, t, m) for i, t, m, _ in row_b]
        np.testing.assert_allclose([s for *_, s in row_a], [s for *_, s in row_b], rtol=1e-3, atol=1e-3)


# -- LangChain ---------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", [None, "cosine"])
def test_langchain_store_opens_field_by_field(app, metric):
    client, url = app
    emb = FixedEmbedding(_table(1), DIM)
    ids, texts, metas = _langchain_data()
    langchain_write(client, "lc_docs", emb, texts, metas, ids, metric)
    with vecbridge.connect(f"{url}?layout=langchain") as vb:
        coll = vb.get_collection("lc_docs")
        assert coll.config["layout"] == "langchain" and coll.metric == (metric or "l2")
        got = {r.id: r for r in coll.get(include=["vector", "metadata", "document"])}
        assert set(got) == set(ids)
        for id_, text, meta in zip(ids, texts, metas):
            assert got[id_].document == text and got[id_].metadata == meta
            np.testing.assert_allclose(got[id_].vector, emb.table[text], rtol=1e-5, atol=1e-6)
        # filters on the metadata keys, against the reference evaluator on the written data
        where = {"$and": [{"source": "file1.txt"}, {"page": {"$gte": 6}}]}
        expected = {i for i, m in zip(ids, metas) if filters.matches(filters.parse(where), m)}
        assert {r.id for r in coll.get(where=where)} == expected
        hits = coll.query([emb.table["question one"]], k=3, where=where)[0]
        assert {h.id for h in hits} <= expected and len(hits) == 3
    with vecbridge.connect(url) as vb:  # nothing tells LangChain's layout from Chroma's own
        assert vb.get_collection("lc_docs").config["layout"] == "native"


def test_langchain_store_migrates_and_the_application_reads_the_same(app, tmp_path):
    client, url = app
    emb = FixedEmbedding(_table(2), DIM)
    ids, texts, metas = _langchain_data()
    langchain_write(client, "lc_src", emb, texts, metas, ids)
    target = f"chroma:///{tmp_path}/moved"
    report = vecbridge.migrate(f"{url}?collection=lc_src&layout=langchain",
                               f"{target}?collection=lc_dst&layout=langchain")
    assert report.ok and report.records_copied == N
    moved = chromadb.PersistentClient(path=f"{tmp_path}/moved")
    try:
        native = moved.get_collection("lc_dst")
        assert native.configuration_json["hnsw"]["space"] == "l2"  # as langchain-chroma made the source
        assert langchain_get(moved, "lc_dst", emb) == langchain_get(client, "lc_src", emb)
        for flt in (None, {"source": "file2.txt"}):
            _same_answers(langchain_query(client, "lc_src", emb, QUERIES, 5, flt),
                          langchain_query(moved, "lc_dst", emb, QUERIES, 5, flt))
    finally:
        moved.close()


def test_langchain_store_into_vecbridge_layout_field_by_field(app, tmp_path):
    client, url = app
    emb = FixedEmbedding(_table(3), DIM)
    ids, texts, metas = _langchain_data()
    langchain_write(client, "lc_src", emb, texts, metas, ids)
    faiss_url = f"faiss:///{tmp_path}/faiss"
    assert vecbridge.migrate(f"{url}?collection=lc_src&layout=langchain", f"{faiss_url}?collection=copy").ok
    got = _records(faiss_url, "copy")
    for id_, text, meta in zip(ids, texts, metas):
        assert got[id_].document == text and got[id_].metadata == meta
        np.testing.assert_array_equal(got[id_].vector, np.float32(emb.table[text]))


# -- LlamaIndex --------------------------------------------------------------------------------
def _nodes(table: dict[str, list[float]]) -> list[Any]:
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

    out = []
    for i in range(N):
        rel = {NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"doc-{i % 4}", metadata={"file": f"f{i % 4}"})}
        if i % 6 == 0:
            rel = {}  # a node without a source document
        out.append(TextNode(id_=f"node-{i}", text=f"text {i}", embedding=table[f"text {i}"], relationships=rel,
                            metadata={"author": ["ann", "bob"][i % 2], "year": 2000 + i, "weight": i / 3},
                            excluded_llm_metadata_keys=["year"]))
    return out


def test_llamaindex_store_is_detected_and_opens_field_by_field(app):
    client, url = app
    table = _table(4)
    nodes = _nodes(table)
    llamaindex_write(client, "li_docs", nodes)
    stored = client.get_collection("li_docs").get(include=["metadatas"])  # chromadb's own read
    stored_meta = dict(zip(stored["ids"], stored["metadatas"]))
    with vecbridge.connect(url) as vb:
        assert {r["name"]: r["layout"] for r in vb.describe_collections()}["li_docs"] == "llamaindex"
        coll = vb.get_collection("li_docs")  # detected from _node_content: no ?layout= needed
        assert coll.config["layout"] == "llamaindex"
        got = {r.id: r for r in coll.get(include=["vector", "metadata", "document"])}
        for node in nodes:
            r = got[node.node_id]
            assert r.document == node.text
            assert r.metadata == stored_meta[node.node_id]  # the node keys as stored, with the node's own metadata
            assert {k: r.metadata[k] for k in node.metadata} == node.metadata
            assert r.metadata["ref_doc_id"] == (node.ref_doc_id or "None")
            np.testing.assert_allclose(r.vector, node.embedding, rtol=1e-5, atol=1e-6)
        where = {"author": "bob", "year": {"$lt": 2015}}
        expected = {n.node_id for n in nodes if filters.matches(filters.parse(where), n.metadata)}
        assert {r.id for r in coll.get(where=where)} == expected


def test_llamaindex_store_migrates_and_nodes_arrive_whole(app, tmp_path):
    from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters

    client, url = app
    table = _table(5)
    nodes = _nodes(table)
    llamaindex_write(client, "li_src", nodes)
    target = f"chroma:///{tmp_path}/moved"
    report = vecbridge.migrate(f"{url}?collection=li_src", f"{target}?collection=li_dst&layout=llamaindex")
    assert report.ok and report.records_copied == N, report.verification.mismatches[:2]
    moved = chromadb.PersistentClient(path=f"{tmp_path}/moved")
    try:
        # the same Chroma records as LlamaIndex wrote them (no vecbridge keys), chromadb says
        src = client.get_collection("li_src").get(include=["metadatas", "documents"])
        dst = moved.get_collection("li_dst").get(include=["metadatas", "documents"])
        assert dict(zip(dst["ids"], zip(dst["documents"], dst["metadatas"]))) == \
            dict(zip(src["ids"], zip(src["documents"], src["metadatas"])))
        vectors = [table[q] for q in QUERIES]
        only_bob = MetadataFilters(filters=[MetadataFilter(key="author", value="bob", operator=FilterOperator.EQ)])
        for flt in (None, only_bob):
            _same_answers(llamaindex_query(client, "li_src", vectors, 5, flt),
                          llamaindex_query(moved, "li_dst", vectors, 5, flt))
        before, after = llamaindex_nodes(client, "li_src"), llamaindex_nodes(moved, "li_dst")
        assert set(after) == {n.node_id for n in nodes}
        for node in nodes:  # the node as written: text, metadata, relationships, its source document
            a = after[node.node_id]
            assert a.get_content() == node.text and a.metadata == node.metadata
            assert a.ref_doc_id == node.ref_doc_id and a.relationships == node.relationships
            assert a.excluded_llm_metadata_keys == ["year"]
            assert a.model_dump(exclude={"embedding"}) == before[node.node_id].model_dump(exclude={"embedding"})
    finally:
        moved.close()


def test_llamaindex_into_langchain_leaves_the_node_keys_out(app, tmp_path):
    client, url = app
    table = _table(6)
    nodes = _nodes(table)
    llamaindex_write(client, "li_src", nodes)
    target = f"chroma:///{tmp_path}/lc"
    report = vecbridge.migrate(f"{url}?collection=li_src", f"{target}?collection=lc_dst&layout=langchain",
                               verify="none")  # the node keys are left out on purpose
    assert report.records_copied == N
    moved = chromadb.PersistentClient(path=f"{tmp_path}/lc")
    try:
        emb = FixedEmbedding(table, DIM)
        assert langchain_get(moved, "lc_dst", emb) == {n.node_id: (n.text, n.metadata) for n in nodes}
    finally:
        moved.close()


def test_langchain_into_llamaindex_makes_text_nodes(app, tmp_path):
    client, url = app
    emb = FixedEmbedding(_table(7), DIM)
    ids, texts, metas = _langchain_data()
    langchain_write(client, "lc_src", emb, texts, metas, ids)
    target = f"chroma:///{tmp_path}/li"
    vecbridge.migrate(f"{url}?collection=lc_src&layout=langchain", f"{target}?collection=li_dst&layout=llamaindex",
                      verify="none")  # node keys are added on purpose
    moved = chromadb.PersistentClient(path=f"{tmp_path}/li")
    try:
        got = llamaindex_nodes(moved, "li_dst")
        assert {i: (n.get_content(), n.metadata) for i, n in got.items()} == dict(zip(ids, zip(texts, metas)))
        assert all(type(n).__name__ == "TextNode" and n.ref_doc_id is None for n in got.values())
        hits = llamaindex_query(moved, "li_dst", [emb.table["question one"]], 3)[0]
        d = ((np.asarray([emb.table[t] for t in texts]) - np.asarray(emb.table["question one"])) ** 2).sum(1)
        assert [h[0] for h in hits] == [ids[i] for i in np.argsort(d)[:3]]
    finally:
        moved.close()


def test_a_record_the_layout_cannot_take_is_refused_before_writing(app):
    from vecbridge.errors import InvalidMetadataError
    from vecbridge.validation import Batch

    client, url = app
    with vecbridge.connect(f"{url}?layout=llamaindex") as vb:
        coll = vb.create_collection("li_new", 2, "l2")
        bad = Batch(["a", "b"], np.ones((2, 2), np.float32), [{}, {"_node_content": "not json"}], ["x", "y"])
        with pytest.raises(InvalidMetadataError, match="'b'.*_node_content"):
            coll._vb_check_batch(bad)
        with pytest.raises(InvalidMetadataError, match="_node_content"):
            coll.upsert(bad.ids, bad.vectors, bad.metadatas, bad.documents)
    assert client.get_collection("li_new").count() == 0


def test_vecbridge_writes_next_to_langchains_own_client(tmp_path):
    """LangChain made its chromadb client itself (persist_directory) and keeps it open while
    vecbridge writes the same folder in the same process; LangChain then reads those writes."""
    from langchain_chroma import Chroma

    emb = FixedEmbedding(_table(8), DIM)
    folder = str(tmp_path / "lc_app")
    store = Chroma(collection_name="lc_own", embedding_function=emb, persist_directory=folder)
    ids, texts, metas = _langchain_data()
    store.add_texts(texts[:10], metadatas=metas[:10], ids=ids[:10])
    with vecbridge.connect(f"chroma:///{folder}?layout=langchain") as vb:  # its engine, its settings
        coll = vb.get_collection("lc_own")
        assert coll.count() == 10
        coll.upsert(ids[10:], [emb.table[t] for t in texts[10:]], metas[10:], texts[10:])
    got = store.get(include=["documents", "metadatas"])
    assert dict(zip(got["ids"], zip(got["documents"], got["metadatas"]))) == dict(zip(ids, zip(texts, metas)))
    hits = store.similarity_search_by_vector(emb.table["text 15"], k=1)
    assert hits[0].id == "lc-15" and hits[0].page_content == "text 15"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with engines.chroma_server() as engine:
        yield engine.url


def test_a_server_store_of_each_framework_moves_to_a_folder(server, tmp_path):
    """On a Chroma server: LlamaIndex's store is detected over HTTP, LangChain's named; both move
    into a folder and the packages answer the same there."""
    app = chromadb_client(server)
    table = _table(9)
    emb = FixedEmbedding(table, DIM)
    ids, texts, metas = _langchain_data()
    langchain_write(app, "srv_lc", emb, texts, metas, ids, "cosine")
    llamaindex_write(app, "srv_li", _nodes(table))
    with vecbridge.connect(server) as vb:
        layouts = {r["name"]: r["layout"] for r in vb.describe_collections()}
        assert (layouts["srv_li"], layouts["srv_lc"]) == ("llamaindex", "native")
    folder = f"chroma:///{tmp_path}/moved"
    assert vecbridge.migrate(f"{server}?collection=srv_lc&layout=langchain",
                             f"{folder}?collection=srv_lc&layout=langchain").ok
    assert vecbridge.migrate(f"{server}?collection=srv_li", f"{folder}?collection=srv_li&layout=llamaindex").ok
    moved = chromadb.PersistentClient(path=f"{tmp_path}/moved")
    try:
        assert moved.get_collection("srv_lc").configuration_json["hnsw"]["space"] == "cosine"
        _same_answers(langchain_query(app, "srv_lc", emb, QUERIES, 4), langchain_query(moved, "srv_lc", emb, QUERIES, 4))
        vectors = [table[q] for q in QUERIES]
        _same_answers(llamaindex_query(app, "srv_li", vectors, 4), llamaindex_query(moved, "srv_li", vectors, 4))
    finally:
        moved.close()


def test_the_layouts_conversions_are_counted(app):
    client, url = app
    with vecbridge.connect(f"{url}?layout=llamaindex") as vb:
        coll = vb.create_collection("li_count", 2, "l2")
        batch_ids = ["a", "b", "c"]
        from vecbridge.validation import Batch

        coll._vb_check_batch(Batch(batch_ids, np.ones((3, 2), np.float32), [{}, {}, {}], ["x", "y", "z"]))
        assert not coll.conversions  # a check counts nothing
        coll.upsert(batch_ids, np.ones((3, 2), np.float32), [{"k": 1}, {}, {}], ["x", "y", "z"])
        assert coll.conversions["LlamaIndex nodes made for records that had none (no relationships)"] == 3
    got = llamaindex_nodes(client, "li_count")  # LlamaIndex reads the nodes vecbridge made
    assert {i: (n.get_content(), n.metadata) for i, n in got.items()} == {"a": ("x", {"k": 1}), "b": ("y", {}),
                                                                          "c": ("z", {})}
