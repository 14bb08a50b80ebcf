"""FAISS's declared capabilities hold: per URL form, add's duplicate check across processes,
scans in row-id order, and record sizes measured as SQLite stores them."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import vecbridge

pytest.importorskip("faiss")

ADDER = textwrap.dedent("""
    import json, sys, numpy as np, vecbridge
    url, seed = sys.argv[1], int(sys.argv[2])
    with vecbridge.connect(url) as client:
        coll = client.get_collection("race")
        print("ready", flush=True)
        for line in sys.stdin:
            ids = json.loads(line)
            vecs = np.full((len(ids), 4), float(seed), dtype=np.float32)
            try:
                coll.add(ids, vecs, [{"by": seed} for _ in ids])
                out = "added"
            except vecbridge.DuplicateIdError:
                out = "duplicate"
            except Exception as exc:
                out = "error " + type(exc).__name__ + ": " + str(exc)
            print(out, flush=True)
""")


def test_capabilities_per_form(tmp_path):
    with vecbridge.connect("faiss://") as mem, vecbridge.connect(f"faiss:///{tmp_path}") as disk:
        m, d = mem.capabilities, disk.capabilities
    assert (m.persistent, m.shared_between_processes) == (False, False)
    assert (d.persistent, d.shared_between_processes, d.atomic_add) == (True, True, True)
    assert d.ordered_scan and not d.native_async
    assert set(d.metrics) == {"cosine", "l2", "ip"} and set(d.index_types) == {"flat", "hnsw"}
    # a record's row (id, vector of up to 65,536 float32, metadata, document) fits SQLite's limit
    conn = sqlite3.connect(":memory:")
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)
    conn.close()
    assert d.max_document_bytes + d.max_metadata_bytes + d.max_id_bytes + 4 * 65536 < limit


def test_add_of_the_same_ids_from_two_processes_writes_once(tmp_path):
    url = f"faiss:///{tmp_path}/f"
    with vecbridge.connect(url) as client:
        client.create_collection("race", 4, "l2", index={"type": "flat"})
    procs = [subprocess.Popen([sys.executable, "-c", ADDER, url, str(seed)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for seed in (1, 2)]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        winners = {}
        for r in range(15):
            ids = [f"b{r}-{j}" for j in range(100)]
            for p in procs:  # both get the batch before either answers
                assert p.stdin is not None
                p.stdin.write(json.dumps(ids) + "\n")
                p.stdin.flush()
            answers = [p.stdout.readline().strip() for p in procs if p.stdout is not None]
            assert sorted(answers) == ["added", "duplicate"], answers
            winners[r] = 1 + answers.index("added")
    finally:
        for p in procs:
            p.communicate("", timeout=60)
    with vecbridge.connect(url) as client:
        coll = client.get_collection("race")
        assert coll.count() == 1500
        for r, seed in winners.items():
            recs = coll.get([f"b{r}-{j}" for j in range(100)], include=["vector", "metadata"])
            assert len(recs) == 100  # the whole batch of the one that added, none of the other's
            assert all(rec.metadata == {"by": seed} and np.all(rec.vector == seed) for rec in recs)


def test_scan_is_in_row_id_order(tmp_path):
    url = f"faiss:///{tmp_path}/f"
    with vecbridge.connect(url) as client:
        coll = client.create_collection("order", 2, "l2")
        coll.add(["c", "a", "b", "d"], np.ones((4, 2)))
        coll.upsert(["a"], [[2.0, 2.0]])  # a new row: it moves to the end
        scanned = [r.id for batch in coll.scan(batch_size=3) for r in batch]
    conn = sqlite3.connect(tmp_path / "f" / "order" / "records.sqlite")
    native = [r[0] for r in conn.execute("SELECT id FROM records ORDER BY rid")]
    conn.close()
    assert scanned == native == ["c", "b", "d", "a"]


def test_sizes_are_measured_as_stored(tmp_path):
    url = f"faiss:///{tmp_path}/f"
    metas = [{"é": "日本語", "tags": ["ü", "x"]}, {"k": 1.5}, {}]
    docs = ["çà 😀", None, "plain"]
    with vecbridge.connect(url) as client:
        measure = client.capabilities.metadata_bytes
        coll = client.create_collection("sizes", 2, "l2")
        coll.add(["a", "b", "c"], np.ones((3, 2)), metas, docs)
    conn = sqlite3.connect(tmp_path / "f" / "sizes" / "records.sqlite")
    stored = conn.execute("SELECT length(CAST(metadata AS BLOB)), length(CAST(document AS BLOB)) "
                          "FROM records ORDER BY rid").fetchall()
    conn.close()
    assert measure is not None
    assert [measure(m, d) for m, d in zip(metas, docs)] == [s[0] for s in stored]
    assert [len(d.encode("utf-8")) if d else None for d in docs] == [s[1] for s in stored]
