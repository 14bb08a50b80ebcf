"""The FAISS backend against raw FAISS: same index, same data, side by side in one run.

    python benchmarks/faiss_overhead.py [--n 100000] [--dim 128] [--queries 1000]

Raw FAISS gets its ids resolved to strings and metadata from Python lists (what an
application must do anyway); the backend also stores everything in SQLite.
Prints seconds and the ratio backend / raw for ingest, unfiltered and 10%-filtered queries.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import faiss
import numpy as np

import vecbridge

HNSW = {"type": "hnsw", "m": 16, "ef_construction": 200, "ef_search": 100}


def raw(X: np.ndarray, Q: np.ndarray, cats: np.ndarray, ids: list[str], metas: list[dict]) -> dict[str, float]:
    out = {}
    t = time.perf_counter()
    inner = faiss.IndexHNSWFlat(X.shape[1], HNSW["m"], faiss.METRIC_L2)
    inner.hnsw.efConstruction = HNSW["ef_construction"]
    index = faiss.IndexIDMap2(inner)
    index.add_with_ids(X, np.arange(len(X), dtype=np.int64))
    out["ingest"] = time.perf_counter() - t
    params = faiss.SearchParametersHNSW(efSearch=HNSW["ef_search"])
    t = time.perf_counter()
    for q in Q:
        D, I = index.search(q[None, :], 10, params=params)
        [(ids[i], float(d), metas[i]) for d, i in zip(D[0], I[0]) if i >= 0]
    out["query"] = time.perf_counter() - t
    t = time.perf_counter()
    sel_ids = np.nonzero(cats == 3)[0].astype(np.int64)  # the application's own metadata index
    sel = faiss.IDSelectorBatch(sel_ids)
    fparams = faiss.SearchParametersHNSW(sel=sel, efSearch=HNSW["ef_search"])
    for q in Q:
        D, I = index.search(q[None, :], 10, params=fparams)
        [(ids[i], float(d), metas[i]) for d, i in zip(D[0], I[0]) if i >= 0]
    out["query_filtered"] = time.perf_counter() - t
    return out


def ours(X: np.ndarray, Q: np.ndarray, ids: list[str], metas: list[dict], root: str) -> dict[str, float]:
    out = {}
    with vecbridge.connect(f"faiss:///{root}") as client:
        t = time.perf_counter()
        coll = client.create_collection("bench", X.shape[1], "l2", index=HNSW)
        coll.add(ids, X, metas)
        out["ingest"] = time.perf_counter() - t
        t = time.perf_counter()
        for q in Q:
            coll.query(q, k=10, include=["metadata"])
        out["query"] = time.perf_counter() - t
        t = time.perf_counter()
        for q in Q:
            coll.query(q, k=10, where={"cat": 3}, include=["metadata"])
        out["query_filtered"] = time.perf_counter() - t
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=0, help="FAISS threads (0: its default)")
    a = ap.parse_args()
    if a.threads:
        faiss.omp_set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(a.n, a.dim)).astype(np.float32)
    Q = rng.normal(size=(a.queries, a.dim)).astype(np.float32)
    cats = np.arange(a.n) % 10
    ids = [f"doc-{i}" for i in range(a.n)]
    metas = [{"cat": int(c), "title": f"title {i}"} for i, c in enumerate(cats)]
    r = raw(X, Q, cats, ids, metas)
    with tempfile.TemporaryDirectory() as root:
        o = ours(X, Q, ids, metas, root)
    print(f"n={a.n} dim={a.dim} queries={a.queries} index={HNSW}")
    print(f"{'':16}{'raw faiss s':>12}{'vecbridge s':>13}{'ratio':>8}")
    for key in ("ingest", "query", "query_filtered"):
        print(f"{key:16}{r[key]:12.3f}{o[key]:13.3f}{o[key] / r[key]:8.2f}x")


if __name__ == "__main__":
    main()
