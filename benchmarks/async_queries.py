"""Async queries vs sequential sync queries on each server backend, side by side in one run.

    python benchmarks/async_queries.py [--n 20000] [--queries 2000] [--backends chroma,milvus,pgvector]

Each backend's server is started by tests/engines.py (or given by VECBRIDGE_TEST_<NAME>_URL);
2,000 queries (k=10, 128-d, 20,000 records) are issued with concurrency 1, 8 and 32 from one
event loop, and the same queries sequentially through the sync API.  Prints queries/s and the
ratio to the sync rate (aim: >= 3x at 32 where the server has cores to spare, never below 1x at 1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))

import engines  # noqa: E402

import vecbridge  # noqa: E402
import vecbridge.aio  # noqa: E402

STARTERS = {"chroma": engines.chroma_server, "milvus": engines.milvus_server, "pgvector": engines.postgres_server}


@contextlib.contextmanager
def server(name: str):  # type: ignore[no-untyped-def]
    given = os.environ.get(f"VECBRIDGE_TEST_{name.upper()}_URL")
    if given:
        yield given
        return
    with STARTERS[name]() as engine:
        yield engine.url


async def run_async(url: str, name: str, queries: np.ndarray, concurrency: int) -> float:
    async with await vecbridge.aio.connect(url) as client:
        coll = await client.get_collection(name)
        sem = asyncio.Semaphore(concurrency)

        async def one(q: np.ndarray) -> None:
            async with sem:
                await coll.query(q, k=10)

        t0 = time.perf_counter()
        await asyncio.gather(*[one(q) for q in queries])
        return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--queries", type=int, default=2000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--backends", default="chroma,milvus,pgvector")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    data = rng.normal(size=(args.n, args.dim)).astype(np.float32)
    queries = rng.normal(size=(args.queries, args.dim)).astype(np.float32)
    for backend in args.backends.split(","):
        with server(backend) as url:
            with vecbridge.connect(url) as client:
                if "bench_async" in client.list_collections():
                    client.delete_collection("bench_async")
                coll = client.create_collection("bench_async", args.dim, "l2")
                for i in range(0, args.n, 2000):
                    coll.upsert([f"r{j}" for j in range(i, min(i + 2000, args.n))], data[i:i + 2000])
                coll.query(queries[:20], k=10)  # warm up
                t0 = time.perf_counter()
                for q in queries:
                    coll.query(q, k=10)
                sync_s = time.perf_counter() - t0
            native = asyncio.run(_native(url))
            line = [f"{backend:<9} ({'native async' if native else 'thread pool'}): sync {args.queries / sync_s:7.0f} q/s"]
            for c in (1, 8, 32):
                s = asyncio.run(run_async(url, "bench_async", queries, c))
                line.append(f"async@{c} {args.queries / s:7.0f} q/s ({sync_s / s:.2f}x)")
            print("  ".join(line), flush=True)
            with vecbridge.connect(url) as client:
                client.delete_collection("bench_async")


async def _native(url: str) -> bool:
    async with await vecbridge.aio.connect(url) as client:
        return bool((await client.get_collection("bench_async")).native_async)


if __name__ == "__main__":
    main()
