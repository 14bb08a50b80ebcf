"""Several clients on one FAISS folder, in one process or in several: nothing is lost.

Each scenario is driven step by step (no timing), through "peers": a client in this
process, or a client in a child process that obeys commands on its stdin.  Expected
answers come from the data written and numpy brute force, never from the backend.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

import vecbridge
from vecbridge.testing import brute_force

pytest.importorskip("faiss")

DIM = 8
NAME = "shared"

DRIVER = textwrap.dedent("""
    import json, sys, vecbridge
    client = coll = None
    for line in sys.stdin:
        cmd = json.loads(line)
        op, res = cmd.pop("op"), None
        try:
            if op == "open":
                client = vecbridge.connect(cmd["url"])
                coll = client.get_collection(cmd["name"])
            elif op == "query":
                res = [h.id for h in coll.query(cmd["vector"], k=cmd["k"], where=cmd.get("where"), include=[])]
            elif op == "add":
                coll.add(cmd["ids"], cmd["vectors"], cmd["metadatas"])
            elif op == "delete":
                coll.delete(ids=cmd["ids"])
            elif op == "close":
                client.close()
            out = {"ok": res}
        except Exception as exc:
            out = {"error": type(exc).__name__ + ": " + str(exc)}
        print(json.dumps(out), flush=True)
""")


class Peer:
    """One client on the folder; ``kind`` "client" (this process) or "process" (a child)."""

    def __init__(self, kind: str, url: str):
        self.kind, self.url = kind, url
        self.proc: subprocess.Popen[str] | None = None
        self.client: Any = None
        self.coll: Any = None
        if kind == "process":
            self.proc = subprocess.Popen([sys.executable, "-c", DRIVER], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True)

    def call(self, op: str, **kw: Any) -> Any:
        if self.proc is not None:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.write(json.dumps({"op": op, **kw}) + "\n")
            self.proc.stdin.flush()
            out = json.loads(self.proc.stdout.readline())
            if "error" in out:
                raise AssertionError(f"{op} in the child process failed: {out['error']}")
            return out["ok"]
        if op == "open":
            self.client = vecbridge.connect(kw["url"])
            self.coll = self.client.get_collection(kw["name"])
        elif op == "query":
            return [h.id for h in self.coll.query(kw["vector"], k=kw["k"], where=kw.get("where"), include=[])]
        elif op == "add":
            self.coll.add(kw["ids"], kw["vectors"], kw["metadatas"])
        elif op == "delete":
            self.coll.delete(ids=kw["ids"])
        elif op == "close":
            self.client.close()
        return None

    def open(self) -> None:
        self.call("open", url=self.url, name=NAME)

    def add(self, ids: list[str], vectors: np.ndarray, metadatas: list[dict[str, Any]]) -> None:
        self.call("add", ids=ids, vectors=vectors.tolist(), metadatas=metadatas)

    def query(self, vector: np.ndarray, k: int, where: Any = None) -> list[str]:
        return self.call("query", vector=vector.tolist(), k=k, where=where)

    def finish(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            assert self.proc.wait(timeout=60) == 0


@pytest.fixture(params=["flat", "hnsw"])
def folder(request, tmp_path):
    """A folder with 100 records (batch "base"); returns (url, data) where data is what was written."""
    url = "faiss:///" + str(tmp_path / "store")
    rng = np.random.default_rng(7)
    X = rng.normal(size=(400, DIM)).astype(np.float32)
    ids = [f"r{i}" for i in range(len(X))]
    metas = [{"batch": "base" if i < 100 else "new", "n": i} for i in range(len(X))]
    index = {"type": "flat"} if request.param == "flat" else {"type": "hnsw", "m": 16, "ef_search": 400}
    with vecbridge.connect(url) as client:
        client.create_collection(NAME, DIM, "l2", index=index).add(ids[:100], X[:100], metas[:100])
    return url, {"X": X, "ids": ids, "metas": metas}


def check_folder(url: str, X: np.ndarray, ids: list[str], metas: list[dict[str, Any]]) -> None:
    """A fresh client finds exactly these records, by scan, search and filter."""
    with vecbridge.connect(url) as client:
        coll = client.get_collection(NAME)
        assert coll.count() == len(ids)
        assert {r.id for b in coll.scan(batch_size=64) for r in b} == set(ids)
        everything = coll.query(X[0], k=len(ids) + 10, include=[])
        assert sorted(h.id for h in everything) == sorted(ids), "the index holds exactly the stored records"
        Q = np.random.default_rng(3).normal(size=(10, DIM)).astype(np.float32)
        for want, got in zip(brute_force("l2", Q, X, ids, 10), coll.query(Q, k=10, include=[])):
            assert [h.id for h in got] == [i for i, _ in want]
        mask = np.array([m["batch"] == "new" for m in metas])
        want_new = brute_force("l2", Q, X, ids, 5, mask=mask)
        for want, got in zip(want_new, coll.query(Q, k=5, where={"batch": "new"}, include=[])):
            assert [h.id for h in got] == [i for i, _ in want]
        assert {r.id for r in coll.get(where={"n": {"$gte": 100}}, limit=10_000)} == \
            {i for i, m in zip(ids, metas) if m["n"] >= 100}


@pytest.mark.parametrize("kind", ["client", "process"])
@pytest.mark.parametrize("reader_last", [True, False])
def test_reader_closing_last_or_first_loses_nothing(folder, kind, reader_last):
    url, d = folder
    X, ids, metas = d["X"], d["ids"], d["metas"]
    reader, writer = Peer(kind, url), Peer(kind, url)
    try:
        reader.open()
        assert len(reader.query(X[0], k=5)) == 5  # the reader's index is now in memory
        writer.open()
        writer.add(ids[100:200], X[100:200], metas[100:200])
        first, last = (writer, reader) if reader_last else (reader, writer)
        first.call("close")
        last.call("close")
    finally:
        reader.finish()
        writer.finish()
    check_folder(url, X[:200], ids[:200], metas[:200])


@pytest.mark.parametrize("kind", ["client", "process"])
def test_reader_sees_the_writers_adds_and_deletes(folder, kind):
    url, d = folder
    X, ids, metas = d["X"], d["ids"], d["metas"]
    writer = Peer(kind, url)
    with vecbridge.connect(url) as client:
        coll = client.get_collection(NAME)
        assert len(coll.query(X[0], k=5)) == 5
        try:
            writer.open()
            writer.add(ids[100:200], X[100:200], metas[100:200])
            # a new record is its own nearest neighbour, and a filter on the new ones finds them
            assert coll.query(X[150], k=1, include=[])[0].id == ids[150]
            got = coll.query(X[150], k=5, where={"batch": "new"}, include=[])
            assert [h.id for h in got] == [i for i, _ in brute_force("l2", X[150], X[100:200], ids[100:200], 5)[0]]
            writer.call("delete", ids=ids[:50])
            live = ids[50:200]
            hits = coll.query(X[0], k=len(live) + 10, include=[])
            assert sorted(h.id for h in hits) == sorted(live), "deleted records are gone, every other one is found"
            top = coll.query(X[0], k=10, include=[])
            assert [h.id for h in top] == [i for i, _ in brute_force("l2", X[0], X[50:200], live, 10)[0]]
            writer.call("close")
        finally:
            writer.finish()
    check_folder(url, X[50:200], ids[50:200], metas[50:200])


@pytest.mark.parametrize("kind", ["client", "process"])
def test_interleaved_writers_are_serialised(folder, kind):
    url, d = folder
    X, ids, metas = d["X"], d["ids"], d["metas"]
    a, b = Peer(kind, url), Peer(kind, url)
    try:
        a.open()
        b.open()
        for start in range(100, 400, 50):  # a, b, a, b, ...: each writer's index must take in the other's rows
            peer = a if (start // 50) % 2 else b
            peer.add(ids[start:start + 50], X[start:start + 50], metas[start:start + 50])
            assert peer.query(X[start - 10], k=1) == [ids[start - 10]]
        a.call("close")
        b.call("close")
    finally:
        a.finish()
        b.finish()
    check_folder(url, X, ids, metas)


WRITER = textwrap.dedent("""
    import sys, numpy as np, vecbridge
    url, first = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(first)
    with vecbridge.connect(url) as client:
        coll = client.get_collection("shared")
        coll.query(rng.normal(size=8), k=1)
        print("ready", flush=True)
        sys.stdin.readline()  # both start writing together
        for s in range(first, first + 300, 5):
            coll.add([f"p{i}" for i in range(s, s + 5)], rng.normal(size=(5, 8)),
                     [{"batch": "new", "n": i} for i in range(s, s + 5)])
""")


def test_concurrent_writer_processes(folder):
    """Two processes writing at the same time (as fast as they can): every record is kept."""
    url, d = folder
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, url, str(first)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for first in (1000, 2000)]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.close()
    for p in procs:
        assert p.wait(timeout=300) == 0
    want = set(d["ids"][:100]) | {f"p{i}" for i in range(1000, 1300)} | {f"p{i}" for i in range(2000, 2300)}
    with vecbridge.connect(url) as client:
        coll = client.get_collection(NAME)
        records = [r for b in coll.scan(batch_size=200, include=["vector"]) for r in b]
        assert {r.id for r in records} == want and coll.count() == len(want)
        X = np.stack([r.vector for r in records])
        found = coll.query(X[0], k=len(want) + 10, include=[])
        assert sorted(h.id for h in found) == sorted(want)
        for r, row in zip(records[::37], coll.query(X[::37], k=1, include=[])):
            assert row[0].id == r.id


def test_delete_collection_while_another_client_has_it_open(folder):
    url, d = folder
    X, ids, metas = d["X"], d["ids"], d["metas"]
    holder = vecbridge.connect(url)
    stale = holder.get_collection(NAME)
    assert len(stale.query(X[0], k=3)) == 3
    with vecbridge.connect(url) as other:
        other.delete_collection(NAME)
        with pytest.raises(vecbridge.CollectionNotFoundError, match="deleted"):
            stale.query(X[0], k=3)
        with pytest.raises(vecbridge.CollectionNotFoundError, match="deleted"):
            stale.add(["x"], X[:1])
        fresh = other.create_collection(NAME, DIM, "l2", index={"type": "flat"})
        fresh.add(ids[200:210], X[200:210], metas[200:210])
        with pytest.raises(vecbridge.CollectionNotFoundError):
            stale.query(X[0], k=3)  # a new collection of that name is not the old one
    # the holder closes last: its old index must not land in the new folder
    holder.close()
    check_folder(url, X[200:210], ids[200:210], metas[200:210])
    with vecbridge.connect(url) as again:  # get_collection opens the new one
        assert again.get_collection(NAME).count() == 10


HOLDER = textwrap.dedent("""
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.readline()
""")


def test_writer_waits_then_refuses_with_backend_locked_error(folder, monkeypatch, tmp_path):
    from vecbridge.backends.faiss import lock as faiss_lock

    url, d = folder
    lock_file = tmp_path / "store" / NAME / faiss_lock.LOCK_NAME
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_file)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdin is not None
    assert holder.stdout.readline().strip() == "locked"
    monkeypatch.setattr(faiss_lock, "LOCK_TIMEOUT", 0.3)
    try:
        with vecbridge.connect(url) as client:
            coll = client.get_collection(NAME)
            with pytest.raises(vecbridge.BackendLockedError) as err:
                coll.add(["x"], d["X"][:1])
            assert "another process" in str(err.value) and str(tmp_path / "store" / NAME) in str(err.value)
            assert coll.count() == 100 and len(coll.query(d["X"][0], k=200)) == 100  # reads still work
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with vecbridge.connect(url) as client:  # once released, the write goes through
        client.get_collection(NAME).add(["x"], d["X"][:1])
        assert client.get_collection(NAME).count() == 101
