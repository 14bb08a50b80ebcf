"""Async queries vs sequential sync queries on each backend, side by side in one run, with
the bare native clients sending the same requests.

    python benchmarks/async_queries.py [--n 20000] [--queries 2000] [--rounds 10]
        [--backends pgvector,qdrant-local,chroma,milvus] [--concurrency 8,32] [--profile] [--hop]

Each server is started by tests/engines.py (or given by VECBRIDGE_TEST_<NAME>_URL);
``qdrant-local`` is Qdrant's local mode in a temporary folder; ``qdrant`` (the server) runs
when VECBRIDGE_TEST_QDRANT_URL names one.  2,000 queries (k=10, 128-d,
20,000 records).  At concurrency 1 every way of querying is measured in interleaved rounds
(the median of ``--rounds`` rounds; on a shared machine a load that changes between two long
runs would otherwise decide the comparison):

- ``sync``: ``coll.query`` of the sync API; ``async@1``: ``await coll.query`` of vecbridge.aio,
  one at a time;
- ``hook``: the backend's query hook alone (the native request plus building its rows);
  ``flow`` = call - hook is the core's share: validation, score conversion, hit building
  and, in async, driving the flow;
- the client's CPU time per query (this process, every thread) beside the wall clock: on a
  shared machine it is the steadier measure of what the client adds;
- ``native sync`` / ``native async``: the database's own clients (psycopg ``Connection`` /
  ``AsyncConnection``, ``QdrantClient`` / ``AsyncQdrantClient``) sending the very requests
  vecbridge sends (taken from the collection's programs), with nothing of vecbridge around
  them.  Their ratio is what the native async client itself costs; the gap between a
  native column and vecbridge's is vecbridge's own.  For pgvector also the bare async
  statement through ``AsyncConnectionPool.connection()`` with a new cursor each time, as
  the backend's async hook sends it.

Then ``async@8``/``async@32``: the 2,000 queries from one event loop with that many in
flight, against the sync rate (aim: >= 3x at 32 where the server has cores to spare, never
below 1x at 1).  ``--profile``: cProfile of async@1.  ``--hop``: what the conformance
suite's async mode (vecbridge.testing.asyncmode) adds per call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import engines  # noqa: E402

import vecbridge  # noqa: E402
import vecbridge.aio  # noqa: E402
import vecbridge.url  # noqa: E402  (the local folder of qdrant-local)
from vecbridge.validation import validate_include  # noqa: E402

STARTERS: dict[str, Callable[[], Any]] = {"chroma": engines.chroma_server, "milvus": engines.milvus_server,
                                           "pgvector": engines.postgres_server}
NAME = "bench_async"
INCLUDE = validate_include(None)  # what coll.query(q, k=10) asks for


@contextlib.contextmanager
def server(name: str) -> Iterator[str]:
    if name == "qdrant-local":
        with tempfile.TemporaryDirectory(prefix="vbbench-") as tmp:
            yield f"qdrant:///{tmp}/q"
        return
    given = os.environ.get(f"VECBRIDGE_TEST_{name.upper()}_URL")
    if given:
        yield given
        return
    if name not in STARTERS:  # no Qdrant server can be started here: give one by URL
        raise SystemExit(f"{name}: set VECBRIDGE_TEST_{name.upper()}_URL to a running server")
    with STARTERS[name]() as engine:
        yield engine.url


# -- the bare native clients, sending vecbridge's own requests -------------------------------

class Native:
    """The same queries on the database's own sync and async clients (``None``: not measured)."""

    def __init__(self, coll: Any, queries: np.ndarray):
        self.coll, self.queries = coll, queries

    async def open(self) -> bool:
        return False

    def sync(self, idx: range) -> None:
        raise NotImplementedError

    async def async1(self, idx: range) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class PgNative(Native):
    """psycopg, with the pool's adapters and session, each client on one connection with a
    reused binary cursor: the cheapest way psycopg sends the statement of vecbridge's
    ``_p_search`` program."""

    async def open(self) -> bool:
        import psycopg

        from vecbridge.backends.pgvector.codec import make_adapters
        from vecbridge.backends.pgvector.ops import Each, Setting

        pg = self.coll._pg
        kwargs = {**pg._params, "autocommit": True, "context": make_adapters(pg.vector_oid)}
        setup: list[tuple[Any, Any]] = [(stmt, None) for stmt in pg.session_statements()]
        self.statements: list[tuple[Any, list[Any]]] = []
        for q in self.queries:
            prog = self.coll._p_search(q[None, :], 10, None, INCLUDE, exact=False)
            op = next(prog)
            while not isinstance(op, Each):
                if isinstance(op, Setting) and len(self.statements) == 0:
                    setup.append(("SELECT set_config(%s, %s, false)", (op.name, op.value)))
                op = prog.send(None)
            self.statements.append((op.query, list(op.params[0])))
        self.conn = psycopg.connect(**kwargs)
        self.aconn = await psycopg.AsyncConnection.connect(**kwargs)
        for stmt, params in setup:
            self.conn.execute(stmt, params)
            await self.aconn.execute(stmt, params)
        self.cur, self.acur = self.conn.cursor(binary=True), self.aconn.cursor(binary=True)
        # what vecbridge's async hook does around the same statement: a connection from
        # psycopg_pool's AsyncConnectionPool and a new cursor per statement
        from psycopg_pool import AsyncConnectionPool

        async def configure(conn: Any) -> None:
            for stmt, params in setup:
                await conn.execute(stmt, params)

        self.apool = AsyncConnectionPool("", kwargs=kwargs, min_size=1, max_size=1, configure=configure, open=False)
        await self.apool.open(wait=True)
        return True

    async def async_pool(self, idx: range) -> None:
        pool = self.apool
        for i in idx:
            async with pool.connection() as conn:
                cur = conn.cursor(binary=True)
                await cur.execute(*self.statements[i])
                await cur.fetchall()

    def sync(self, idx: range) -> None:
        cur = self.cur
        for i in idx:
            cur.execute(*self.statements[i])
            cur.fetchall()

    async def async1(self, idx: range) -> None:
        cur = self.acur
        for i in idx:
            await cur.execute(*self.statements[i])
            await cur.fetchall()

    async def close(self) -> None:
        self.conn.close()
        await self.aconn.close()
        await self.apool.close()


class QdrantNative(Native):
    """qdrant-client's ``query_points`` with the arguments of vecbridge's ``_ops_search``.  In
    local mode the sync client is the collection's own (a folder admits one client) and
    ``AsyncQdrantClient(path=...)`` opens a copy of the folder."""

    async def open(self) -> bool:
        from qdrant_client import AsyncQdrantClient

        coll = self.coll
        self.calls = [next(coll._ops_search(q[None, :], 10, None, INCLUDE, coll._params)).kwargs
                      for q in self.queries]
        client = coll._client
        self.native = client._native
        self.anative = AsyncQdrantClient(**({"path": client.url.path + "-copy"} if client.local
                                            else client._server_args))
        return True

    def sync(self, idx: range) -> None:
        for i in idx:
            self.native.query_points(**self.calls[i])

    async def async1(self, idx: range) -> None:
        for i in idx:
            await self.anative.query_points(**self.calls[i])

    async def close(self) -> None:
        await self.anative.close()


def native_for(coll: Any, queries: np.ndarray) -> Native:
    kind = {"pgvector": PgNative, "qdrant": QdrantNative}.get(coll.backend, Native)
    return kind(coll, queries)


# -- vecbridge ------------------------------------------------------------------------------

async def side_by_side(url: str, queries: np.ndarray, rounds: int, profile: bool) -> dict[str, float]:
    """Median seconds per query of each way of querying at concurrency 1, measured in
    interleaved rounds (on a shared machine, a load that changes between two long runs would
    otherwise decide the comparison)."""
    sc: Any  # the BaseClient underneath (wrap takes it; the hooks are measured alone)
    with vecbridge.connect(url) as sc:
        coll = sc.get_collection(NAME)
        aclient = vecbridge.aio.wrap(sc)  # the same connection settings; native hooks where the form has them
        acoll = await aclient.get_collection(NAME)
        native = native_for(coll, queries)
        has_native = await native.open()
        arrs = [q[None, :] for q in queries]

        def vb_sync(idx: range) -> None:
            for i in idx:
                coll.query(queries[i], k=10)

        def vb_sync_hook(idx: range) -> None:
            for i in idx:
                coll._run_hook("_query", (arrs[i], 10, None, INCLUDE))

        async def vb_async(idx: range) -> None:
            for i in idx:
                await acoll.query(queries[i], k=10)

        async def vb_async_hook(idx: range) -> None:
            if acoll._hooks is not None:
                hook = acoll._hooks._query
                for i in idx:
                    await hook(arrs[i], 10, None, INCLUDE)
            else:
                for i in idx:
                    await aclient._offload(coll._run_hook, "_query", (arrs[i], 10, None, INCLUDE))

        ways: dict[str, Callable[[range], Any]] = {
            "sync": vb_sync, "sync hook": vb_sync_hook, "async@1": vb_async, "async hook": vb_async_hook}
        if has_native:
            ways.update({"native sync": native.sync, "native async": native.async1})
            if isinstance(native, PgNative):
                ways["native async pool"] = native.async_pool
        for way in ways.values():  # warm up: pools open, plans cached
            out = way(range(20))
            if asyncio.iscoroutine(out):
                await out
        per = max(1, len(queries) // rounds)
        times: dict[str, list[float]] = {w: [] for w in ways}
        cpu: dict[str, list[float]] = {w: [] for w in ways}
        prof = cProfile.Profile() if profile else None
        for r in range(rounds):
            idx = range(r * per, (r + 1) * per)
            for name, way in ways.items():
                if prof is not None and name == "async@1":
                    prof.enable()
                t0, c0 = time.perf_counter(), time.process_time()
                out = way(idx)
                if asyncio.iscoroutine(out):
                    await out
                times[name].append((time.perf_counter() - t0) / per)
                cpu[name].append((time.process_time() - c0) / per)
                if prof is not None and name == "async@1":
                    prof.disable()
        if prof is not None:
            print(f"  cProfile of async@1 ({rounds * per} queries), by own time:")
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        await native.close()
        native_async = acoll.native_async
        await aclient.close()
    out = {w: float(np.median(t)) for w, t in times.items()}
    out.update({f"cpu {w}": float(np.median(t)) for w, t in cpu.items()})
    out["native_async_path"] = float(native_async)
    return out


async def run_async(url: str, queries: np.ndarray, concurrency: int) -> float:
    async with await vecbridge.aio.connect(url) as client:
        coll = await client.get_collection(NAME)
        await coll.query(queries[0], k=10)  # the async pool opens on the first call
        sem = asyncio.Semaphore(concurrency)

        async def one(q: np.ndarray) -> None:
            async with sem:
                await coll.query(q, k=10)

        t0 = time.perf_counter()
        await asyncio.gather(*[one(q) for q in queries])
        return time.perf_counter() - t0


def hop(n: int = 3000) -> None:
    """The conformance suite's async mode: the hand-over of each call to its loop thread."""
    from vecbridge.testing import asyncmode

    async def noop() -> None:
        return None

    for _ in range(200):
        asyncmode.run(noop())
    t0 = time.perf_counter()
    for _ in range(n):
        asyncmode.run(noop())
    bare = (time.perf_counter() - t0) / n
    sc: Any
    with vecbridge.connect("faiss://") as sc:
        coll = sc.create_collection("hop", 8, "l2", {"type": "flat"})
        coll.add(["a", "b"], np.eye(2, 8, dtype=np.float32))
        view = asyncmode.SyncCollection(asyncmode.run(vecbridge.aio.wrap(coll)))
        timings = {}
        for label, c in (("sync", coll), ("async view", view)):
            for _ in range(100):
                c.count()
            t0 = time.perf_counter()
            for _ in range(n):
                c.count()
            timings[label] = (time.perf_counter() - t0) / n
        view.close()
    print(f"asyncmode hop: a no-op coroutine {bare * 1e6:.0f} us; faiss-memory count(): sync "
          f"{timings['sync'] * 1e6:.0f} us, through the async view {timings['async view'] * 1e6:.0f} us "
          f"(+{(timings['async view'] - timings['sync']) * 1e6:.0f} us per call)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--backends", default="pgvector,qdrant-local,chroma,milvus")
    ap.add_argument("--concurrency", default="8,32", help="besides 1, measured side by side with sync")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--hop", action="store_true")
    args = ap.parse_args()
    if args.hop:
        hop()
        return
    rng = np.random.default_rng(0)
    data = rng.normal(size=(args.n, args.dim)).astype(np.float32)
    queries = rng.normal(size=(args.queries, args.dim)).astype(np.float32)
    us = 1e6
    for backend in [b for b in args.backends.split(",") if b]:
        with server(backend) as url:
            with vecbridge.connect(url) as client:
                if NAME in client.list_collections():
                    client.delete_collection(NAME)
                coll = client.create_collection(NAME, args.dim, "l2")
                for i in range(0, args.n, 2000):
                    coll.upsert([f"r{j}" for j in range(i, min(i + 2000, args.n))], data[i:i + 2000])
            if backend == "qdrant-local":  # the native async client's own copy of the folder
                path = str(vecbridge.url.URL.parse(url).path)
                shutil.copytree(path, path + "-copy")
            t = asyncio.run(side_by_side(url, queries, args.rounds, args.profile))
            path_kind = "native async" if t.pop("native_async_path") else "thread pool"
            line = [f"{backend} ({path_kind}), q/s at concurrency 1: sync {1 / t['sync']:.0f}, "
                    f"async@1 {1 / t['async@1']:.0f} ({t['sync'] / t['async@1']:.2f}x sync)"]
            if "native sync" in t:
                line.append(f"native sync {1 / t['native sync']:.0f}, native async {1 / t['native async']:.0f} "
                            f"({t['native sync'] / t['native async']:.2f}x native sync)")
            for c in (int(x) for x in args.concurrency.split(",") if x):
                s = asyncio.run(run_async(url, queries, c)) / len(queries)
                line.append(f"async@{c} {1 / s:.0f} ({t['sync'] / s:.2f}x sync)")
            print("; ".join(line), flush=True)
            print(f"  us per query: sync {t['sync'] * us:.0f} = hook {t['sync hook'] * us:.0f} + flow "
                  f"{(t['sync'] - t['sync hook']) * us:.0f}; async {t['async@1'] * us:.0f} = hook "
                  f"{t['async hook'] * us:.0f} + flow {(t['async@1'] - t['async hook']) * us:.0f}"
                  + (f"; bare native: sync {t['native sync'] * us:.0f}, async {t['native async'] * us:.0f}"
                     if "native sync" in t else "")
                  + (f", async through AsyncConnectionPool with a new cursor {t['native async pool'] * us:.0f}"
                     if "native async pool" in t else ""), flush=True)
            print("  client CPU us per query (this process, all threads): "
                  + ", ".join(f"{w} {t['cpu ' + w] * us:.0f}" for w in
                              ("sync", "sync hook", "native sync", "async@1", "async hook", "native async",
                                        "native async pool")
                              if "cpu " + w in t), flush=True)
            with vecbridge.connect(url) as client:
                client.delete_collection(NAME)


if __name__ == "__main__":
    main()
