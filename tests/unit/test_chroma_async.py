"""Chroma's native async path: a server collection's I/O runs on ``chromadb.AsyncHttpClient``
(``AsyncCollection.native_async``), the folder and in-memory forms on the core's thread pool.

Expected answers: the records written, read back with chromadb's own sync client, and numpy
brute force for the query.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import vecbridge
import vecbridge.aio

chromadb = pytest.importorskip("chromadb")

import engines  # noqa: E402


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with engines.chroma_server() as engine:
        yield engine.url


def _data(n: int = 40, dim: int = 6) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    rng = np.random.default_rng(3)
    return [f"a{i}" for i in range(n)], rng.standard_normal((n, dim)).astype(np.float32), \
        [{"g": i % 3, "t": f"x{i}"} for i in range(n)]


@pytest.mark.server
def test_server_collection_runs_on_chromas_async_client(server):
    ids, vecs, metas = _data()
    name = f"as{uuid.uuid4().hex[:8]}"

    async def main() -> None:
        async with await vecbridge.aio.connect(server) as client:
            assert client.capabilities.native_async
            coll = await client.create_collection(name, dimension=6, metric="l2")
            assert coll.native_async
            await asyncio.gather(*(coll.upsert(ids[i:i + 10], vecs[i:i + 10], metas[i:i + 10]) for i in range(0, 40, 10)))
            assert await coll.count() == 40
            assert await coll.count(where={"g": 1}) == sum(m["g"] == 1 for m in metas)
            hits = await coll.query(vecs[5], k=4, where={"g": {"$ne": 0}})
            keep = [i for i in range(40) if metas[i]["g"] != 0]
            d = ((vecs[keep] - vecs[5]) ** 2).sum(1)
            assert [h.id for h in hits] == [ids[keep[j]] for j in np.argsort(d, kind="stable")[:4]]
            seen = [r.id async for batch in coll.scan(batch_size=7) for r in batch]
            assert sorted(seen) == sorted(ids)
            await coll.delete(ids[:5])
            # the AsyncHttpClient is made once per AsyncClient, kept on its native state
            state = client._native_state
            assert state is not None and state._client is not None
            again = await client.get_collection(name)
            assert again.native_async and (await again.count()) == 35 and client._native_state is state
        # chromadb's own sync client sees what the async path wrote
        native = chromadb.HttpClient(host=engines.HOST, port=int(server.rsplit(":", 1)[1]))
        got = native.get_collection(name, embedding_function=None).get(include=["metadatas", "embeddings"])
        assert sorted(got["ids"]) == sorted(ids[5:])
        for id_, m, v in zip(got["ids"], got["metadatas"], got["embeddings"]):
            i = ids.index(id_)
            assert {k: m[k] for k in ("g", "t")} == metas[i]
            np.testing.assert_allclose(v, vecs[i], rtol=1e-6)
        native.delete_collection(name)

    asyncio.run(main())


@pytest.mark.parametrize("url", ["chroma://", "chroma:///{tmp}/c"])
def test_embedded_forms_use_the_thread_pool(url, tmp_path):
    async def main() -> None:
        async with await vecbridge.aio.connect(url.format(tmp=tmp_path)) as client:
            assert not client.capabilities.native_async
            coll = await client.create_collection("tp1", dimension=3, metric="l2")
            assert not coll.native_async
            await coll.add(["x"], [[1.0, 2.0, 3.0]])
            assert await coll.count() == 1
    asyncio.run(main())
