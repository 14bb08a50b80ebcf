"""The Qdrant backend against raw qdrant-client doing the same work, side by side in one run.

    python benchmarks/qdrant_overhead.py [--n 20000] [--dim 384] [--queries 1000]
                                         [--metric cosine] [--mode memory|disk] [--repeat 3]

Both sides use qdrant-client's local mode (in memory by default; ``--mode disk`` writes
each point to SQLite, slow at this size), each with its own client, in one process.

* upsert: ``n`` records with string ids, metadata (genre, year, rating, a tag list) and a
  document.  Raw qdrant-client maps the ids to UUIDv5 and builds plain payloads (Qdrant
  takes no string ids), then uploads with ``upload_collection`` in calls of 256 points
  (its fastest local-mode form, the one the backend uses).  The backend also validates
  the batch, lays out its payload and, in a cosine collection, keeps each vector's float32
  bytes (Qdrant stores cosine vectors normalised).  Repeated ``--repeat`` times
  alternately into fresh collections; the median counts.
* queries: single-vector top-10 queries returning metadata and document, without and with
  ``{"genre": "jazz"}`` (1 record in 6).  Raw and backend alternate query by query.
  Raw writes the filter key as ``"genre"``; the backend quotes every key
  (``'"genre"'``) so that dots are not nesting, and local mode happens to parse a quoted
  key faster, so the filtered ratio may come out below 1.

Prints seconds per side and the ratio backend / raw, in wall time and in CPU time of
the process (steadier on a shared machine; local mode is all in-process CPU).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
import warnings
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models

import vecbridge

GENRES = ["jazz", "rock", "pop", "folk", "blues", "soul"]
TAGS = ["live", "studio", "remaster", "rare"]
DISTANCE = {"cosine": models.Distance.COSINE, "l2": models.Distance.EUCLID, "ip": models.Distance.DOT}


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _since(t: tuple[float, float]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) since ``t``."""
    return time.perf_counter() - t[0], time.process_time() - t[1]


def dataset(n: int, dim: int, queries: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    metas = [{"genre": GENRES[i % 6], "year": 1980 + i % 40, "rating": (i % 10) / 2,
              "tags": [t for j, t in enumerate(TAGS) if (i >> j) & 1]} for i in range(n)]
    ids = [f"doc-{i}" for i in range(n)]
    return {
        "X": rng.normal(size=(n, dim)).astype(np.float32),
        "Q": rng.normal(size=(queries, dim)).astype(np.float32),
        "ids": ids,
        "metas": metas,
        "docs": [f"document number {i}" for i in range(n)],
    }


class Raw:
    """What an application writes with qdrant-client alone."""

    def __init__(self, client: QdrantClient, metric: str, d: dict[str, Any]):
        self.c, self.metric, self.d = client, metric, d
        self.flt = models.Filter(must=[models.FieldCondition(key="genre", match=models.MatchValue(value="jazz"))])

    def upsert(self, name: str) -> tuple[float, float]:
        X, dim = self.d["X"], self.d["X"].shape[1]
        self.c.create_collection(name, vectors_config=models.VectorParams(size=dim, distance=DISTANCE[self.metric]))
        t = _clock()
        # Qdrant takes no string ids: the application maps them to UUIDs and builds its payloads.
        uuids = [str(uuid.uuid5(uuid.NAMESPACE_URL, i)) for i in self.d["ids"]]
        payloads = [{**m, "document": doc} for m, doc in zip(self.d["metas"], self.d["docs"])]
        for i in range(0, len(X), 256):
            self.c.upload_collection(name, vectors=X[i:i + 256], payload=payloads[i:i + 256],
                                     ids=uuids[i:i + 256], wait=True)
        return _since(t)

    def query(self, name: str, q: np.ndarray, filtered: bool) -> tuple[float, float]:
        t = _clock()
        res = self.c.query_points(name, query=q, limit=10, with_payload=True,
                                  query_filter=self.flt if filtered else None).points
        [(p.id, p.score, p.payload) for p in res]
        return _since(t)


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--metric", choices=sorted(DISTANCE), default="cosine")
    ap.add_argument("--mode", choices=["memory", "disk"], default="memory")
    ap.add_argument("--repeat", type=int, default=3, help="upserts per side (median)")
    a = ap.parse_args()
    warnings.filterwarnings("ignore", message="Local mode is not recommended")
    d = dataset(a.n, a.dim, a.queries)
    with tempfile.TemporaryDirectory() as tmp:
        if a.mode == "disk":
            raw_client, our_client = QdrantClient(path=f"{tmp}/raw"), vecbridge.connect(f"qdrant:////{tmp}/ours")
        else:
            raw_client, our_client = QdrantClient(location=":memory:"), vecbridge.connect("qdrant://")
        raw, ours = Raw(raw_client, a.metric, d), Ours(our_client, a.metric, d)

        # warm up both sides (imports, pydantic schemas, numpy kernels) on a small copy
        small = {k: v[:300] for k, v in d.items()}
        for side in (Raw(raw_client, a.metric, small), Ours(our_client, a.metric, small)):
            side.upsert("warmup")
            for q in d["Q"][:5]:
                side.query("warmup", q, True)
        raw_client.delete_collection("warmup")
        our_client.delete_collection("warmup")

        times: dict[str, dict[str, list[tuple[float, float]]]] = {"raw": {}, "vecbridge": {}}
        for r in range(a.repeat):  # alternate sides, fresh collections; keep the last pair for queries
            last = r == a.repeat - 1
            for label, side in (("raw", raw), ("vecbridge", ours)) if r % 2 == 0 else (("vecbridge", ours), ("raw", raw)):
                name = "bench" if last else f"bench{r}"
                times[label].setdefault("upsert", []).append(side.upsert(name))
                if not last:
                    (raw_client if label == "raw" else our_client).delete_collection(name)
        for filtered in (False, True):
            key = "query_filtered" if filtered else "query"
            for i, q in enumerate(d["Q"]):  # alternate query by query so that drift hits both sides
                pair = ((raw, "raw"), (ours, "vecbridge")) if i % 2 == 0 else ((ours, "vecbridge"), (raw, "raw"))
                for side, label in pair:
                    times[label].setdefault(key, []).append(side.query("bench", q, filtered))
        raw_client.close()
        our_client.close()

    print(f"qdrant local mode ({a.mode}), {a.metric}, n={a.n}, dim={a.dim}, queries={a.queries}, "
          f"upsert median of {a.repeat}")
    print(f"{'':16}{'raw wall s':>12}{'vb wall s':>12}{'ratio':>8}{'raw cpu s':>12}{'vb cpu s':>12}{'ratio':>8}")
    for key in ("upsert", "query", "query_filtered"):
        cols = []
        for i in (0, 1):  # wall, CPU
            if key == "upsert":
                r, o = (statistics.median(x[i] for x in times[s][key]) for s in ("raw", "vecbridge"))
            else:
                r, o = (sum(x[i] for x in times[s][key]) for s in ("raw", "vecbridge"))
            cols += [f"{r:12.3f}", f"{o:12.3f}", f"{o / r:8.3f}"]
        print(f"{key:16}" + "".join(cols))


if __name__ == "__main__":
    main()
