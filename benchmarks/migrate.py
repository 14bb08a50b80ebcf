"""vecbridge.migrate against a naive copy and against each side alone, side by side in one run.

    python benchmarks/migrate.py [--n 100000] [--dim 768] [--pairs faiss-faiss,faiss-pgvector]
                                 [--index flat] [--batch-size N] [--repeat 1]

For each pair of embedded backends (``faiss``, ``chroma``, ``qdrant``, ``pgvector``,
``milvus``) a source collection of N records (DIM-d vectors, three metadata keys, a
document) is built once; then every mode runs in its own child process, so that
its peak memory (VmHWM from /proc/self/status, else ru_maxrss) is its own:

- ``migrate``: :func:`vecbridge.migrate` (reader thread, bounded queue, writer,
  checkpoint after every batch), verification off;
- ``naive``: read every record into a list, then insert everything (same batch size);
- ``scan``: the source's scan alone; ``write``: writing N generated records alone.

A pipelined copy should take about max(scan, write) and stay flat in memory; the
naive copy takes about scan + write and grows with N.  Memory of an engine running
in its own process (embedded PostgreSQL) is not counted.  The source index is flat
by default, so that writes measure the copy rather than an HNSW build.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np

import vecbridge
from vecbridge.migrate import DEFAULT_REQUEST_BYTES, migrate, rows_per_batch

FORMS = {
    "faiss": "faiss:///{d}/faiss",
    "chroma": "chroma:///{d}/chroma",
    "qdrant": "qdrant:///{d}/qdrant",
    "milvus": "milvus:///{d}/milvus.db",
    "pgvector": "pgvector:///{d}/pg",
}
MODES = ("migrate", "naive", "scan", "write")
# Built in a child too: an embedded engine may keep its files locked until its process ends (Milvus Lite).
BUILD = "build"


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB elsewhere
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**20


def batch(start: int, n: int, dim: int) -> tuple[list[str], np.ndarray, list[dict[str, Any]], list[str]]:
    rng = np.random.default_rng(start)
    ids = [f"doc-{i}" for i in range(start, start + n)]
    vectors = rng.random((n, dim), dtype=np.float32) + np.float32(0.01)
    metas = [{"i": i, "cat": i % 10, "tag": f"t{i % 7}"} for i in range(start, start + n)]
    docs = [f"document number {i}" for i in range(start, start + n)]
    return ids, vectors, metas, docs


def index_for(client: Any, index: str) -> dict[str, str] | None:
    """``{"type": index}`` where the backend has it, else its default (as migrate decides)."""
    return {"type": index} if index in getattr(client, "index_types", ()) else None


def build_source(url: str, n: int, dim: int, index: str) -> None:
    with vecbridge.connect(url) as client:
        coll = client.create_collection("bench", dim, "cosine", index=index_for(client, index))
        step = 2000
        for k in range(0, n, step):
            coll.upsert(*batch(k, min(step, n - k), dim))


# -- one mode, in a child process -------------------------------------------------------------
def child(mode: str, src: str, dst: str, n: int, dim: int, batch_size: int | None, tmp: str,
          index: str) -> dict[str, Any]:
    if mode == "write":
        client = vecbridge.connect(dst)
        size = batch_size or rows_per_batch(dim, 4, DEFAULT_REQUEST_BYTES)
        t = time.perf_counter()
        coll = client.create_collection("bench", dim, "cosine", index=index_for(client, index))
        for k in range(0, n, size):
            coll.upsert(*batch(k, min(size, n - k), dim))
        seconds = time.perf_counter() - t
        client.close()
        return {"seconds": seconds, "records": n}
    source = vecbridge.open_collection(f"{src}?collection=bench")
    size = batch_size or rows_per_batch(dim, 4, DEFAULT_REQUEST_BYTES)
    if mode == "scan":
        t = time.perf_counter()
        count = sum(len(b) for b in source.scan(batch_size=size))
        return {"seconds": time.perf_counter() - t, "records": count}
    client = vecbridge.connect(dst)
    t = time.perf_counter()
    if mode == "migrate":  # into an empty collection made like the other modes' (same index)
        target = client.create_collection("bench", dim, source.metric, index=index_for(client, index))
        report = migrate(source, target, batch_size=batch_size, verify="none",
                         checkpoint=os.path.join(tmp, "checkpoint.json"))
        count = report.records_copied
    else:  # naive: everything in memory first
        everything = [r for b in source.scan(batch_size=size) for r in b]
        coll = client.create_collection("bench", dim, source.metric, index=index_for(client, index))
        for k in range(0, len(everything), size):
            part = everything[k:k + size]
            coll.upsert([r.id for r in part], np.stack([r.vector for r in part]), [r.metadata for r in part],
                        [r.document for r in part])
        count = len(everything)
    seconds = time.perf_counter() - t
    client.close()
    return {"seconds": seconds, "records": count}


def run_child(args: argparse.Namespace, mode: str, src: str, dst: str, tmp: str) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", mode, "--src", src, "--dst", dst, "--n", str(args.n),
            "--dim", str(args.dim), "--tmp", tmp, "--index", args.index]
    if args.batch_size:
        argv += ["--batch-size", str(args.batch_size)]
    done = subprocess.run(argv, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--pairs", default="faiss-faiss,faiss-pgvector,pgvector-faiss",
                   help="comma-separated SOURCE-TARGET pairs of " + ", ".join(FORMS))
    p.add_argument("--index", default="flat", choices=["flat", "hnsw", "default"], help="the source's index")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--repeat", type=int, default=1, help="runs per mode; the fastest is shown (engines are noisy)")
    p.add_argument("--child", choices=(*MODES, BUILD), help=argparse.SUPPRESS)
    p.add_argument("--src", help=argparse.SUPPRESS)
    p.add_argument("--dst", help=argparse.SUPPRESS)
    p.add_argument("--tmp", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child == BUILD:
        t = time.perf_counter()
        build_source(args.src, args.n, args.dim, args.index)
        print(json.dumps({"seconds": time.perf_counter() - t}))
        return
    if args.child:
        out = child(args.child, args.src, args.dst, args.n, args.dim, args.batch_size, args.tmp, args.index)
        out["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(out))
        return

    pairs = [tuple(x.split("-")) for x in args.pairs.split(",")]
    print(f"{args.n:,} records x {args.dim}-d float32 ({args.n * args.dim * 4 / 2**20:,.0f} MiB of vectors), "
          f"source index {args.index}, batch size {args.batch_size or 'computed'}")
    print(f"{'pair':<18} {'mode':<8} {'seconds':>8} {'records/s':>10} {'peak RSS MB':>12}  vs migrate")
    root = tempfile.mkdtemp(prefix="vb-bench-")
    try:
        sources: dict[str, str] = {}
        for s, d in pairs:
            if s not in sources:
                sources[s] = FORMS[s].format(d=os.path.join(root, f"source-{s}"))
                built = run_child(args, BUILD, sources[s], "", root)
                if "error" in built:
                    raise SystemExit(f"cannot build the {s} source: {built['error']}")
                print(f"  (built the {s} source in {built['seconds']:.1f} s)")
            results = {}
            for mode in MODES:
                tmp = os.path.join(root, f"{s}-{d}-{mode}")
                runs = []
                for k in range(args.repeat):
                    shutil.rmtree(tmp, ignore_errors=True)
                    os.makedirs(tmp)
                    runs.append(run_child(args, mode, sources[s], FORMS[d].format(d=tmp), tmp))
                ok = [x for x in runs if "error" not in x]
                r = min(ok, key=lambda x: x["seconds"]) if ok else runs[0]
                if ok:
                    r["peak_rss_mb"] = max(x["peak_rss_mb"] for x in ok)
                results[mode] = r
                base = results["migrate"].get("seconds")
                if "error" in r:
                    print(f"{s + ' -> ' + d:<18} {mode:<8} error: {r['error']}")
                    continue
                ratio = f"{r['seconds'] / base:5.2f}x" if base else ""
                print(f"{s + ' -> ' + d:<18} {mode:<8} {r['seconds']:8.2f} {r['records'] / r['seconds']:10,.0f} "
                      f"{r['peak_rss_mb']:12,.0f}  {ratio}", flush=True)
                shutil.rmtree(tmp, ignore_errors=True)
            if all("seconds" in results[m] for m in MODES):
                ideal = max(results["scan"]["seconds"], results["write"]["seconds"])
                serial = results["scan"]["seconds"] + results["write"]["seconds"]
                print(f"{'':<18} migrate / max(scan, write) = {results['migrate']['seconds'] / ideal:.2f}; "
                      f"migrate / (scan + write) = {results['migrate']['seconds'] / serial:.2f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
