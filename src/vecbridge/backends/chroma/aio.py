"""Native async I/O for Chroma's server form: ``chromadb.AsyncHttpClient``.

The collection's hooks are programs of chromadb calls (``ChromaCollection._p_*``): here
they run on chromadb's ``AsyncCollection`` instead of the sync one, so the translation of
filters, the encoding of metadata and vectors, upsert's read of the old keys, add's
duplicate check and the reading of answers are the sync collection's own; so is the retry
of a read that met Chroma's index out of step (:meth:`.collection.ChromaCollection.retry_delay`).
The embedded and in-memory forms have no async client (chromadb's ``AsyncHttpClient``
speaks HTTP only): the core runs their sync hooks on its thread pool.

One ``AsyncHttpClient`` per :class:`vecbridge.aio.AsyncClient` (``aclient._native_state``),
made on the first call inside the event loop, with the sync client's connection arguments
(:attr:`.client.ChromaClient.server_kwargs`) but a settings object of its own: chromadb
sets the API implementation on the settings it is given, which must not change the sync
client's.  ``aclose`` is a no-op beyond dropping it (chromadb's async client keeps an httpx
client per event loop and has no close of its own in 1.5).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import chromadb
import numpy as np

from ...errors import BackendError
from ...filters import Node
from ...flows import RawHit
from ...types import Record
from ...validation import Batch
from .client import ChromaClient
from .collection import READ_TRIES, ChromaCollection, Program

__all__ = ["AsyncHooks", "supports"]


def supports(client: Any) -> bool:
    """A Chroma server (``chroma://host:port``): the only form chromadb has an async client for."""
    return isinstance(client, ChromaClient) and client.server_kwargs is not None


class _State:
    """The chromadb async client of one AsyncClient, and its collections by name."""

    def __init__(self, client: ChromaClient):
        assert client.server_kwargs is not None
        kwargs = dict(client.server_kwargs)
        kwargs["settings"] = kwargs["settings"].model_copy()  # chromadb writes into it
        self._kwargs = kwargs
        self._sync = client
        self._client: Any = None
        self._lock = asyncio.Lock()
        self._collections: dict[str, Any] = {}

    async def collection(self, name: str) -> Any:
        async with self._lock:
            if self._client is None:
                self._client = await chromadb.AsyncHttpClient(**self._kwargs)
                if self._sync._max_batch is None:  # the programs' slices ask the sync client: not on the loop
                    size = int(await self._client.get_max_batch_size())
                    self._sync._max_batch = size if size > 0 else 5000
            if name not in self._collections:
                # embedding_function=None: vecbridge always passes vectors
                self._collections[name] = await self._client.get_collection(name, embedding_function=None)
            return self._collections[name]

    async def aclose(self) -> None:
        self._client = None
        self._collections.clear()


async def _drive(native: Any, prog: Program) -> Any:
    """Perform a program's calls with chromadb's async collection; its result."""
    try:
        method, kwargs = next(prog)
        while True:
            method, kwargs = prog.send(await getattr(native, method)(**kwargs))
    except StopIteration as stop:
        return stop.value


class AsyncHooks:
    """The async hooks of one collection: its programs, run on the AsyncClient's chromadb client."""

    def __init__(self, aclient: Any, sync_collection: ChromaCollection):
        if aclient._native_state is None:
            aclient._native_state = _State(sync_collection._chroma)
        self._state: _State = aclient._native_state
        self._sync = sync_collection

    async def _run(self, action: str, make: Callable[[], Program], read: bool = False) -> Any:
        for attempt in range(1, READ_TRIES + 1):
            try:
                with self._sync._mapped_errors(action):
                    native = await self._state.collection(self._sync.name)
                    return await _drive(native, make())
            except BackendError as exc:
                if not read:
                    raise
                await asyncio.sleep(self._sync.retry_delay(exc, attempt))
        raise AssertionError("unreachable")

    async def _existing_ids(self, ids: list[str]) -> list[str]:
        return await self._run("get", lambda: self._sync._p_existing_ids(ids))  # type: ignore[no-any-return]

    async def _add(self, b: Batch) -> None:
        await self._run("add", lambda: self._sync._p_add(b))

    async def _upsert(self, b: Batch) -> None:
        await self._run("upsert", lambda: self._sync._p_upsert(b))

    async def _update(self, b: Batch) -> None:
        # The core's read-merge-write flow, its reads and write done here: the core holds this
        # collection's exclusive async write lock around _update already, and its generic
        # driver would take it again for the inner _upsert (a RuntimeError in vecbridge.locks).
        flow = self._sync._flow_default_update(b)
        try:
            name, args = next(flow)
            while True:
                name, args = flow.send(await getattr(self, name)(*args))
        except StopIteration:
            return

    async def _delete(self, ids: list[str] | None, where: Node | None) -> None:
        await self._run("delete", lambda: self._sync._p_delete(ids, where))

    async def _get_ids(self, ids: list[str], where: Node | None, include: frozenset[str]) -> list[Record]:
        return await self._run("get", lambda: self._sync._p_get_ids(ids, where, include),  # type: ignore[no-any-return]
                               read=True)

    async def _get_page(self, where: Node | None, limit: int | None, offset: int,
                        include: frozenset[str]) -> list[Record]:
        return await self._run("get", lambda: self._sync._p_get_page(where, limit, offset, include),  # type: ignore[no-any-return]  # noqa: E501
                               read=True)

    async def _count(self, where: Node | None) -> int:
        return await self._run("count", lambda: self._sync._p_count(where), read=True)  # type: ignore[no-any-return]

    async def _query(self, vectors: np.ndarray, k: int, where: Node | None,
                     include: frozenset[str]) -> list[list[RawHit]]:
        return await self._run("query", lambda: self._sync._p_query(vectors, k, where, include),  # type: ignore[no-any-return]  # noqa: E501
                               read=True)

    async def _scan(self, batch_size: int, include: frozenset[str]) -> AsyncIterator[list[Record]]:
        # the sync _scan's walk (see there): unfiltered offset pages
        offset = 0
        while True:
            page = await self._get_page(None, batch_size, offset, include)
            if page:
                yield page
            if len(page) < batch_size:
                return
            offset += len(page)
