"""FAISS disk mode: a process killed mid-write never leaves an index that disagrees with its records."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import vecbridge

pytest.importorskip("faiss")

WRITER = textwrap.dedent("""
    import sys, numpy as np, vecbridge
    client = vecbridge.connect("faiss:///" + sys.argv[1])
    coll = client.get_or_create_collection("crash", 8, "l2", index={"type": "hnsw", "m": 8})
    rng = np.random.default_rng(0)
    i = 0
    while True:
        ids = [f"r{i + j}" for j in range(200)]
        coll.upsert(ids, rng.normal(size=(200, 8)), [{"n": i + j} for j in range(200)])
        coll.delete(ids=[f"r{i}"])
        i += 200
        if i % 2000 == 0:
            coll.flush()  # an index file of an older generation stays behind
            print(i, flush=True)
""")


@pytest.mark.parametrize("delay", [0.3, 1.0])
def test_killed_writer_leaves_a_consistent_collection(tmp_path, delay):
    root = str(tmp_path / "store")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, root], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()  # at least one flush happened
    time.sleep(delay)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with vecbridge.connect("faiss:///" + root) as client:
        coll = client.get_collection("crash")
        n = coll.count()
        assert n > 0
        records = [r for b in coll.scan(batch_size=500) for r in b]
        assert len(records) == n
        ids = {r.id for r in records}
        vectors = np.stack([r.vector for r in records])
        hits = coll.query(vectors[:50], k=1, include=["metadata"])
        for rec, row in zip(records[:50], hits):
            assert row[0].id == rec.id and row[0].distance < 1e-3
        everything = coll.query(vectors[0], k=n + 10, include=[])
        assert {h.id for h in everything} == ids, "the index holds exactly the stored records"


def test_stale_index_file_is_rebuilt(tmp_path):
    url = "faiss:///" + str(tmp_path / "s")
    folder = tmp_path / "s" / "coll"
    with vecbridge.connect(url) as client:
        coll = client.create_collection("coll", 2, "l2", index={"type": "flat"})
        coll.add(["a"], [[0.0, 0.0]])
    assert sorted(p.name for p in folder.glob("*.faiss")) == ["index-1.faiss"]
    old = (folder / "index-1.faiss").read_bytes()
    with vecbridge.connect(url) as client:
        client.get_collection("coll").add(["b"], [[1.0, 1.0]])
    assert sorted(p.name for p in folder.glob("*.faiss")) == ["index-2.faiss"]
    (folder / "index-2.faiss").unlink()
    (folder / "index-1.faiss").write_bytes(old)  # as if killed before the new index was saved
    with vecbridge.connect(url) as client:
        coll = client.get_collection("coll")
        assert [h.id for h in coll.query([1.0, 1.0], k=2)] == ["b", "a"]
