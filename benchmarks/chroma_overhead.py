"""The Chroma backend against the raw chromadb client doing the same work, side by side in one run.

    python benchmarks/chroma_overhead.py [--n 10000] [--dim 384] [--queries 1000]
                                         [--metric cosine] [--repeat 3] [--server HOST:PORT]

Starts a Chroma server (``chroma run``, through tests/engines.py) unless ``--server``
names one; both sides talk to it over HTTP, each with its own client, in one process.

* upsert: ``n`` records with string ids, metadata (genre, year, rating, a tag list) and a
  document, into a fresh collection.  Raw chromadb upserts slices of
  ``get_max_batch_size()`` records.  The backend also validates the whole batch, reads
  which ids exist (Chroma's upsert merges metadata, the contract replaces it), encodes
  its metadata (the list of numeric keys; in a cosine collection the vector's float32
  bytes, which Chroma's cosine space does not give back bit-exact) and upserts the same
  slices.  Repeated ``--repeat`` times alternately; the median counts.
* queries: single-vector top-10 queries returning metadata, document and distance,
  without and with ``{"genre": "jazz"}`` (1 record in 6).  Raw and backend alternate
  query by query, so that drift on a shared machine hits both sides alike.

Prints seconds per side and the ratio backend / raw, in wall time, and the CPU time of
this process (the client side; the server's work is not in it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import time
from typing import Any

import chromadb
import numpy as np
from chromadb.config import Settings

import vecbridge

GENRES = ["jazz", "rock", "pop", "folk", "blues", "soul"]
TAGS = ["live", "studio", "remaster", "rare"]
INCLUDE = ["metadatas", "documents", "distances"]


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(t: tuple[float, float]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) since ``t``."""
    return time.perf_counter() - t[0], time.process_time() - t[1]


def dataset(n: int, dim: int, queries: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    metas = [{"genre": GENRES[i % 6], "year": 1980 + i % 40, "rating": (i % 10) / 2,
              "tags": [t for j, t in enumerate(TAGS) if (i >> j) & 1] or ["none"]} for i in range(n)]
    return {
        "X": rng.normal(size=(n, dim)).astype(np.float32),
        "Q": rng.normal(size=(queries, dim)).astype(np.float32),
        "ids": [f"doc-{i}" for i in range(n)],
        "metas": metas,
        "docs": [f"document number {i}" for i in range(n)],
    }


class Raw:
    """What an application writes with chromadb alone."""

    def __init__(self, client: Any, metric: str, d: dict[str, Any]):
        self.c, self.metric, self.d = client, metric, d
        self.colls: dict[str, Any] = {}

    def upsert(self, name: str) -> tuple[float, float]:
        coll = self.colls[name] = self.c.create_collection(
            name, configuration={"hnsw": {"space": self.metric}}, embedding_function=None)
        X, ids, metas, docs = self.d["X"], self.d["ids"], self.d["metas"], self.d["docs"]
        t = _clock()
        step = self.c.get_max_batch_size()
        for i in range(0, len(ids), step):
            coll.upsert(ids=ids[i:i + step], embeddings=X[i:i + step], metadatas=metas[i:i + step],
                        documents=docs[i:i + step])
        return _since(t)

    def query(self, name: str, q: np.ndarray, filtered: bool) -> tuple[float, float]:
        t = _clock()
        res = self.colls[name].query(query_embeddings=q[None], n_results=10, include=INCLUDE,
                                     where={"genre": "jazz"} if filtered else None)
        list(zip(res["ids"][0], res["distances"][0], res["metadatas"][0], res["documents"][0]))
        return _since(t)

    def drop(self, name: str) -> None:
        coll = self.colls.pop(name)
        coll.delete(ids=coll.get(include=[])["ids"])  # see ChromaClient._delete_collection (issue 7594)
        self.c.delete_collection(name)


class Ours:
    def __init__(self, client: Any, metric: str, d: dict[str, Any]):
        self.c, self.metric, self.d = client, metric, d
        self.colls: dict[str, Any] = {}

    def upsert(self, name: str) -> tuple[float, float]:
        coll = self.colls[name] = self.c.create_collection(name, self.d["X"].shape[1], self.metric)
        t = _clock()
        coll.upsert(self.d["ids"], self.d["X"], self.d["metas"], self.d["docs"])
        return _since(t)

    def query(self, name: str, q: np.ndarray, filtered: bool) -> tuple[float, float]:
        t = _clock()
        self.colls[name].query(q, k=10, where={"genre": "jazz"} if filtered else None)
        return _since(t)

    def drop(self, name: str) -> None:
        self.colls.pop(name)
        self.c.delete_collection(name)


@contextlib.contextmanager
def _server(given: str | None) -> Any:
    if given:
        host, _, port = given.rpartition(":")
        yield host, int(port)
        return
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
    import engines  # tests/engines.py: starts `chroma run` on a free port, stops it afterwards

    with engines.chroma_server() as engine:
        yield engine.native["host"], engine.native["port"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--metric", choices=["cosine", "l2", "ip"], default="cosine")
    ap.add_argument("--repeat", type=int, default=3, help="upserts per side (median)")
    ap.add_argument("--server", help="HOST:PORT of a running Chroma server (default: start one)")
    a = ap.parse_args()
    d = dataset(a.n, a.dim, a.queries)
    with _server(a.server) as (host, port):
        raw_client = chromadb.HttpClient(host=host, port=port, settings=Settings(anonymized_telemetry=False))
        our_client = vecbridge.connect(f"chroma://{host}:{port}")
        raw, ours = Raw(raw_client, a.metric, d), Ours(our_client, a.metric, d)

        small = {k: v[:300] for k, v in d.items()}  # warm up both sides on a small copy
        for side in (Raw(raw_client, a.metric, small), Ours(our_client, a.metric, small)):
            side.upsert("warmup")
            for q in d["Q"][:5]:
                side.query("warmup", q, True)
            side.drop("warmup")

        times: dict[str, dict[str, list[tuple[float, float]]]] = {"raw": {}, "vecbridge": {}}
        sides: list[tuple[str, Raw | Ours]] = [("raw", raw), ("vecbridge", ours)]
        for rep in range(a.repeat):  # alternate sides, fresh collections; keep the last pair for queries
            last = rep == a.repeat - 1
            for label, side in sides if rep % 2 == 0 else sides[::-1]:
                name = f"bench_{label}" if last else f"bench_{label}{rep}"
                times[label].setdefault("upsert", []).append(side.upsert(name))
                if not last:
                    side.drop(name)
        for filtered in (False, True):
            key = "query_filtered" if filtered else "query"
            for i, q in enumerate(d["Q"]):
                for label, side in sides if i % 2 == 0 else sides[::-1]:
                    times[label].setdefault(key, []).append(side.query(f"bench_{label}", q, filtered))
        raw.drop("bench_raw")
        ours.drop("bench_vecbridge")
        our_client.close()

    print(f"chroma server over HTTP (chromadb {chromadb.__version__}), {a.metric}, n={a.n}, dim={a.dim}, "
          f"queries={a.queries}, upsert median of {a.repeat}")
    print(f"{'':16}{'raw wall s':>12}{'vb wall s':>12}{'ratio':>8}{'raw cpu s':>12}{'vb cpu s':>12}{'ratio':>8}")
    for key in ("upsert", "query", "query_filtered"):
        cols = []
        for i in (0, 1):  # wall, CPU of this process
            total = statistics.median if key == "upsert" else sum
            r, o = (float(total(x[i] for x in times[s][key])) for s in ("raw", "vecbridge"))
            cols += [f"{r:12.3f}", f"{o:12.3f}", f"{o / r:8.3f}"]
        print(f"{key:16}" + "".join(cols))


if __name__ == "__main__":
    main()
