"""Native async for a Milvus server: pymilvus's ``AsyncMilvusClient`` answers the collection's programs.

Every hook's decisions are the sync collection's programs (:mod:`.collection`: generators of
``(method, args, kwargs)`` pymilvus calls, with the expressions, pages, consistency and
read-timestamp bookkeeping); here only the I/O differs: each call is awaited on an
``AsyncMilvusClient`` (pymilvus 3.0.2; checked against Milvus 2.3.5: create, insert, upsert,
query, search, delete, count) built from the sync client's connection arguments, one per
:class:`vecbridge.aio.AsyncClient` (kept on its ``_native_state``, closed by its ``aclose``).
Writes use the public ``upsert``: the fast request of :mod:`.fastpath` is sync only.

Milvus Lite (embedded, a ``.db`` path) has no native async here: its engine runs inside this
process (pymilvus's server manager), so an async client would only move the same in-process work
onto the event loop; whether ``AsyncMilvusClient`` accepts a Lite path was not tried.  The core
runs the sync hooks on the async client's thread pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
from pymilvus import AsyncMilvusClient

from ...base import RawHit
from ...filters import Node
from ...types import Record
from ...validation import Batch
from .client import MilvusClient
from .collection import MilvusCollection, Program

__all__ = ["AsyncHooks", "supports"]


def supports(client: Any) -> bool:
    """Native async for the server form; Milvus Lite runs on the thread pool."""
    return isinstance(client, MilvusClient) and client.mode == "server"


class NativeState:
    """The one ``AsyncMilvusClient`` of a vecbridge AsyncClient."""

    def __init__(self, native: Any):
        self.native = native

    async def aclose(self) -> None:
        await self.native.close()


def native_state(aclient: Any) -> NativeState:
    """The AsyncClient's native state, made on first use (inside the loop, where its channel lives)."""
    state = aclient._native_state
    if state is None:
        sync: MilvusClient = aclient.sync
        state = aclient._native_state = NativeState(AsyncMilvusClient(**sync.connect_args))
    return state  # type: ignore[no-any-return]


class AsyncHooks:
    """The collection hooks of :class:`MilvusCollection` (and its native kind), awaited on
    ``AsyncMilvusClient``."""

    def __init__(self, aclient: Any, sync: MilvusCollection):
        self._aclient = aclient
        self._sync = sync

    async def _run(self, program: Program, action: str, where: Node | None = None) -> Any:
        native = native_state(self._aclient).native
        result = None
        with self._sync._native_call(action, where):
            while True:
                try:
                    method, args, kwargs = program.send(result)
                except StopIteration as stop:
                    return stop.value
                result = await getattr(native, method)(*args, **kwargs)

    async def _upsert(self, b: Batch) -> None:
        await self._run(self._sync._p_upsert(b), "upsert")

    async def _delete(self, ids: list[str] | None, where: Node | None) -> None:
        await self._run(self._sync._p_delete(ids, where), "delete", where)

    async def _existing_ids(self, ids: list[str]) -> list[str]:
        return await self._run(self._sync._p_existing_ids(ids), "get")  # type: ignore[no-any-return]

    async def _get_ids(self, ids: list[str], where: Node | None, include: frozenset[str]) -> list[Record]:
        return await self._run(self._sync._p_get_ids(ids, where, include), "get", where)  # type: ignore[no-any-return]

    async def _get_page(self, where: Node | None, limit: int | None, offset: int,
                        include: frozenset[str]) -> list[Record]:
        program = self._sync._p_get_page(where, limit, offset, include)
        return await self._run(program, "get", where)  # type: ignore[no-any-return]

    async def _count(self, where: Node | None) -> int:
        return await self._run(self._sync._p_count(where), "count", where)  # type: ignore[no-any-return]

    async def _query(self, vectors: np.ndarray, k: int, where: Node | None,
                     include: frozenset[str]) -> list[list[RawHit]]:
        program = self._sync._p_query(vectors, k, where, include)
        return await self._run(program, "query", where)  # type: ignore[no-any-return]

    async def _scan(self, batch_size: int, include: frozenset[str]) -> AsyncIterator[list[Record]]:
        sync = self._sync
        sync._client._check_open()
        fields, page = sync._fields(include), sync._page_rows(include)
        carry: list[dict[str, Any]] = []
        last: Any = None
        while True:
            rows = await self._run(sync._p_page("", fields, page, last), "scan")
            batches, carry = sync._cut(carry, rows, batch_size, include)
            for batch in batches:
                yield batch
            last = sync._next_after(rows, page)
            if last is None:
                break
        if carry:
            yield sync._records(carry, include)
