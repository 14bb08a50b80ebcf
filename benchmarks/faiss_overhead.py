"""The FAISS backend against raw FAISS: same index, same data, side by side in one run.

    python benchmarks/faiss_overhead.py [--n 30000] [--dim 128] [--queries 1000] [--single 2000]

Raw FAISS gets its ids resolved to strings and metadata from Python lists (what an
application must do anyway); the backend also stores everything in SQLite.
Prints seconds and the ratio backend / raw for ingest, a loop of single queries,
one batch of all queries, and 10%-filtered single queries; then the per-call overhead
of single queries measured interleaved (raw, vecbridge, raw, vecbridge, ... on the same
query, so that both see the same machine load), as medians, split into the part spent
in the core (``BaseCollection.query``: validation, score conversion, ``Hit``) and the
part in the backend (``FaissCollection._query``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

import faiss
import numpy as np

import vecbridge

HNSW = {"type": "hnsw", "m": 16, "ef_construction": 200, "ef_search": 100}


def raw_index(X: np.ndarray) -> tuple[Any, float]:
    t = time.perf_counter()
    inner = faiss.IndexHNSWFlat(X.shape[1], HNSW["m"], faiss.METRIC_L2)
    inner.hnsw.efConstruction = HNSW["ef_construction"]
    index = faiss.IndexIDMap2(inner)
    index.add_with_ids(X, np.arange(len(X), dtype=np.int64))
    return index, time.perf_counter() - t


def raw_queries(index: Any, Q: np.ndarray, cats: np.ndarray, ids: list[str], metas: list[dict]) -> dict[str, float]:
    out = {}
    params = faiss.SearchParametersHNSW(efSearch=HNSW["ef_search"])
    t = time.perf_counter()
    for q in Q:
        D, I = index.search(q[None, :], 10, params=params)
        [(ids[i], float(d), metas[i]) for d, i in zip(D[0], I[0]) if i >= 0]
    out["query"] = time.perf_counter() - t
    t = time.perf_counter()
    D, I = index.search(Q, 10, params=params)
    [[(ids[i], float(d), metas[i]) for d, i in zip(dr, ir) if i >= 0] for dr, ir in zip(D, I)]
    out["query_batch"] = time.perf_counter() - t
    t = time.perf_counter()
    sel_ids = np.nonzero(cats == 3)[0].astype(np.int64)  # the application's own metadata index
    sel = faiss.IDSelectorBatch(sel_ids)
    fparams = faiss.SearchParametersHNSW(sel=sel, efSearch=HNSW["ef_search"])
    for q in Q:
        D, I = index.search(q[None, :], 10, params=fparams)
        [(ids[i], float(d), metas[i]) for d, i in zip(D[0], I[0]) if i >= 0]
    out["query_filtered"] = time.perf_counter() - t
    return out


def our_queries(coll: Any, Q: np.ndarray) -> dict[str, float]:
    out = {}
    t = time.perf_counter()
    for q in Q:
        coll.query(q, k=10, include=["metadata"])
    out["query"] = time.perf_counter() - t
    t = time.perf_counter()
    coll.query(Q, k=10, include=["metadata"])
    out["query_batch"] = time.perf_counter() - t
    t = time.perf_counter()
    for q in Q:
        coll.query(q, k=10, where={"cat": 3}, include=["metadata"])
    out["query_filtered"] = time.perf_counter() - t
    return out


def single_interleaved(coll: Any, Q: np.ndarray, ids: list[str], metas: list[dict],
                       cpu_clock: bool = False) -> dict[str, float]:
    """Median milliseconds per single query: raw FAISS, vecbridge, and vecbridge's backend part.

    Raw FAISS searches the collection's own index object, and the three take turns in a
    rotating order per query, so that none of them is favoured by caches warmed by another.
    """
    index = coll._index
    params = faiss.SearchParametersHNSW(efSearch=HNSW["ef_search"])
    inc = frozenset(["metadata"])

    def raw(q: np.ndarray) -> None:
        D, I = index.search(q[None, :], 10, params=params)
        [(ids[i - 1], float(d), metas[i - 1]) for d, i in zip(D[0], I[0]) if i >= 0]  # rids count from 1

    def ours(q: np.ndarray) -> None:
        coll.query(q, k=10, include=["metadata"])

    def backend(q: np.ndarray) -> None:
        coll._query(q[None, :], 10, None, inc)  # the backend's hook alone, as BaseCollection.query calls it

    runs = [("raw", raw), ("ours", ours), ("backend", backend)]
    times: dict[str, list[float]] = {name: [] for name, _ in runs}
    # CPU time of this thread: on a shared machine, time spent preempted is not the call's
    clock = time.thread_time if cpu_clock else time.perf_counter
    for j, q in enumerate(Q):
        for name, fn in runs[j % 3:] + runs[:j % 3]:
            t = clock()
            fn(q)
            times[name].append(clock() - t)
    return {name: statistics.median(v) * 1e3 for name, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=30_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--single", type=int, default=2000, help="single queries for the interleaved overhead")
    ap.add_argument("--threads", type=int, default=0, help="FAISS threads (0: its default)")
    ap.add_argument("--cpu-clock", action="store_true",
                    help="time single queries by this thread's CPU time (steadier on a loaded machine; "
                         "use with --threads 1)")
    a = ap.parse_args()
    if a.threads:
        faiss.omp_set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(a.n, a.dim)).astype(np.float32)
    Q = rng.normal(size=(max(a.queries, a.single), a.dim)).astype(np.float32)
    cats = np.arange(a.n) % 10
    ids = [f"doc-{i}" for i in range(a.n)]
    metas = [{"cat": int(c), "title": f"title {i}"} for i, c in enumerate(cats)]
    index, raw_ingest = raw_index(X)
    r = {"ingest": raw_ingest, **raw_queries(index, Q[:a.queries], cats, ids, metas)}
    with tempfile.TemporaryDirectory() as root, vecbridge.connect(f"faiss:///{root}") as client:
        t = time.perf_counter()
        coll = client.create_collection("bench", a.dim, "l2", index=HNSW)
        coll.add(ids, X, metas)
        o = {"ingest": time.perf_counter() - t, **our_queries(coll, Q[:a.queries])}
        s = single_interleaved(coll, Q[:a.single], ids, metas, a.cpu_clock)
    print(f"n={a.n} dim={a.dim} queries={a.queries} index={HNSW} threads={faiss.omp_get_max_threads()}")
    print(f"{'':16}{'raw faiss s':>12}{'vecbridge s':>13}{'ratio':>8}")
    for key in ("ingest", "query", "query_batch", "query_filtered"):
        print(f"{key:16}{r[key]:12.3f}{o[key]:13.3f}{o[key] / r[key]:8.2f}x")
    core = s["ours"] - s["backend"]
    clock = "thread CPU time" if a.cpu_clock else "wall clock"
    print(f"\nsingle query, {a.single} interleaved, k=10, include=metadata (median ms per call, {clock})")
    print(f"  raw faiss {s['raw']:.4f}   vecbridge {s['ours']:.4f}   ratio {s['ours'] / s['raw']:.2f}x")
    print(f"  vecbridge = backend _query {s['backend']:.4f} (raw {s['raw']:.4f} + {s['backend'] - s['raw']:.4f})"
          f" + core {core:.4f} (BaseCollection.query around it)")


if __name__ == "__main__":
    main()
