"""Native async I/O for pgvector: psycopg's ``AsyncConnectionPool``, on both URL forms.

The collection's hooks are programs of statements (:mod:`.ops`); here they run on an
``AsyncConnection`` with :func:`.ops.run_async` instead of a sync one, so the SQL, the
parameters, the order of the statements and the conversion of rows are the sync
collection's own.  The embedded form (``pgvector:///path``) is a real PostgreSQL server
reached over a Unix socket, which psycopg's async connections reach like any libpq host,
so it takes this path too.

One pool per :class:`vecbridge.aio.AsyncClient` (``aclient._native_state``), opened on the
first call inside the event loop and closed by ``AsyncClient.close()``; its connections run
the same session statements as the sync pool's (:meth:`.client.PgvectorClient.session_statements`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import psycopg
from psycopg_pool import AsyncConnectionPool

from ...errors import VecbridgeError
from ...filters import Node
from ...flows import RawHit
from ...types import Record
from ...validation import Batch
from .client import PgvectorClient
from .codec import make_adapters
from .collection import PgvectorCollection, next_after
from .ops import Program, run_async

__all__ = ["AsyncHooks", "supports"]


def supports(client: Any) -> bool:
    """Every pgvector client: the server form and the embedded one (a Unix socket) alike."""
    return isinstance(client, PgvectorClient)


class _State:
    """The async pool of one AsyncClient."""

    def __init__(self, client: PgvectorClient):
        self._client = client
        low, high, timeout = client.pool_sizes
        self.pool = AsyncConnectionPool(
            "", kwargs={**client._params, "autocommit": True, "context": make_adapters(client.vector_oid)},
            min_size=low, max_size=high, timeout=timeout, configure=self._configure,
            name=f"vecbridge-pgvector-async-{id(self):x}", open=False)
        self._opened = False

    async def _configure(self, conn: psycopg.AsyncConnection) -> None:
        for stmt in self._client.session_statements():
            await conn.execute(stmt)

    async def open(self) -> AsyncConnectionPool:
        if not self._opened:
            await self.pool.open()  # a no-op when another task opened it first
            self._opened = True
        return self.pool

    async def aclose(self) -> None:
        await self.pool.close()

    def abandon(self) -> None:
        """Close the pool's idle connections without a loop (the loop that opened them has
        ended): libpq's own close, so the server's connection slots are freed at once."""
        for conn in list(getattr(self.pool, "_pool", ())):  # psycopg_pool's idle connections
            conn.pgconn.finish()


class AsyncHooks:
    """The async hooks of one collection: its programs, run on the AsyncClient's pool."""

    def __init__(self, aclient: Any, sync_collection: PgvectorCollection):
        if aclient._native_state is None:
            aclient._native_state = _State(sync_collection._pg)
        self._state: _State = aclient._native_state
        self._sync = sync_collection

    async def _io(self, action: str, prog: Program) -> Any:
        try:
            pool = await self._state.open()
            async with pool.connection() as conn:
                return await run_async(conn, self._sync._guarded(prog))
        except VecbridgeError:
            raise
        except Exception:
            with self._sync._mapped_errors(action):
                raise
        raise AssertionError("unreachable")

    async def _upsert(self, b: Batch) -> None:
        await self._io("upsert", self._sync._p_write(b, replace=True))

    async def _add(self, b: Batch) -> None:
        await self._io("add", self._sync._p_write(b, replace=False))

    async def _update(self, b: Batch) -> None:
        await self._io("update", self._sync._p_update(b))

    async def _delete(self, ids: list[str] | None, where: Node | None) -> None:
        await self._io("delete", self._sync._p_delete(ids, where))

    async def _existing_ids(self, ids: list[str]) -> list[str]:
        return await self._io("get", self._sync._p_existing(ids))  # type: ignore[no-any-return]

    async def _count(self, where: Node | None) -> int:
        return await self._io("count", self._sync._p_count(where))  # type: ignore[no-any-return]

    async def _get_ids(self, ids: list[str], where: Node | None, include: frozenset[str]) -> list[Record]:
        return await self._io("get", self._sync._p_get_ids(ids, where, include))  # type: ignore[no-any-return]

    async def _get_page(self, where: Node | None, limit: int | None, offset: int,
                        include: frozenset[str]) -> list[Record]:
        return await self._io("get", self._sync._p_get_page(where, limit, offset, include))  # type: ignore[no-any-return]

    async def _query(self, vectors: np.ndarray, k: int, where: Node | None,
                     include: frozenset[str]) -> list[list[RawHit]]:
        return await self._io("query", self._sync._p_search(vectors, k, where, include, exact=False))  # type: ignore[no-any-return]  # noqa: E501

    async def _exact_query(self, vectors: np.ndarray, k: int, where: Node | None,
                           include: frozenset[str]) -> list[list[RawHit]]:
        return await self._io("query", self._sync._p_search(vectors, k, where, include, exact=True))  # type: ignore[no-any-return]  # noqa: E501

    async def _scan(self, batch_size: int, include: frozenset[str]) -> AsyncIterator[list[Record]]:
        after: str | None = None
        while True:
            self._sync._client._check_open()
            page = await self._io("scan", self._sync._p_scan_page(batch_size, include, after))
            if page:
                yield page
            after = next_after(page, batch_size)
            if after is None:
                return
