"""Run the conformance suite's sync tests through the async API (the suite's ``async`` mode).

:func:`connect` and :func:`open_collection` return objects with the sync
:class:`~vecbridge.Client` and :class:`~vecbridge.Collection` interfaces whose every call is
the matching coroutine of :mod:`vecbridge.aio`: the same tests, unchanged, check the async
path.  The plugin's ``vb_mode`` fixture chooses this module or :mod:`vecbridge` itself.

Every coroutine runs on one event loop in a thread of its own, shared by every view, so
that a test's threads (the concurrent ``add`` tests) meet on the same loop -- the async
client's native connections (psycopg's pool, ``AsyncQdrantClient``) belong to the loop that
opened them.  Handing a call to that thread costs a few tens of microseconds
(``benchmarks/async_queries.py --hop`` measures it); the suite makes a few thousand calls
per backend form, so the hop is well under a second of its run.

:data:`SYNC_ONLY` names the tests that keep the sync mode, with the reason.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import vecbridge.aio

__all__ = ["MODES", "SYNC_ONLY", "SyncClient", "SyncCollection", "connect", "modes_for", "open_collection", "run"]

MODES = ("sync", "async")

#: Tests whose subject exists in the sync API only: the async mode would run the same
#: thing again and say nothing new.
SYNC_ONLY = {
    "test_concurrent_add_two_processes": (
        "its subject is two other processes writing through the sync API; the test itself only "
        "creates the collection and reads the outcome (which every other test checks in async "
        "mode), and each run waits 8 s for the processes to start together"),
}


def modes_for(test_name: str, wanted: Sequence[str]) -> list[str]:
    """The modes (of ``wanted``) that the test named ``test_name`` runs in."""
    if test_name in SYNC_ONLY:
        return ["sync"] if "sync" in wanted else []
    return list(wanted)


class _Loop:
    """One event loop in a daemon thread, shared by every view."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def get(cls) -> asyncio.AbstractEventLoop:
        loop = cls._loop
        if loop is not None:
            return loop
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="vecbridge-test-loop", daemon=True).start()
                cls._loop = loop
            return cls._loop


def run(coro: Any) -> Any:
    """Run ``coro`` on the shared loop and return its result (or raise its exception)."""
    return asyncio.run_coroutine_threadsafe(coro, _Loop.get()).result()


class SyncCollection:
    """A sync view of an :class:`~vecbridge.aio.AsyncCollection`."""

    def __init__(self, acoll: vecbridge.aio.AsyncCollection, client: SyncClient | None = None):
        self._a = acoll
        self._view_client = client

    name = property(lambda self: self._a.name)
    dimension = property(lambda self: self._a.dimension)
    metric = property(lambda self: self._a.metric)
    index = property(lambda self: self._a.index)
    config = property(lambda self: self._a.config)
    capabilities = property(lambda self: self._a.capabilities)
    backend = property(lambda self: self._a.backend)

    @property
    def _client(self) -> SyncClient:
        """The view of the async client (a test closes it to reopen the database)."""
        if self._view_client is None:
            self._view_client = SyncClient(self._a._client)
        return self._view_client

    def add(self, ids: Any, vectors: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        run(self._a.add(ids, vectors, metadatas, documents))

    def upsert(self, ids: Any, vectors: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        run(self._a.upsert(ids, vectors, metadatas, documents))

    def update(self, ids: Any, vectors: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        run(self._a.update(ids, vectors, metadatas, documents))

    def get(self, ids: Any = None, where: Any = None, limit: Any = None, offset: Any = None,
            include: Any = None) -> Any:
        return run(self._a.get(ids, where, limit, offset, include))

    def query(self, vectors: Any = None, k: Any = 10, where: Any = None, include: Any = None, *,
              text: Any = None) -> Any:
        return run(self._a.query(vectors, k, where, include, text=text))

    def delete(self, ids: Any = None, where: Any = None) -> None:
        run(self._a.delete(ids, where))

    def count(self, where: Any = None) -> int:
        return run(self._a.count(where))  # type: ignore[no-any-return]

    def peek(self, n: int = 10) -> Any:
        return run(self._a.peek(n))

    def partitions(self, n: int) -> Any:
        return run(self._a.partitions(n))

    def scan(self, batch_size: Any = 1000, include: Any = None, *, partition: Any = None) -> Iterator[Any]:
        agen = self._a.scan(batch_size, include, partition=partition)  # arguments checked here, as in sync

        def gen() -> Iterator[Any]:
            try:
                while True:
                    try:
                        yield run(agen.__anext__())
                    except StopAsyncIteration:
                        return
            finally:
                aclose = getattr(agen, "aclose", None)  # an abandoned scan frees its cursor, as in sync
                if aclose is not None:
                    run(aclose())

        return gen()

    def __len__(self) -> int:
        return self.count()

    def close(self) -> None:
        run(self._a.close())

    def __enter__(self) -> SyncCollection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<sync view of {self._a!r}>"


class SyncClient:
    """A sync view of an :class:`~vecbridge.aio.AsyncClient`."""

    def __init__(self, aclient: vecbridge.aio.AsyncClient):
        self._a = aclient

    url = property(lambda self: self._a.url)
    capabilities = property(lambda self: self._a.capabilities)

    def _view(self, acoll: vecbridge.aio.AsyncCollection) -> SyncCollection:
        return SyncCollection(acoll, self)

    def create_collection(self, name: str, dimension: int | None = None, metric: str = "cosine",
                          index: Any = None, *, embedding: Any = None) -> SyncCollection:
        return self._view(run(self._a.create_collection(name, dimension, metric, index, embedding=embedding)))

    def get_collection(self, name: str, *, embedding: Any = None) -> SyncCollection:
        return self._view(run(self._a.get_collection(name, embedding=embedding)))

    def get_or_create_collection(self, name: str, dimension: int | None = None, metric: str = "cosine",
                                 index: Any = None, *, embedding: Any = None) -> SyncCollection:
        return self._view(run(self._a.get_or_create_collection(name, dimension, metric, index,
                                                                embedding=embedding)))

    def list_collections(self) -> list[str]:
        return run(self._a.list_collections())  # type: ignore[no-any-return]

    def delete_collection(self, name: str) -> None:
        run(self._a.delete_collection(name))

    def close(self) -> None:
        run(self._a.close())

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<sync view of {self._a!r}>"


def connect(url: Any, **options: Any) -> SyncClient:
    """:func:`vecbridge.connect` through :func:`vecbridge.aio.connect`."""
    return SyncClient(run(vecbridge.aio.connect(url, **options)))


def open_collection(url: Any, **options: Any) -> SyncCollection:
    """:func:`vecbridge.open_collection` through :func:`vecbridge.aio.open_collection`."""
    acoll = run(vecbridge.aio.open_collection(url, **options))
    return SyncCollection(acoll)
