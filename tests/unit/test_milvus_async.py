"""Milvus native async: the server form runs on pymilvus's AsyncMilvusClient, Milvus Lite on the pool.

Expected answers are the records written and pymilvus's own (sync) reads.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import engines
import numpy as np
import pytest
from pymilvus import MilvusClient

import vecbridge
import vecbridge.aio

RNG = np.random.default_rng(5)
VECS = RNG.normal(size=(30, 4)).astype(np.float32)


@pytest.fixture(scope="module")
def server() -> engines.Engine:
    with engines.milvus_server() as engine:
        yield engine


def test_server_takes_the_native_path(server: engines.Engine) -> None:
    async def main() -> None:
        async with await vecbridge.aio.connect(server.url) as client:
            coll = await client.create_collection("anative", dimension=4, metric="l2")
            assert coll.native_async and client.capabilities.native_async
            ids = [f"r{i}" for i in range(30)]
            await coll.upsert(ids, VECS, [{"i": i} for i in range(30)])
            assert await coll.count({"i": {"$gte": 10}}) == 20
            state = client._native_state
            assert type(state.native).__name__ == "AsyncMilvusClient"
            batches = [b async for b in coll.scan(batch_size=7, include=["vector", "metadata"])]
            assert sorted(r.id for b in batches for r in b) == sorted(ids)
            hits = await coll.query(VECS[3], k=3)
            order = np.argsort(((VECS - VECS[3]) ** 2).sum(axis=1))[:3]
            assert [h.id for h in hits] == [ids[i] for i in order]
            await coll.delete(["r0"])
        assert client._native_state is None  # closed with the AsyncClient

    asyncio.run(main())
    native = MilvusClient(uri=server.native["uri"])
    try:
        rows = native.query("anative", filter='id != ""', output_fields=["id", "metadata"], consistency_level="Strong")
        assert sorted(r["id"] for r in rows) == sorted(f"r{i}" for i in range(1, 30))
    finally:
        native.close()


def test_native_collection_async_on_the_server(server: engines.Engine) -> None:
    native = MilvusClient(uri=server.native["uri"])
    native.create_collection("aquick", dimension=4, metric_type="L2")
    native.insert("aquick", [{"id": i, "vector": VECS[i].tolist(), "n": i} for i in range(30)])
    native.close()

    async def main() -> None:
        async with await vecbridge.aio.connect(server.url) as client:
            coll = await client.get_collection("aquick")
            assert coll.native_async
            got = await coll.get(where={"n": {"$lt": 5}}, include=["metadata"])
            assert sorted((r.id, r.metadata["n"]) for r in got) == [(str(i), i) for i in range(5)]

    asyncio.run(main())


def test_lite_stays_on_the_pool(tmp_path: Path) -> None:
    async def main() -> None:
        async with await vecbridge.aio.connect(f"milvus:///{tmp_path}/a.db") as client:
            coll = await client.create_collection("pool", dimension=4)
            assert not coll.native_async and not client.capabilities.native_async
            await coll.upsert(["a"], VECS[:1])
            assert await coll.count() == 1

    asyncio.run(main())
