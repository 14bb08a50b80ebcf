"""Parallel copies: workers 1, 2 and 4 and Ray with 2 workers, from FAISS into real servers, in one run.

    python benchmarks/parallel.py [--n 200000] [--dim 768] [--targets pgvector,milvus,chroma]
                                  [--workers 1,2,4] [--ray 2] [--png docs/img/parallel.png]

A FAISS folder of N records (DIM-d vectors, three metadata keys, a document) is built
once; the PostgreSQL, Milvus and Chroma servers are started by tests/engines.py, one
after the other.  Every copy runs in its own child process, so that its peak memory
(VmHWM) is its own: :func:`vecbridge.migrate` with ``workers=W`` (threads) and with
``engine="ray"`` on a local Ray instance of ``--ray`` CPUs (the driver's memory is
measured; the Ray worker processes' is not, and is printed apart as the largest worker's).
After the widest thread copy ``verify full`` runs with the same number of workers, to
compare its time with the copy's.  Prints a table (records/s, peak RSS) and a JSON line;
writes a PNG chart of records/s against workers (matplotlib).
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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))

import vecbridge

SERVERS = {"pgvector": "postgres_server", "milvus": "milvus_server", "chroma": "chroma_server"}


def peak_rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(url: str, n: int, dim: int) -> None:
    rng = np.random.default_rng(0)
    with vecbridge.connect(url) as client:
        coll = client.create_collection("bench", dim, "cosine", index={"type": "flat"})
        step = 2000
        for k in range(0, n, step):
            m = min(step, n - k)
            ids = [f"r{i}" for i in range(k, k + m)]
            coll.upsert(ids, rng.normal(size=(m, dim)).astype(np.float32),
                        [{"i": i, "g": f"g{i % 10}", "x": i * 0.5} for i in range(k, k + m)],
                        [f"document {i}" for i in range(k, k + m)])


def _with_collection(url: str, name: str) -> str:
    return url + ("&" if "?" in url else "?") + f"collection={name}"


def child(args: argparse.Namespace) -> None:
    """One copy (or one verification); prints one JSON line."""
    out: dict[str, Any] = {}
    ray_worker_mb = None
    if args.engine == "ray":
        import ray

        ray.init(num_cpus=args.workers, object_store_memory=200 * 2**20, include_dashboard=False,
                 log_to_driver=False)
    t0 = time.monotonic()
    if args.verify_only:
        from vecbridge.migrate import verify

        result = verify(args.source, args.target, mode="full", workers=args.workers)
        out.update(ok=result.ok, checked=result.checked)
    else:
        report = vecbridge.migrate(args.source, args.target, workers=args.workers, engine=args.engine,
                                   verify="count", checkpoint=False)
        out.update(ok=report.ok, copied=report.records_copied, partitions=report.partitions)
    seconds = time.monotonic() - t0
    if args.engine == "ray":
        import ray

        ray_worker_mb = _ray_worker_peak_mb()
        ray.shutdown()
    out.update(seconds=seconds, rate=args.n / seconds, rss_mb=peak_rss_mb(), ray_worker_mb=ray_worker_mb)
    print(json.dumps(out))


def _ray_worker_peak_mb() -> float | None:
    """The largest VmHWM among this machine's Ray worker processes (``ray::`` in their command line)."""
    best = None
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            if b"ray::" not in cmd and b"default_worker.py" not in cmd:
                continue
            with open(f"/proc/{pid}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        mb = int(line.split()[1]) / 1024
                        best = mb if best is None else max(best, mb)
        except (OSError, ValueError):
            continue
    return best


def run_child(source: str, target: str, n: int, workers: int, engine: str, verify_only: bool = False) -> dict:
    argv = [sys.executable, os.path.abspath(__file__), "--child", "--source", source, "--target", target,
            "--n", str(n), "--workers", str(workers), "--engine", engine]
    if verify_only:
        argv.append("--verify-only")
    done = subprocess.run(argv, check=False, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(argv[2:])} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def chart(rows: list[dict], path: str, n: int, dim: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for target in dict.fromkeys(r["target"] for r in rows):
        threads = [r for r in rows if r["target"] == target and r["engine"] == "threads"]
        line = ax.plot([r["workers"] for r in threads], [r["rate"] for r in threads], marker="o", label=target)
        for r in rows:
            if r["target"] == target and r["engine"] == "ray":
                ax.scatter([r["workers"]], [r["rate"]], marker="s", color=line[0].get_color(),
                           label=f"{target} (Ray)")
    ax.set_xlabel("workers")
    ax.set_ylabel("records/s")
    ax.set_xticks(sorted({r["workers"] for r in rows}))
    ax.set_title(f"FAISS -> server, {n:,} x {dim}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--dim", type=int, default=768)
    p.add_argument("--targets", default="pgvector,milvus,chroma")
    p.add_argument("--workers", default="1,2,4")
    p.add_argument("--ray", type=int, default=2, help="workers of the Ray copy (0: none)")
    p.add_argument("--png", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "img",
                                                 "parallel.png"))
    # the child's arguments
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--verify-only", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--source", help=argparse.SUPPRESS)
    p.add_argument("--target", help=argparse.SUPPRESS)
    p.add_argument("--engine", default="threads", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.workers = int(args.workers)
        child(args)
        return

    import engines

    tmp = tempfile.mkdtemp(prefix="vb-bench-par-")
    try:
        src_url = f"faiss:///{tmp}/src"
        t0 = time.monotonic()
        build(src_url, args.n, args.dim)
        print(f"source: {args.n:,} x {args.dim} in FAISS, built in {time.monotonic() - t0:.0f} s", flush=True)
        source = _with_collection(src_url, "bench")
        plan = [(int(w), "threads") for w in args.workers.split(",")] + ([(args.ray, "ray")] if args.ray else [])
        rows: list[dict] = []
        for target in args.targets.split(","):
            with getattr(engines, SERVERS[target])() as engine:
                for workers, engine_name in plan:
                    name = f"bench_{engine_name}_{workers}"
                    row = run_child(source, _with_collection(engine.url, name), args.n, workers, engine_name)
                    row.update(target=target, workers=workers, engine=engine_name)
                    rows.append(row)
                    print(json.dumps(row), flush=True)
                    if engine_name == "threads" and workers == max(w for w, e in plan if e == "threads"):
                        v = run_child(source, _with_collection(engine.url, name), args.n, workers, "threads",
                                      verify_only=True)
                        v.update(target=target, workers=workers, engine="verify full")
                        rows.append(v)
                        print(json.dumps(v), flush=True)
                    with vecbridge.connect(engine.url) as client:  # keep the server's disk and memory flat
                        client.delete_collection(name)
        print(f"\n{'target':<10} {'engine':<12} {'workers':>7} {'seconds':>8} {'records/s':>10} {'peak RSS':>9}")
        for r in rows:
            extra = f"  (largest Ray worker {r['ray_worker_mb']:.0f} MB)" if r.get("ray_worker_mb") else ""
            print(f"{r['target']:<10} {r['engine']:<12} {r['workers']:>7} {r['seconds']:>8.1f} {r['rate']:>10,.0f} "
                  f"{r['rss_mb']:>6.0f} MB{extra}")
        copies = [r for r in rows if r["engine"] in ("threads", "ray")]
        chart(copies, args.png, args.n, args.dim)
        print(f"chart: {os.path.abspath(args.png)}")
        print(json.dumps({"n": args.n, "dim": args.dim, "rows": rows}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
