"""LangChain ``similarity_search`` through vecbridge against the official integration package
of the same database, same data, side by side in one run.

For each database, two LangChain stores hold the same ``--n`` texts (``--dim``-dimensional
vectors, metadata, UUID ids), each written by its own package into its own collection of
the same kind of engine, with the same metric (cosine) and the same kind of index:

| database | official package | both sides |
|---|---|---|
| chroma (embedded, a folder) | ``langchain_chroma.Chroma`` | Chroma's HNSW, cosine space |
| qdrant (local mode, in memory) | ``langchain_qdrant.QdrantVectorStore`` | the local engine's exact search |
| pgvector (embedded PostgreSQL 18 + pgvector) | ``langchain_postgres.PGVector`` | no ANN index: exact ``<=>`` scan |
| milvus (Milvus Lite, a file) | ``langchain_milvus.Milvus`` | ``FLAT`` index, ``COSINE`` |

The embedding model is a table lookup shared by both stores (the vectors were made up
front), so what is timed is the store: LangChain call -> database -> ``Document`` list.
Each query runs on both stores back to back, in alternating order, so that load from
elsewhere on the machine falls on both alike; a query's time is its best of ``--rounds``
rounds; the ratio is vecbridge's median over the official package's (< 1: vecbridge is
faster).  Agreement is the share of queries whose top-k texts are the same on both sides, in order.

Run::

    pip install "vecbridge[all,langchain]" langchain-chroma langchain-qdrant langchain-postgres langchain-milvus
    python benchmarks/langchain_search.py                       # every database, 2,000 x 64, 200 queries
    python benchmarks/langchain_search.py --backends chroma,qdrant --n 5000 --queries 500
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from vecbridge.integrations.langchain import VecbridgeVectorStore

BACKENDS = ("chroma", "qdrant", "pgvector", "milvus")


class LookupEmbeddings(Embeddings):
    """Vectors made up front, looked up by text: the same (negligible) cost on both sides."""

    def __init__(self, table: dict[str, list[float]]):
        self.table = table
        self.other = [1.0] * len(next(iter(table.values())))  # for a package's probe ("dummy_text")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.table.get(t, self.other) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.table.get(text, self.other)


def make_data(n: int, dim: int, queries: int, seed: int = 0) -> tuple[list[str], list[str], list[dict[str, Any]],
                                                                         list[str], LookupEmbeddings]:
    rng = np.random.default_rng(seed)
    texts = [f"document {i}" for i in range(n)]
    qtexts = [f"query {i}" for i in range(queries)]
    vectors = rng.normal(size=(n + queries, dim)).astype(np.float32)
    ids = [str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | i, version=4)) for i in range(n)]
    metas = [{"genre": f"g{i % 10}", "year": 1990 + i % 35} for i in range(n)]
    table = {t: v.tolist() for t, v in zip(texts + qtexts, vectors)}
    return ids, texts, metas, qtexts, LookupEmbeddings(table)


# -- the pairs: (official store, vecbridge store), same data --------------------------------
@contextlib.contextmanager
def chroma_pair(tmp: str, emb: Embeddings) -> Iterator[tuple[VectorStore, VectorStore]]:
    import chromadb
    from langchain_chroma import Chroma

    # one folder each: chromadb refuses a second client with other settings on the same folder
    client = chromadb.PersistentClient(path=f"{tmp}/chroma-official")
    official = Chroma("lc_official", emb, client=client, collection_metadata={"hnsw:space": "cosine"})
    with VecbridgeVectorStore(f"chroma:///{tmp}/chroma-vecbridge?collection=lc_vecbridge", emb, metric="cosine") as ours:
        yield official, ours


@contextlib.contextmanager
def qdrant_pair(tmp: str, emb: Embeddings) -> Iterator[tuple[VectorStore, VectorStore]]:
    from langchain_qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient, models

    client = QdrantClient(":memory:")
    client.create_collection("lc_official", vectors_config=models.VectorParams(
        size=len(emb.embed_query("")), distance=models.Distance.COSINE))
    official = QdrantVectorStore(client, "lc_official", emb)
    with VecbridgeVectorStore("qdrant://?collection=lc_vecbridge", emb, metric="cosine") as ours:
        yield official, ours
    client.close()


@contextlib.contextmanager
def pgvector_pair(tmp: str, emb: Embeddings) -> Iterator[tuple[VectorStore, VectorStore]]:
    from langchain_postgres import PGVector

    from vecbridge.backends.pgvector import stop_embedded
    from vecbridge.backends.pgvector.embedded import embedded_conninfo

    folder = f"{tmp}/pg"
    try:
        ours = VecbridgeVectorStore(f"pgvector:///{folder}?collection=lc_vecbridge", emb, metric="cosine",
                                    index={"type": "flat"})
        p = embedded_conninfo(folder)
        sa_url = (f"postgresql+psycopg://{p.get('user', 'postgres')}@/{p.get('dbname', 'postgres')}"
                  f"?host={p['host']}" + (f"&port={p['port']}" if p.get("port") else ""))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PGVector's notice that PGVectorStore is its successor
            official = PGVector(emb, connection=sa_url, collection_name="lc_official", use_jsonb=True)
        with ours:
            yield official, ours
        official._engine.dispose()
    finally:
        stop_embedded(folder)


@contextlib.contextmanager
def milvus_pair(tmp: str, emb: Embeddings) -> Iterator[tuple[VectorStore, VectorStore]]:
    from langchain_milvus import Milvus

    official = Milvus(emb, collection_name="lc_official", connection_args={"uri": f"{tmp}/official.db"},
                      index_params={"index_type": "FLAT", "metric_type": "COSINE"}, auto_id=False)
    with VecbridgeVectorStore(f"milvus:///{tmp}/vecbridge.db?collection=lc_vecbridge", emb, metric="cosine",
                              index={"type": "flat"}) as ours:
        yield official, ours
    official.client.close()


PAIRS: dict[str, Callable[[str, Embeddings], Any]] = {"chroma": chroma_pair, "qdrant": qdrant_pair,
                                                      "pgvector": pgvector_pair, "milvus": milvus_pair}


def load(store: VectorStore, ids: list[str], texts: list[str], metas: list[dict[str, Any]], batch: int = 1000) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(texts), batch):
        store.add_texts(texts[i:i + batch], metas[i:i + batch], ids=ids[i:i + batch])
    return time.perf_counter() - t0


def bench(name: str, args: argparse.Namespace) -> dict[str, Any]:
    ids, texts, metas, qtexts, emb = make_data(args.n, args.dim, args.queries)
    with tempfile.TemporaryDirectory(prefix="vb-lcbench-") as tmp, PAIRS[name](tmp, emb) as (official, ours):
        load_official = load(official, ids, texts, metas)
        load_ours = load(ours, ids, texts, metas)
        for q in qtexts[:20]:  # warm-up: caches, connections, lazy imports
            official.similarity_search(q, k=args.k)
            ours.similarity_search(q, k=args.k)
        best = {"official": [float("inf")] * len(qtexts), "vecbridge": [float("inf")] * len(qtexts)}
        agree = 0  # same texts in the same order
        for r in range(args.rounds):
            for i, q in enumerate(qtexts):
                order = [("official", official), ("vecbridge", ours)]
                if (i + r) % 2:
                    order.reverse()
                got: dict[str, list[str | None]] = {}
                for side, store in order:
                    t0 = time.perf_counter()
                    docs = store.similarity_search(q, k=args.k)
                    best[side][i] = min(best[side][i], time.perf_counter() - t0)
                    got[side] = [d.page_content for d in docs]  # the official packages put ids in metadata
                if r == 0:
                    agree += got["official"] == got["vecbridge"]
        med_o, med_v = statistics.median(best["official"]), statistics.median(best["vecbridge"])
        return {"backend": name, "official_ms": med_o * 1e3, "vecbridge_ms": med_v * 1e3, "ratio": med_v / med_o,
                "agree": agree / len(qtexts), "load_official_s": load_official, "load_vecbridge_s": load_ours}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backends", default=",".join(BACKENDS), help="comma list of " + ", ".join(BACKENDS))
    ap.add_argument("--n", type=int, default=2000, help="texts per store")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-k", type=int, default=4, help="LangChain's default k")
    args = ap.parse_args()
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = sorted(set(names) - set(BACKENDS))
    if unknown:
        ap.error(f"unknown backend(s) {', '.join(unknown)}; choose among {', '.join(BACKENDS)}")
    print(f"similarity_search, k={args.k}, {args.n} texts x {args.dim} dims, {args.queries} queries, "
          f"best of {args.rounds} rounds, median per query")
    print(f"{'database':<10} {'official ms':>12} {'vecbridge ms':>13} {'ratio':>7} {'agree':>6}   load s (official / vecbridge)")
    for name in names:
        r = bench(name, args)
        print(f"{r['backend']:<10} {r['official_ms']:>12.3f} {r['vecbridge_ms']:>13.3f} {r['ratio']:>6.2f}x "
              f"{r['agree']:>6.0%}   {r['load_official_s']:.2f} / {r['load_vecbridge_s']:.2f}", flush=True)


if __name__ == "__main__":
    main()
