"""Native async for the Qdrant server: ``AsyncQdrantClient`` answers the collection's ops.

Every hook's decisions are the sync collection's ops (``ops.py``: the point ids, the
filter, the selectors, the pages, a partition's bounds); here only the I/O differs: each
:class:`~.ops.Call` is awaited on an ``AsyncQdrantClient`` built from the sync client's own
connection arguments, one per :class:`vecbridge.aio.AsyncClient` (kept on its
``_native_state``, closed by its ``aclose``).  Writes are plain ``upsert`` requests of
``batch_size`` points: the async client's ``upload_collection`` is a blocking call, so the
``parallel`` option (upload processes) applies to the sync API only.

Local mode has no native async here; the core runs its sync hooks on the async client's
thread pool.  qdrant-client's ``AsyncQdrantClient(path=…)``/``(":memory:")`` builds its own
``AsyncQdrantLocal``, which loads the folder again and takes its lock (so it fails while
the sync client holds the folder: "already accessed by another instance"), and an in-memory
one is another, empty, database; there is no public way to hand it the sync client's engine.
Sharing it would mean building an ``AsyncQdrantLocal`` around the sync client's private
``collections`` dict, and would buy nothing: ``AsyncQdrantLocal``'s coroutines are the sync
engine's computations without an ``await`` inside, so every call (a scroll sorts the whole
collection) would run on the event loop and stall it, and they would bypass the lock that
serialises calls into local mode (which is not thread-safe) against the sync API and the
pool.  On the pool the loop stays free and the lock holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from qdrant_client import AsyncQdrantClient

from ...base import RawHit
from ...filters import Node
from ...types import Record
from ...validation import Batch
from .client import QdrantClient
from .collection import QdrantCollection
from .ops import Call, Ops

__all__ = ["AsyncHooks", "supports"]


def supports(client: Any) -> bool:
    """Native async for the server forms (REST and gRPC); local mode runs on the thread pool."""
    return isinstance(client, QdrantClient) and not client.local


class NativeState:
    """The one ``AsyncQdrantClient`` of a vecbridge AsyncClient."""

    def __init__(self, native: Any):
        self.native = native

    async def aclose(self) -> None:
        await self.native.close()


def native_state(aclient: Any) -> NativeState:
    """The AsyncClient's native state, made on first use (inside the loop, where its
    connections will live)."""
    state = aclient._native_state
    if state is None:
        state = aclient._native_state = NativeState(AsyncQdrantClient(**aclient.sync._server_args))
    return state  # type: ignore[no-any-return]


class AsyncHooks:
    """The collection hooks of :class:`QdrantCollection`, awaited on ``AsyncQdrantClient``."""

    def __init__(self, aclient: Any, sync: QdrantCollection):
        self._aclient = aclient
        self._sync = sync

    async def _call(self, c: Call) -> Any:
        native = native_state(self._aclient).native
        with self._sync._mapped_errors(c.action):
            return await getattr(native, c.method)(**c.kwargs)

    async def _run(self, ops: Ops) -> Any:
        result = None
        while True:
            try:
                item = ops.send(result)
            except StopIteration as stop:
                return stop.value
            result = await self._call(item)

    async def _upsert(self, b: Batch) -> None:
        await self._run(self._sync._ops_upsert(b))

    async def _delete(self, ids: list[str] | None, where: Node | None) -> None:
        await self._run(self._sync._ops_delete(ids, where))

    async def _existing_ids(self, ids: list[str]) -> list[str]:
        return await self._run(self._sync._ops_existing_ids(ids))  # type: ignore[no-any-return]

    async def _get_ids(self, ids: list[str], where: Node | None, include: frozenset[str]) -> list[Record]:
        return await self._run(self._sync._ops_get_ids(ids, where, include))  # type: ignore[no-any-return]

    async def _get_page(self, where: Node | None, limit: int | None, offset: int,
                        include: frozenset[str]) -> list[Record]:
        return await self._run(self._sync._ops_get_page(where, limit, offset, include))  # type: ignore[no-any-return]

    async def _count(self, where: Node | None) -> int:
        return await self._run(self._sync._ops_count(where))  # type: ignore[no-any-return]

    async def _query(self, vectors: np.ndarray, k: int, where: Node | None,
                     include: frozenset[str]) -> list[list[RawHit]]:
        ops = self._sync._ops_search(vectors, k, where, include, self._sync._params)
        return await self._run(ops)  # type: ignore[no-any-return]

    async def _exact_query(self, vectors: np.ndarray, k: int, where: Node | None,
                           include: frozenset[str]) -> list[list[RawHit]]:
        ops = self._sync._ops_search(vectors, k, where, include, self._sync._exact_params)
        return await self._run(ops)  # type: ignore[no-any-return]

    async def _scan(self, batch_size: int, include: frozenset[str]) -> AsyncIterator[list[Record]]:
        self._sync._client._check_open()
        ops = self._sync._ops_scan(batch_size, include)
        result = None
        while True:
            try:
                item = ops.send(result)
            except StopIteration:
                return
            if isinstance(item, Call):
                result = await self._call(item)
            else:
                result = None
                yield item
