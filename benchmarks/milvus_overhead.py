"""The Milvus backend against raw pymilvus: same server, same schema, same data, side by side.

    python benchmarks/milvus_overhead.py [--n 100000] [--dim 384] [--queries 1000] [--url milvus://host:19530]

Without ``--url`` it starts a Milvus 2.3.5 standalone server (the ``milvus`` package,
through tests/engines.py) and stops it afterwards.

Ingest: raw pymilvus creates the same layout (VARCHAR id, FLOAT_VECTOR, VARCHAR document,
JSON metadata, HNSW M=16 efConstruction=200, L2) and inserts rows with
``MilvusClient.insert`` in batches of ``--raw-batch``; the backend runs ``add`` (its
duplicate check included).  Each side's collection is flushed and indexed before the
other side runs, and the order alternates between rounds.

Queries (k=10, ef=100, metadata and document returned, unfiltered and with a 10%
filter): both sides search the collection the backend wrote, so that they meet the
same segments and indexes; raw pymilvus uses ``consistency_level="Session"`` (its "see
my writes" level, what the backend gives) and the expression the backend sends.  Blocks
of queries alternate between the sides.  Prints seconds and the ratio backend / raw.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

import vecbridge

HNSW = {"type": "hnsw", "m": 16, "ef_construction": 200, "ef_search": 100}


@contextlib.contextmanager
def server(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    import engines  # the test suite's engine launcher

    with engines.milvus_server() as engine:
        print(f"started Milvus 2.3.5 standalone at {engine.url} in {engine.startup_seconds:.1f} s")
        yield engine.url


def raw_setup(native: Any, name: str, dim: int) -> None:
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=256)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("document", DataType.VARCHAR, max_length=65535)
    schema.add_field("metadata", DataType.JSON)
    index = MilvusClient.prepare_index_params()
    index.add_index("vector", index_type="HNSW", metric_type="L2",
                    params={"M": HNSW["m"], "efConstruction": HNSW["ef_construction"]})
    native.create_collection(name, schema=schema, index_params=index, consistency_level="Strong")


def raw_ingest(native: Any, name: str, X: np.ndarray, ids: list[str], metas: list[dict], docs: list[str],
               batch: int) -> float:
    t = time.perf_counter()
    for lo in range(0, len(X), batch):
        rows = [{"id": ids[i], "vector": X[i], "document": docs[i], "metadata": metas[i]}
                for i in range(lo, min(len(X), lo + batch))]
        native.insert(name, rows)
    return time.perf_counter() - t


def raw_queries(native: Any, name: str, Q: np.ndarray, filt: str) -> float:
    params = {"metric_type": "L2", "params": {"ef": HNSW["ef_search"]}}
    t = time.perf_counter()
    for q in Q:
        res = native.search(name, data=[q], limit=10, filter=filt, output_fields=["metadata", "document"],
                            search_params=params, consistency_level="Session")
        [(h["id"], float(h["distance"]), h["entity"]["metadata"], h["entity"]["document"]) for h in res[0]]
    return time.perf_counter() - t


def our_queries(coll: Any, Q: np.ndarray, where: dict | None) -> float:
    t = time.perf_counter()
    for q in Q:
        coll.query(q, k=10, where=where)
    return time.perf_counter() - t


def settle(native: Any, name: str) -> None:
    """Seal, index and load everything so that both sides search the same kind of segments."""
    native.flush(name)
    deadline = time.time() + 600
    while time.time() < deadline:
        info = native.describe_index(name, "vector")
        if info.get("pending_index_rows", 0) == 0 and info.get("indexed_rows", 0) >= info.get("total_rows", 0):
            break
        time.sleep(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--raw-batch", type=int, default=10_000, help="rows per MilvusClient.insert call")
    ap.add_argument("--block", type=int, default=20, help="queries per alternating block")
    ap.add_argument("--rounds", type=int, default=2, help="ingest rounds, alternating which side goes first")
    ap.add_argument("--url", help="a running Milvus server (milvus://host:port); default: start one")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    X = rng.normal(size=(a.n, a.dim)).astype(np.float32)
    Q = rng.normal(size=(a.queries, a.dim)).astype(np.float32)
    ids = [f"doc-{i}" for i in range(a.n)]
    metas = [{"cat": i % 10, "title": f"title {i}"} for i in range(a.n)]
    docs = [f"document number {i}" for i in range(a.n)]
    res: dict[str, dict[str, float]] = {"raw": {"ingest": 0.0}, "vecbridge": {"ingest": 0.0}}
    with server(a.url) as url, vecbridge.connect(url) as client:
        native = client.native  # the same connection for both sides

        def fresh(name: str) -> None:
            if name in client.list_collections():
                client.delete_collection(name)

        def ingest_raw() -> None:
            fresh("bench_raw")
            raw_setup(native, "bench_raw", a.dim)
            res["raw"]["ingest"] += raw_ingest(native, "bench_raw", X, ids, metas, docs, a.raw_batch)
            settle(native, "bench_raw")
            client.delete_collection("bench_raw")

        def ingest_ours() -> Any:
            fresh("bench_vb")
            coll = client.create_collection("bench_vb", a.dim, "l2", index=HNSW)
            t = time.perf_counter()
            coll.add(ids, X, metas, docs)
            res["vecbridge"]["ingest"] += time.perf_counter() - t
            settle(native, "bench_vb")
            return coll

        coll = None
        for r in range(a.rounds):
            # the side that goes second meets the other's leftovers (compaction, GC): alternate
            if r % 2 == 0:
                ingest_raw()
                coll = ingest_ours()
            else:
                coll = ingest_ours()
                ingest_raw()
        assert coll is not None and coll.count() == a.n
        # Queries: both sides search the same collection (the one vecbridge wrote), so they
        # meet the same segments and indexes; the difference is vecbridge's own work.
        raw_filter = 'metadata["n:cat"] == 3'  # the expression {"cat": 3} becomes
        raw_queries(native, "bench_vb", Q[:5], "")
        our_queries(coll, Q[:5], None)
        for label, filt, where in (("query", "", None), ("query_filtered", raw_filter, {"cat": 3})):
            res["raw"][label] = res["vecbridge"][label] = 0.0
            for lo in range(0, len(Q), a.block):
                block = Q[lo:lo + a.block]
                res["raw"][label] += raw_queries(native, "bench_vb", block, filt)
                res["vecbridge"][label] += our_queries(coll, block, where)
        client.delete_collection("bench_vb")
    print(f"\n{a.n} x {a.dim} vectors ({a.rounds} ingest round(s), summed), {a.queries} queries, k=10")
    print(f"{'':16}{'raw pymilvus':>14}{'vecbridge':>12}{'ratio':>8}")
    for key in ("ingest", "query", "query_filtered"):
        r, o = res["raw"][key], res["vecbridge"][key]
        print(f"{key:16}{r:13.2f}s{o:11.2f}s{o / r:8.2f}x")


if __name__ == "__main__":
    main()
