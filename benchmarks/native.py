"""Reading a native collection against the same data in vecbridge's own layout, side by side.

    python benchmarks/native.py [--n 20000] [--dim 768] [--backends chroma,qdrant,milvus,pgvector,faiss]
                                [--repeat 3] [--batch-size 1000] [--profile BACKEND]

For each backend the same records (DIM-d float32 vectors, the metadata keys ``year`` (int),
``genre`` (str), ``score`` (float) and ``tags`` (list of str), a document) are written twice,
in one run:

- ``native``: by the database's own client into the natural schema of
  :mod:`vecbridge.testing.native` (chromadb; qdrant-client, int point ids and plain payload
  keys; pymilvus on Milvus Lite with real nullable fields and dynamic keys; psycopg CREATE
  TABLE with real columns, jsonb and an HNSW index; ``faiss.write_index`` of a flat index,
  which holds no metadata), then opened by vecbridge (layout ``native``);
- ``vecbridge``: by vecbridge into its own layout (``create_collection`` + ``add``).

Then, alternately and ``--repeat`` times each, the best run kept: the full scan rate
(records/s through ``coll.scan``, every part of every record) and the migration rate into a
fresh FAISS folder (``vecbridge.migrate``, verification off, records/s).  The table gives both
and the ratio native / vecbridge (1.00: as fast; the aim is 0.90 or more).  Embedded forms
only (the servers of tests/engines.py are left out: their start-up is not what is measured
and the same backend code reads them).  ``--profile BACKEND`` prints cProfile's top functions
of one native scan.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

import vecbridge
from vecbridge.testing.data import BackendUnderTest, Dataset
from vecbridge.testing.native import native_collection, release_milvus_lite

FORMS = {
    "chroma": ("chroma-embedded", "chroma:///{d}/chroma", None),
    "qdrant": ("qdrant-disk", "qdrant:///{d}/qdrant", None),
    "milvus": ("milvus-lite", "milvus:///{d}/milvus.db", {"type": "flat"}),
    "pgvector": ("pgvector-embedded", "pgvector:///{d}/pg", {"type": "hnsw"}),
    "faiss": ("faiss-disk", "faiss:///{d}/faiss", {"type": "flat"}),
}
GENRES = ["jazz", "rock", "pop", "folk"]


def dataset(n: int, dim: int) -> Dataset:
    rng = np.random.default_rng(1)
    vectors = rng.random((n, dim), dtype=np.float32) + np.float32(0.01)
    metas = [{"year": 1980 + i % 40, "genre": GENRES[i % 4], "score": (i % 100) / 10,
              "tags": [f"t{i % 7}", f"u{i % 3}"]} for i in range(n)]
    return Dataset([f"doc-{i}" for i in range(n)], vectors, metas, [f"document number {i}" for i in range(n)])


def scan_rate(coll: Any, batch_size: int) -> float:
    start, count = time.perf_counter(), 0
    for batch in coll.scan(batch_size=batch_size, include=["vector", "metadata", "document"]):
        count += len(batch)
    return count / (time.perf_counter() - start)


def migrate_rate(coll: Any, tmp: str, batch_size: int, n: int) -> float:
    target = tempfile.mkdtemp(dir=tmp)
    try:
        start = time.perf_counter()
        report = vecbridge.migrate(coll, f"faiss:///{target}?collection=copy", batch_size=batch_size,
                                   verify="none", checkpoint=False)
        took = time.perf_counter() - start
        assert report.records_copied == n, report.summary()
        return n / took
    finally:
        shutil.rmtree(target, ignore_errors=True)


@contextlib.contextmanager
def vecbridge_layout(url: str, ds: Dataset, index: Any, batch_size: int) -> Iterator[Any]:
    with vecbridge.connect(url) as client:
        coll = client.create_collection("bench", ds.vectors.shape[1], "cosine", index=index)
        for i in range(0, len(ds), batch_size):
            j = i + batch_size
            coll.add(ds.ids[i:j], ds.vectors[i:j], ds.metadatas[i:j], ds.documents[i:j])
        yield coll


def run(backend: str, ds: Dataset, repeat: int, batch_size: int, profile: bool) -> dict[str, Any]:
    name, template, index = FORMS[backend]
    with tempfile.TemporaryDirectory(prefix=f"vbbench-{backend}-") as tmp, contextlib.ExitStack() as stack:
        url = template.format(d=tmp)
        under_test = BackendUnderTest(name, url)
        t = time.perf_counter()
        native = stack.enter_context(native_collection(under_test, "cosine", ds)).collection
        built_native = time.perf_counter() - t
        if backend == "milvus":
            stack.callback(release_milvus_lite, f"{tmp}/milvus.db")
        t = time.perf_counter()
        own = stack.enter_context(vecbridge_layout(url, ds, index, batch_size))
        built_own = time.perf_counter() - t
        rates: dict[str, list[float]] = {k: [] for k in ("scan_native", "scan_vecbridge", "mig_native",
                                                          "mig_vecbridge")}
        for _ in range(repeat):  # alternately, so that a change in the machine's load hits both
            rates["scan_native"].append(scan_rate(native, batch_size))
            rates["scan_vecbridge"].append(scan_rate(own, batch_size))
            rates["mig_native"].append(migrate_rate(native, tmp, batch_size, len(ds)))
            rates["mig_vecbridge"].append(migrate_rate(own, tmp, batch_size, len(ds)))
        if profile:
            prof = cProfile.Profile()
            prof.enable()
            scan_rate(native, batch_size)
            prof.disable()
            print(f"\n-- cProfile of one native scan ({backend}) --")
            pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(25)
            prof = cProfile.Profile()
            prof.enable()
            scan_rate(own, batch_size)
            prof.disable()
            print(f"\n-- cProfile of one vecbridge-layout scan ({backend}) --")
            pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(25)
        out: dict[str, Any] = {k: max(v) for k, v in rates.items()}
        out.update(built_native=built_native, built_vecbridge=built_own)
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--backends", default=",".join(FORMS))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--profile", default="", help="a backend whose native and vecbridge scans to profile")
    args = ap.parse_args(argv)
    ds = dataset(args.n, args.dim)
    print(f"{args.n:,} records x {args.dim} float32, 4 metadata keys and a document; batch {args.batch_size}; "
          f"best of {args.repeat}; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    rows = []
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        r = run(backend, ds, args.repeat, args.batch_size, args.profile == backend)
        rows.append((backend, r))
        print(f"  {backend}: written natively in {r['built_native']:.1f} s, by vecbridge in "
              f"{r['built_vecbridge']:.1f} s", flush=True)
    head = (f"{'backend':<9} {'scan native':>12} {'scan vb':>10} {'ratio':>6} {'migrate native':>15} "
            f"{'migrate vb':>11} {'ratio':>6}   (records/s)")
    print("\n" + head)
    for backend, r in rows:
        print(f"{backend:<9} {r['scan_native']:>12,.0f} {r['scan_vecbridge']:>10,.0f} "
              f"{r['scan_native'] / r['scan_vecbridge']:>6.2f} {r['mig_native']:>15,.0f} "
              f"{r['mig_vecbridge']:>11,.0f} {r['mig_native'] / r['mig_vecbridge']:>6.2f}")
    print(f"load at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
