"""FAISS has no async client: the async API runs its sync hooks on the client's thread pool
(``native_async`` is False on every form), and partitions are read the same way."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

import vecbridge.aio

pytest.importorskip("faiss")


@pytest.mark.parametrize("form", ["memory", "disk"])
def test_thread_pool_path_and_partitions(form, tmp_path):
    url = "faiss://" if form == "memory" else f"faiss:///{tmp_path}/f"
    rng = np.random.default_rng(5)
    vecs = rng.normal(size=(40, 3)).astype(np.float32)
    ids = [f"a{i}" for i in range(40)]

    async def main() -> None:
        async with await vecbridge.aio.connect(url) as client:
            assert client.capabilities.native_async is False
            coll = await client.create_collection("pool", 3, "l2", {"type": "flat"})
            assert coll.native_async is False
            await asyncio.gather(*[coll.add(ids[i:i + 4], vecs[i:i + 4]) for i in range(0, 40, 4)])
            parts = await coll.partitions(3)
            assert [p.kind for p in parts] == ["range"] * len(parts)
            got: dict[str, np.ndarray] = {}
            for p in parts:
                async for batch in coll.scan(6, partition=p):
                    for r in batch:
                        assert r.id not in got
                        got[r.id] = r.vector
            assert sorted(got) == sorted(ids)
            for i, id_ in enumerate(ids):
                np.testing.assert_array_equal(got[id_], vecs[i])

    asyncio.run(main())
