"""The async API on every backend form: 200 concurrent queries and writes from one event loop,
every answer checked against numpy brute force over the data written."""

from __future__ import annotations

import asyncio

import numpy as np

import vecbridge.aio
from vecbridge import errors, filters
from vecbridge.scores import brute_force_distances
from vecbridge.testing._helpers import exact_index
from vecbridge.testing.plugin import unique_name

DIM = 16


def _connect(vb_backend, vb_client):
    """An async client of the same database: by URL, or around the test's client where the
    database lives in memory and a new connection would open an empty one."""
    if vb_backend.persistent:
        return vecbridge.aio.connect(vb_backend.url)

    async def wrap() -> vecbridge.aio.AsyncClient:
        return vecbridge.aio.wrap(vb_client)

    return wrap()


def _expected(vectors: np.ndarray, metas: list[dict], q: np.ndarray, k: int, where: dict | None) -> list[int]:
    keep = [i for i, m in enumerate(metas) if where is None or filters.evaluate(where, m)]
    d = brute_force_distances("l2", q[None, :], vectors[keep])[0]
    return [keep[j] for j in np.argsort(d, kind="stable")[:k]]


def test_concurrent_queries_and_writes_from_one_loop(vb_backend, vb_client):
    rng = np.random.default_rng(11)
    n = 300
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    metas = [{"g": i % 3, "n": i} for i in range(n)]
    ids = [f"r{i}" for i in range(n)]
    name = unique_name()
    vb_client.create_collection(name, DIM, "l2", exact_index(vb_backend))

    async def main() -> None:
        async with await _connect(vb_backend, vb_client) as client:
            coll = await client.get_collection(name)
            # 150 writes of 2 records each, all at once
            await asyncio.gather(*[coll.add(ids[i:i + 2], vectors[i:i + 2], metas[i:i + 2]) for i in range(0, n, 2)])
            assert await coll.count() == n
            queries = rng.normal(size=(200, DIM)).astype(np.float32)
            wheres = [None, {"g": 1}, {"n": {"$lt": 100}}, {"$not": {"g": 0}}]
            tasks = [coll.query(queries[i], k=5, where=wheres[i % 4], include=["metadata"]) for i in range(200)]
            answers = await asyncio.gather(*tasks)
            for i, hits in enumerate(answers):
                want = _expected(vectors, metas, queries[i], 5, wheres[i % 4])
                assert [h.id for h in hits] == [ids[j] for j in want], i
                assert [h.metadata for h in hits] == [metas[j] for j in want]
                d = brute_force_distances("l2", queries[i][None, :], vectors[want])[0]
                np.testing.assert_allclose([h.distance for h in hits], d, rtol=1e-4, atol=1e-4)
            # concurrent adds of the same ids: one wins per id
            results = await asyncio.gather(coll.add(["dup"], vectors[:1]), coll.add(["dup"], vectors[1:2]),
                                           return_exceptions=True)
            assert sorted(type(r).__name__ for r in results) == ["DuplicateIdError", "NoneType"]
            got = await coll.get(ids=["dup"], include=["vector"])
            winner = 0 if results[0] is None else 1
            np.testing.assert_array_equal(got[0].vector, vectors[winner])
            # writes and reads interleaved: updates and deletes, then everything is as expected
            await asyncio.gather(coll.update(ids[:50], metadatas=[{"g": 9, "n": i} for i in range(50)]),
                                 coll.delete(ids=ids[250:]), coll.query(queries[0], k=3))
            assert await coll.count(where={"g": 9}) == 50
            assert await coll.count() == 251
            seen = [r.id async for batch in coll.scan(batch_size=64) for r in batch]
            assert sorted(seen) == sorted([*ids[:250], "dup"])
            try:
                await coll.add(["bad"], [[float("nan")] * DIM])
            except errors.InvalidVectorError:
                pass
            else:
                raise AssertionError("NaN accepted")

    try:
        asyncio.run(main())
    finally:
        if vb_backend.persistent:
            vb_client.delete_collection(name)


def test_async_answers_equal_sync_answers(vb_backend, vb_client):
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(60, DIM)).astype(np.float32)
    name = unique_name()
    coll = vb_client.create_collection(name, DIM, "cosine", exact_index(vb_backend))
    coll.add([f"x{i}" for i in range(60)], vectors, [{"k": i % 4} for i in range(60)], [f"doc {i}" for i in range(60)])
    q = rng.normal(size=(3, DIM)).astype(np.float32)
    sync_hits = coll.query(q, k=7, where={"k": {"$in": [1, 2]}})
    sync_get = coll.get(where={"k": 3}, limit=5, offset=2)

    async def main() -> tuple:
        async with await _connect(vb_backend, vb_client) as client:
            acoll = await client.get_collection(name)
            return (await acoll.query(q, k=7, where={"k": {"$in": [1, 2]}}),
                    await acoll.get(where={"k": 3}, limit=5, offset=2), await acoll.peek(3))

    try:
        hits, got, peeked = asyncio.run(main())
        assert [[h.id for h in row] for row in hits] == [[h.id for h in row] for row in sync_hits]
        assert [[round(h.score, 5) for h in row] for row in hits] == [[round(h.score, 5) for h in row]
                                                                      for row in sync_hits]
        assert got == sync_get
        assert len(peeked) == 3 and all(p.vector is not None for p in peeked)
    finally:
        if vb_backend.persistent:
            vb_client.delete_collection(name)
