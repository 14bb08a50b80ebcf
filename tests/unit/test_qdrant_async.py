"""Qdrant's native async path (issue 16): ``AsyncHooks`` awaiting the collection's ops on an
``AsyncQdrantClient``.

No Qdrant server runs on these machines, so the native hooks are driven here against the
real engine qdrant-client ships, through its own ``AsyncQdrantClient(":memory:")`` (the same
API and arguments as the server's), which holds the data: the vecbridge collection
underneath only lends its translation, and stays empty, which shows that every byte went
through the async client.  With ``VECBRIDGE_TEST_QDRANT_URL`` set, the server form is
checked to take the native path (tests/conformance/test_async.py then runs on it too).
Expected answers come from numpy brute force, the reference evaluator and the native
client's own reads.
"""

from __future__ import annotations

import asyncio
import os

import numpy as np
import pytest
from qdrant_client import AsyncQdrantClient, models

import vecbridge
import vecbridge.aio
from vecbridge import filters
from vecbridge.backends.qdrant.aio import AsyncHooks, NativeState
from vecbridge.scores import brute_force_distances

DIM = 8


def _expected(vectors, metas, q, k, where, metric="l2"):
    keep = [i for i, m in enumerate(metas) if where is None or filters.evaluate(where, m)]
    d = brute_force_distances(metric, q[None, :], vectors[keep])[0]
    order = np.argsort(d, kind="stable")[:k]
    return [keep[j] for j in order], d[order]


async def _native_points(native, name):
    out, offset = {}, None
    while True:
        points, offset = await native.scroll(name, limit=100, offset=offset, with_payload=True, with_vectors=True)
        out.update({p.payload["_vb_id"]: p for p in points})
        if offset is None:
            return out


def test_native_hooks_on_the_async_client():
    rng = np.random.default_rng(4)
    n = 240
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    ids = [f"r{i}" for i in range(n)]
    metas = [{"g": i % 4, "n": i, "tags": [f"t{i % 3}"]} for i in range(n)]
    docs = [f"doc {i}" for i in range(n)]

    async def main() -> None:
        sync_client = vecbridge.connect("qdrant://")
        sync = sync_client.create_collection("anat", DIM, "l2")
        native = AsyncQdrantClient(":memory:")
        await native.create_collection("anat", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.EUCLID),
                                       metadata={"vecbridge": {"format": 1, "index": {"type": "hnsw"},
                                                               "layout": "vecbridge"}})
        aclient = vecbridge.aio.AsyncClient(sync_client)
        aclient._hooks_class = AsyncHooks  # the server form's hooks ...
        aclient._native_state = NativeState(native)  # ... on the async client of the real local engine
        async with aclient:
            coll = await aclient.get_collection("anat")
            assert coll.native_async
            await asyncio.gather(*[coll.add(ids[i:i + 20], vectors[i:i + 20], metas[i:i + 20], docs[i:i + 20])
                                   for i in range(0, n, 20)])
            assert sync.count() == 0  # nothing went through the sync client
            stored = await _native_points(native, "anat")
            assert sorted(stored) == sorted(ids)
            assert all(stored[i].payload["n"] == int(i[1:]) and stored[i].payload["_vb_doc"] == f"doc {i[1:]}"
                       for i in ids)
            assert await coll.count() == n and await coll.count(where={"g": 2}) == n // 4
            with pytest.raises(vecbridge.DuplicateIdError):  # the core's add flow on the async hooks
                await coll.add(["r3"], vectors[:1])
            queries = rng.normal(size=(40, DIM)).astype(np.float32)
            wheres = [None, {"g": 1}, {"n": {"$lt": 50}}, {"tags": {"$contains": "t2"}}, {"$not": {"g": 0}}]
            answers = await asyncio.gather(*[coll.query(queries[i], k=6, where=wheres[i % 5], include=["metadata"])
                                             for i in range(40)])
            for i, hits in enumerate(answers):
                want, dist = _expected(vectors, metas, queries[i], 6, wheres[i % 5])
                assert [h.id for h in hits] == [ids[j] for j in want]
                assert [h.metadata for h in hits] == [metas[j] for j in want]
                np.testing.assert_allclose([h.distance for h in hits], dist, rtol=1e-4, atol=1e-4)
            batch = await coll.query(queries[:3], k=4, include=["vector", "document"])
            for row, q in zip(batch, queries[:3]):
                want, _ = _expected(vectors, metas, q, 4, None)
                assert [h.document for h in row] == [docs[j] for j in want]
                np.testing.assert_array_equal(np.stack([h.vector for h in row]), vectors[want])
            got = await coll.get(ids=["r7", "nope", "r2"], include=["metadata", "document", "vector"])
            assert [(r.id, r.metadata, r.document) for r in got] == [("r7", metas[7], docs[7]), ("r2", metas[2], docs[2])]
            np.testing.assert_array_equal(got[0].vector, vectors[7])
            page = await coll.get(where={"g": 3}, limit=5, offset=4, include=[])
            assert len(page) == 5 and all(int(r.id[1:]) % 4 == 3 for r in page)
            assert len({r.id for r in await coll.get(where={"g": 3}, limit=100)}) == n // 4
            await coll.update(ids[:10], metadatas=[{"g": 9} for _ in range(10)])
            await coll.delete(ids=ids[200:])
            await coll.delete(where={"n": {"$gte": 190}})
            assert await coll.count(where={"g": 9}) == 10
            seen = [r.id async for b in coll.scan(batch_size=33, include=["metadata"]) for r in b]
            assert sorted(seen) == sorted(ids[:190])
            stored = await _native_points(native, "anat")
            assert sorted(stored) == sorted(ids[:190]) and stored["r0"].payload["g"] == 9
            np.testing.assert_array_equal(stored["r0"].vector, vectors[0])  # update kept the vector
            await native.delete_collection("anat")
            with pytest.raises(vecbridge.CollectionNotFoundError):  # the error table on the async path
                await coll.count()
        sync_client.close()

    asyncio.run(main())


@pytest.mark.parametrize("form", ["memory", "disk"])
def test_local_mode_runs_on_the_pool(form, tmp_path):
    """Local mode keeps one engine per folder: the async client works beside the sync one."""
    url = "qdrant://" if form == "memory" else f"qdrant:///{tmp_path}/q"
    client = vecbridge.connect(url)
    coll = client.create_collection("loc", 2, "ip")
    coll.add(["a", "b"], [[1.0, 0.0], [0.0, 1.0]])
    assert client.capabilities.native_async is False

    async def main() -> None:
        aclient = vecbridge.aio.AsyncClient(client) if form == "memory" else await vecbridge.aio.connect(url)
        acoll = await aclient.get_collection("loc")
        assert not acoll.native_async
        await acoll.add(["c"], [[1.0, 1.0]])
        hits = await acoll.query([1.0, 0.5], k=3)
        assert [h.id for h in hits] == ["c", "a", "b"]
        if form == "disk":
            await aclient.close()

    asyncio.run(main())
    assert sorted(r.id for r in coll.get(ids=["a", "b", "c"])) == ["a", "b", "c"]
    client.close()


def test_why_local_mode_is_not_native(tmp_path):
    """qdrant-client's async local mode is another engine: on a folder the sync client holds it is
    refused, and in memory it is another, empty database (the reasons aio.py gives)."""
    url = f"qdrant:///{tmp_path}/q"
    with vecbridge.connect(url) as client:
        client.create_collection("held", 2, "l2").add(["a"], [[1.0, 0.0]])
        with pytest.raises(RuntimeError, match="already accessed"):
            AsyncQdrantClient(path=f"{tmp_path}/q")

    async def empty() -> list:
        native = AsyncQdrantClient(":memory:")
        try:
            return (await native.get_collections()).collections
        finally:
            await native.close()

    with vecbridge.connect("qdrant://") as client:
        client.create_collection("mem", 2, "l2")
        assert asyncio.run(empty()) == []


if os.environ.get("VECBRIDGE_TEST_QDRANT_URL"):  # a server form: only where one runs (docker-compose)
    def test_the_server_takes_the_native_path():
        url = os.environ["VECBRIDGE_TEST_QDRANT_URL"]

        async def main() -> None:
            async with await vecbridge.aio.connect(url) as aclient:
                assert aclient.capabilities.native_async
                name = "async_native_check"
                if name in await aclient.list_collections():
                    await aclient.delete_collection(name)
                coll = await aclient.create_collection(name, 2, "l2")
                try:
                    assert coll.native_async
                    await coll.add(["x"], [[0.5, 0.5]])
                    assert isinstance(aclient._native_state, NativeState)
                    points, _ = await aclient._native_state.native.scroll(name, with_payload=True)
                    assert [p.payload["_vb_id"] for p in points] == ["x"]
                finally:
                    await aclient.delete_collection(name)

        asyncio.run(main())
