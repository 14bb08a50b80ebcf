"""FAISS partitions: SQLite row-id ranges that together return every record exactly once, checked
against the records written (several n, empty and tiny collections, gaps left by deletes and
upserts, balance, JSON round trip into another process)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import vecbridge
from vecbridge.types import Partition

pytest.importorskip("faiss")

DIM = 4


def _written(n: int, seed: int = 0) -> tuple[list[str], np.ndarray, list[dict]]:
    rng = np.random.default_rng(seed)
    return [f"id{i}" for i in range(n)], rng.normal(size=(n, DIM)).astype(np.float32), [{"i": i} for i in range(n)]


def _read_all(coll, parts: list[Partition], batch_size: int = 7) -> dict[str, tuple]:
    seen: dict[str, tuple] = {}
    for p in parts:
        for batch in coll.scan(batch_size, partition=p):
            assert 0 < len(batch) <= batch_size
            for r in batch:
                assert r.id not in seen, f"{r.id} in two partitions"
                seen[r.id] = (r.vector, r.metadata)
    return seen


@pytest.fixture(params=["memory", "disk"])
def client(request, tmp_path):
    url = "faiss://" if request.param == "memory" else f"faiss:///{tmp_path}/f"
    with vecbridge.connect(url) as c:
        yield c


@pytest.mark.parametrize("size", [0, 1, 2, 5, 300])
@pytest.mark.parametrize("n", [1, 2, 3, 7, 16])
def test_every_record_exactly_once(client, size, n):
    coll = client.create_collection("parts", DIM, "l2", index={"type": "flat"})
    ids, vecs, metas = _written(size)
    if size:
        coll.add(ids, vecs, metas)
    parts = coll.partitions(n)
    assert 1 <= len(parts) <= max(1, min(n, size))
    assert all(p.kind == "range" and p.count == len(parts) and p.index == i for i, p in enumerate(parts))
    seen = _read_all(coll, parts)
    assert sorted(seen) == sorted(ids)
    for i, id_ in enumerate(ids):
        np.testing.assert_array_equal(seen[id_][0], vecs[i])
        assert seen[id_][1] == metas[i]


def test_gaps_from_deletes_and_upserts(client):
    coll = client.create_collection("gaps", DIM, "cosine")
    ids, vecs, metas = _written(1000, 1)
    coll.add(ids, vecs, metas)
    coll.delete(ids=ids[::2])  # every other row id gone
    moved = ids[1:200:2]
    coll.upsert(moved, vecs[1:200:2] * 2, [{"moved": True}] * len(moved))  # new row ids at the end
    want = {i: m for i, m in zip(ids, metas) if int(i[2:]) % 2}
    want.update({i: {"moved": True} for i in moved})
    for n in (2, 3, 5):
        seen = _read_all(coll, coll.partitions(n), batch_size=64)
        assert {k: v[1] for k, v in seen.items()} == want


def test_balanced_on_a_regular_delete_pattern(tmp_path):
    with vecbridge.connect(f"faiss:///{tmp_path}/f") as client:
        coll = client.create_collection("big", DIM, "l2", index={"type": "flat"})
        ids, vecs, _ = _written(12000, 2)
        coll.add(ids, vecs)
        coll.delete(ids=[i for k, i in enumerate(ids) if k % 4 == 0])  # a pattern a modulo sample would follow
        parts = coll.partitions(4)
        assert len(parts) == 4
        sizes = [sum(len(b) for b in coll.scan(1000, partition=p)) for p in parts]
        assert sum(sizes) == 9000
        assert max(sizes) <= 1.2 * 9000 / 4 and min(sizes) >= 0.8 * 9000 / 4, sizes


def test_a_record_written_after_the_split_is_in_the_last_partition(client):
    coll = client.create_collection("late", DIM, "l2")
    ids, vecs, _ = _written(50, 3)
    coll.add(ids, vecs)
    parts = coll.partitions(3)
    coll.add(["late"], vecs[:1])
    seen = _read_all(coll, parts)
    assert sorted(seen) == sorted([*ids, "late"])


def test_partitions_from_json_in_another_process(tmp_path):
    url = f"faiss:///{tmp_path}/f"
    with vecbridge.connect(url) as client:
        coll = client.create_collection("json", DIM, "ip")
        ids, vecs, metas = _written(120, 4)
        coll.add(ids, vecs, metas)
        texts = [p.to_json() for p in coll.partitions(4)]
    assert all(json.loads(t)["extra"] == {"key": "rid"} for t in texts)
    code = (
        "import json, sys, vecbridge\n"
        "coll = vecbridge.open_collection(sys.argv[1] + '?collection=json')\n"
        "for text in sys.argv[2:]:\n"
        "    for batch in coll.scan(10, partition=text):\n"
        "        for r in batch: print(json.dumps([r.id, r.metadata]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, url, *texts], capture_output=True, text=True, check=True)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert sorted(r[0] for r in rows) == sorted(ids) and len(rows) == len(ids)
    assert {r[0]: r[1] for r in rows} == dict(zip(ids, metas))


def test_a_partition_of_another_kind_is_refused(client):
    coll = client.create_collection("kinds", DIM, "l2")
    with pytest.raises(ValueError, match="partitions\\(n\\)"):
        coll.scan(partition=Partition("kinds", 0, 2, "range", 1, 5, {"key": "id"}))
    with pytest.raises(ValueError, match="integers"):
        coll.scan(partition=Partition("kinds", 0, 2, "range", "a", None, {"key": "rid"}))


def test_hash_partitions_of_an_older_checkpoint_still_read(client):
    """A checkpoint written before row-id ranges holds the core's hash partitions: they still read."""
    coll = client.create_collection("old", DIM, "l2")
    ids, vecs, metas = _written(80, 5)
    coll.add(ids, vecs, metas)
    parts = [Partition("old", i, 3, "hash") for i in range(3)]
    seen = _read_all(coll, parts)
    assert sorted(seen) == sorted(ids)
