"""Milvus partitions: primary-key ranges from one keyset pass (Milvus Lite, embedded).

Expected answers are the records written here (and, for a collection made with pymilvus,
the rows pymilvus inserted), never vecbridge's own reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pymilvus import MilvusClient

import vecbridge
from vecbridge.types import Partition

N = 57
RNG = np.random.default_rng(3)
VECS = RNG.normal(size=(N, 4)).astype(np.float32)
IDS = [f'id"{i:03d}\\' if i % 5 else f"é{i}" for i in range(N)]


def _read_all(coll: vecbridge.Collection, parts: list[Partition], batch: int = 7) -> list[str]:
    out: list[str] = []
    for p in parts:
        p2 = Partition.from_json(p.to_json())  # as another process would get it
        for b in coll.scan(batch_size=batch, include=["vector", "metadata"], partition=p2):
            assert 0 < len(b) <= batch
            for r in b:
                i = int(r.metadata["i"])
                np.testing.assert_array_equal(r.vector, VECS[i])
                out.append(r.id)
    return out


@pytest.fixture()
def lite(tmp_path: Path) -> vecbridge.Client:
    with vecbridge.connect(f"milvus:///{tmp_path}/p.db") as client:
        yield client


def test_key_ranges_hold_every_record_once(lite: vecbridge.Client) -> None:
    coll = lite.create_collection("parts", dimension=4, metric="l2")
    coll.add(IDS, VECS, [{"i": i} for i in range(N)])
    for n in (1, 2, 3, 7, 56, 57, 100):
        parts = coll.partitions(n)
        assert len(parts) == min(n, N) and all(p.kind == "range" and p.extra == {"key": "id"} for p in parts)
        got = _read_all(coll, parts)
        assert sorted(got) == sorted(IDS) and len(got) == len(set(got)), n
        sizes = [sum(len(b) for b in coll.scan(partition=p)) for p in parts]
        assert max(sizes) - min(sizes) <= 1, (n, sizes)  # split at exact (count/n)-th keys


def test_empty_and_tiny(lite: vecbridge.Client) -> None:
    coll = lite.create_collection("tiny", dimension=4)
    parts = coll.partitions(4)
    assert len(parts) == 1 and [b for b in coll.scan(partition=parts[0])] == []
    coll.add(["only"], VECS[:1], [{"i": 0}])
    parts = coll.partitions(4)
    assert len(parts) == 1 and _read_all(coll, parts) == ["only"]
    with pytest.raises(ValueError, match="did not make"):
        list(coll.scan(partition=Partition("tiny", 0, 2, "hash")))


def test_native_int64_keys(tmp_path: Path) -> None:
    path = f"{tmp_path}/n.db"
    native = MilvusClient(path)
    native.create_collection("quick", dimension=4, metric_type="L2")
    native.insert("quick", [{"id": (i - 20) * 1000, "vector": VECS[i].tolist(), "i": i} for i in range(N)])
    native.close()
    with vecbridge.connect(f"milvus:///{path}") as client:
        coll = client.get_collection("quick")
        for n in (1, 4, 9):
            parts = coll.partitions(n)
            assert all(isinstance(p.lower, (int, type(None))) for p in parts)
            got = _read_all(coll, parts)
            assert sorted(got) == sorted(str((i - 20) * 1000) for i in range(N)) and len(got) == N
