"""The async API: ``AsyncClient`` and ``AsyncCollection`` for event loops (FastAPI, aiohttp…).

    import vecbridge.aio

    async with await vecbridge.aio.connect("qdrant://localhost:6333") as client:
        docs = await client.get_collection("docs")
        hits = await docs.query(vector, k=5, where={"lang": "en"})
        async for batch in docs.scan(batch_size=500):
            ...

Same URLs, options, errors and answers as the sync API, because the decisions are the
same code: every call of an :class:`AsyncCollection` drives the flow of its sync twin
(:mod:`vecbridge.flows`) and only the I/O each flow yields is done here -- by the
backend's native async hooks where it has them (``backends/<name>/aio.py``, a class
``AsyncHooks``), otherwise by running the sync hook on a thread of the client's pool, so
that the loop never blocks.  Client-level calls (create, list, delete collections) run
the sync client's methods on that pool.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import weakref
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .base import BaseClient, BaseCollection
from .errors import BackendError
from .flows import Flow
from .locks import AsyncSharedExclusiveLock
from .types import Hit, Partition, Record
from .url import URL

__all__ = ["AsyncClient", "AsyncCollection", "connect", "open_collection", "wrap"]

#: The default hooks that are flows themselves: with native async hooks they are driven
#: here, so that their own I/O is async too.
_DEFAULT_FLOWS = {
    "_add": "_flow_default_add",
    "_update": "_flow_default_update",
    "_existing_ids": "_flow_default_existing_ids",
    "_exact_query": "_flow_default_exact_query",
}
_WRITES = frozenset({"_add", "_update", "_upsert", "_delete"})


#: The async write locks of each event loop, one per collection of a database, as the sync
#: API's (:func:`vecbridge.locks.collection_lock`): shared by every AsyncClient of that
#: database on the loop, so that two clients' ``add`` of one id cannot both pass the check.
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, AsyncSharedExclusiveLock]] = \
    weakref.WeakKeyDictionary()


def _collection_lock(sync: BaseCollection) -> AsyncSharedExclusiveLock:
    locks = _LOCKS.setdefault(asyncio.get_running_loop(), {})
    key = (sync._client.location, sync.name)
    lock = locks.get(key)
    if lock is None:
        lock = locks[key] = AsyncSharedExclusiveLock()
    return lock


def _native_hooks_class(client: BaseClient) -> Any:
    """The backend's ``AsyncHooks`` class, or ``None`` when it has none for this form."""
    module = type(client).__module__.rsplit(".", 1)[0] + ".aio"
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return None
    supports = getattr(mod, "supports", None)
    if supports is not None and not supports(client):
        return None
    return getattr(mod, "AsyncHooks", None)


class AsyncCollection:
    """The async twin of a :class:`~vecbridge.Collection`; every method of the contract is a coroutine
    (``scan`` an async iterator)."""

    def __init__(self, client: AsyncClient, sync: BaseCollection):
        self._client = client
        self._sync = sync
        hooks_class = client._hooks_class
        self._hooks = hooks_class(client, sync) if hooks_class is not None else None

    # -- what the sync collection knows ---------------------------------------------------
    name = property(lambda self: self._sync.name)
    dimension = property(lambda self: self._sync.dimension)
    metric = property(lambda self: self._sync.metric)
    index = property(lambda self: self._sync.index)
    config = property(lambda self: self._sync.config)
    capabilities = property(lambda self: self._sync.capabilities)
    backend = property(lambda self: self._sync.backend)

    @property
    def sync(self) -> BaseCollection:
        """The sync collection underneath (same records)."""
        return self._sync

    @property
    def native_async(self) -> bool:
        """Whether this collection's I/O runs on the backend's own async client."""
        return self._hooks is not None

    def __repr__(self) -> str:
        return f"<AsyncCollection {self.name!r} of {self._sync!r}>"

    # -- driving a flow ---------------------------------------------------------------------
    async def _drive(self, flow: Flow) -> Any:
        try:
            name, args = next(flow)
            while True:
                result = await self._hook(name, args)
                name, args = flow.send(result)
        except StopIteration as stop:
            return stop.value

    async def _hook(self, name: str, args: tuple[Any, ...]) -> Any:
        if name in ("_embed_documents", "_embed_query"):
            emb = self._sync.embedder
            anative = getattr(emb, "a" + name[1:], None)  # an embedder with an async API (openai's)
            if anative is not None:
                return await anative(*args)
            return await self._client._offload(getattr(emb, name[1:]), *args)
        if self._hooks is None:  # the sync hook on a thread (it takes the sync write lock itself)
            return await self._client._offload(self._sync._run_hook, name, args)
        client = self._client
        if client._closed or client._sync._closed:  # no native state may be opened again
            client._check_open()
        native = getattr(self._hooks, name, None)
        if native is not None:
            call = native(*args)
        elif name in _DEFAULT_FLOWS:  # the default hook's own flow, with async I/O
            call = self._drive(getattr(self._sync, _DEFAULT_FLOWS[name])(*args))
        else:
            raise NotImplementedError(f"{type(self._hooks).__name__} lacks the async hook {name}")
        if name not in _WRITES:
            return await call
        locks = _collection_lock(self._sync)  # looked up per write: a collection may outlive a loop
        lock = locks.exclusive() if name in self._sync.exclusive_writes else locks.shared()
        async with lock:
            return await call

    # -- the contract -------------------------------------------------------------------------
    async def add(self, ids: Sequence[str], vectors: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        await self._drive(self._sync._flow_add(ids, vectors, metadatas, documents))

    async def upsert(self, ids: Sequence[str], vectors: Any = None, metadatas: Any = None,
                     documents: Any = None) -> None:
        await self._drive(self._sync._flow_upsert(ids, vectors, metadatas, documents))

    async def update(self, ids: Sequence[str], vectors: Any = None, metadatas: Any = None,
                     documents: Any = None) -> None:
        await self._drive(self._sync._flow_update(ids, vectors, metadatas, documents))

    async def get(self, ids: Sequence[str] | None = None, where: Any = None, limit: int | None = None,
                  offset: int | None = None, include: Sequence[str] | None = None) -> list[Record]:
        return await self._drive(self._sync._flow_get(ids, where, limit, offset, include))  # type: ignore[no-any-return]

    async def query(self, vectors: Any = None, k: int = 10, where: Any = None,
                    include: Sequence[str] | None = None, *, text: str | Sequence[str] | None = None
                    ) -> list[Hit] | list[list[Hit]]:
        return await self._drive(self._sync._flow_query(vectors, k, where, include, text))  # type: ignore[no-any-return]

    async def delete(self, ids: Sequence[str] | None = None, where: Any = None) -> None:
        await self._drive(self._sync._flow_delete(ids, where))

    async def count(self, where: Any = None) -> int:
        return await self._drive(self._sync._flow_count(where))  # type: ignore[no-any-return]

    async def peek(self, n: int = 10) -> list[Record]:
        return await self.get(limit=n, include=["vector", "metadata", "document"])

    def scan(self, batch_size: int = 1000, include: Sequence[str] | None = None, *,
             partition: Partition | None = None) -> AsyncIterator[list[Record]]:
        """Every record exactly once, in batches: ``async for batch in coll.scan()``."""
        size, inc = self._sync._scan_args(batch_size, include)
        native = getattr(self._hooks, "_scan", None) if self._hooks is not None and partition is None else None
        if native is not None:
            return native(size, inc)  # type: ignore[no-any-return]
        return self._offloaded_scan(size, inc, partition)

    async def partitions(self, n: int) -> list[Partition]:
        return await self._client._offload(self._sync.partitions, n)  # type: ignore[no-any-return]

    async def _offloaded_scan(self, size: int, inc: frozenset[str], partition: Partition | None
                              ) -> AsyncIterator[list[Record]]:
        it = await self._client._offload(lambda: iter(self._sync.scan(size, list(inc), partition=partition)))
        done = object()
        try:
            while True:
                batch = await self._client._offload(next, it, done)
                if batch is done:
                    return
                yield batch
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                await self._client._offload(close)

    async def close(self) -> None:
        if self._sync._owns_client:
            await self._client.close()

    async def __aenter__(self) -> AsyncCollection:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncClient:
    """The async twin of a :class:`~vecbridge.Client`; ``async with`` closes it."""

    def __init__(self, sync: BaseClient, *, threads: int | None = None, owns_sync: bool = True,
                 native: bool = True):
        self._sync = sync
        self._owns_sync = owns_sync  # closing this client closes the sync one too
        self._pool = ThreadPoolExecutor(max_workers=threads or min(32, (os.cpu_count() or 1) + 4),
                                        thread_name_prefix=f"vecbridge-{sync.backend_name}")
        # native=False: the sync hooks on the thread pool even where the backend has async ones
        # (for a caller that cannot close the client before its event loop ends)
        self._hooks_class = _native_hooks_class(sync) if native else None
        self._native_state: Any = None  # what a backend's AsyncHooks share per client (its async client)
        self._closed = False

    url = property(lambda self: self._sync.url)
    capabilities = property(lambda self: self._sync.capabilities)

    @property
    def sync(self) -> BaseClient:
        return self._sync

    def __repr__(self) -> str:
        return f"<AsyncClient {self._sync.url}>"

    def _check_open(self) -> None:
        """Raise what the sync client raises once closed (also when only this twin is closed)."""
        self._sync._check_open()
        if self._closed:
            raise BackendError(f"{self._sync.backend_name}: the async client of {self._sync.url} is closed; "
                               "open a new one with vecbridge.aio.connect()")

    async def _offload(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._closed:  # its pool is shut down: say so as the sync client does
            self._check_open()
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _wrap(self, coll: BaseCollection) -> AsyncCollection:
        await self._offload(lambda: coll.config)  # read once off the loop: flows consult it
        return AsyncCollection(self, coll)

    async def create_collection(self, name: str, dimension: int | None = None, metric: str = "cosine",
                                index: dict[str, Any] | None = None, *, embedding: Any = None) -> AsyncCollection:
        coll = await self._offload(lambda: self._sync.create_collection(name, dimension, metric, index,
                                                                        embedding=embedding))
        return await self._wrap(coll)

    async def get_collection(self, name: str, *, embedding: Any = None) -> AsyncCollection:
        return await self._wrap(await self._offload(lambda: self._sync.get_collection(name, embedding=embedding)))

    async def get_or_create_collection(self, name: str, dimension: int | None = None, metric: str = "cosine",
                                       index: dict[str, Any] | None = None, *, embedding: Any = None
                                       ) -> AsyncCollection:
        coll = await self._offload(lambda: self._sync.get_or_create_collection(name, dimension, metric, index,
                                                                               embedding=embedding))
        return await self._wrap(coll)

    async def list_collections(self) -> list[str]:
        return await self._offload(self._sync.list_collections)  # type: ignore[no-any-return]

    async def delete_collection(self, name: str) -> None:
        await self._offload(self._sync.delete_collection, name)

    def abandon(self) -> None:
        """Free what this client holds when its event loop has ended (so ``close`` cannot be
        awaited): the thread pool, and the backend's native connections where it can close them
        without a loop.  The sync client stays open."""
        state, self._native_state = self._native_state, None
        abandon = getattr(state, "abandon", None)
        if abandon is not None:
            abandon()
        self._closed = True
        self._pool.shutdown(wait=False)

    async def close(self) -> None:
        if self._closed:  # as the sync client's close: a second call does nothing
            return
        state, self._native_state = self._native_state, None
        try:
            aclose = getattr(state, "aclose", None)
            if aclose is not None:
                await aclose()
            if self._owns_sync:
                await self._offload(self._sync.close)
        finally:
            self._closed = True
            self._pool.shutdown(wait=False)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def wrap(obj: BaseClient | BaseCollection, *, threads: int | None = None, native: bool = True) -> Any:
    """The async twin of an open sync client (an :class:`AsyncClient`) or collection (an
    :class:`AsyncCollection`), on the same connection and data — an in-memory database too.
    Closing the twin frees only its own resources; the sync object stays open.

    A collection's twin is returned by a coroutine (``await vecbridge.aio.wrap(coll)``): its
    configuration is read off the loop first."""
    if isinstance(obj, BaseCollection):
        aclient = AsyncClient(obj._client, threads=threads, owns_sync=False, native=native)
        return aclient._wrap(obj)
    if isinstance(obj, BaseClient):
        return AsyncClient(obj, threads=threads, owns_sync=False, native=native)
    raise TypeError(f"wrap takes a vecbridge client or collection, not {type(obj).__name__}")


async def connect(url: str | URL, **options: Any) -> AsyncClient:
    """Connect to the database named by ``url`` (the same URLs and options as :func:`vecbridge.connect`)."""
    import vecbridge

    threads = options.pop("async_threads", None)
    loop = asyncio.get_running_loop()
    sync = await loop.run_in_executor(None, lambda: vecbridge.connect(url, **options))
    return AsyncClient(sync, threads=threads)  # type: ignore[arg-type]


async def open_collection(url: str | URL, *, dimension: int | None = None, metric: str = "cosine",
                          index: dict[str, Any] | None = None, embedding: Any = None,
                          **options: Any) -> AsyncCollection:
    """Open the collection named by the URL's ``collection`` parameter; closing it closes its client."""
    import vecbridge

    threads = options.pop("async_threads", None)
    loop = asyncio.get_running_loop()
    sync = await loop.run_in_executor(None, lambda: vecbridge.open_collection(
        url, dimension=dimension, metric=metric, index=index, embedding=embedding, **options))
    client = AsyncClient(sync._client, threads=threads)  # type: ignore[attr-defined]
    return await client._wrap(sync)  # type: ignore[arg-type]
