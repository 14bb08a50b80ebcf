"""In-process locks that make the contract's check-then-write calls safe under concurrency.

``add`` checks that its ids are new and then writes; ``update`` reads, merges and writes.
No backend has an atomic insert-if-absent that vecbridge can use everywhere, so within
one process every collection has one :class:`SharedExclusiveLock`, keyed by the
database's location (``BaseClient.location``) and the collection's name, shared by every
client of that database in the process:

- ``add`` and ``update`` hold it *exclusively* (the check and the write are one step for
  every other writer of the process);
- ``upsert`` and ``delete`` hold it *shared*: they run alongside each other (a parallel
  migration's upserts stay parallel), never inside an ``add``'s or ``update``'s window.

A backend whose own writes read before they write (Chroma's ``upsert`` merges metadata)
declares those hooks exclusive too (``BaseCollection.exclusive_writes``).  Across
processes there is no such lock; ``Capabilities.atomic_add`` says where the database
itself keeps ``DuplicateIdError`` true.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Hashable, Iterator
from typing import Any

__all__ = ["AsyncSharedExclusiveLock", "SharedExclusiveLock", "collection_lock"]


class SharedExclusiveLock:
    """Many shared holders or one exclusive holder; a waiting exclusive holder goes first.

    The thread that holds it exclusively may also take it shared (``update`` writes
    through ``upsert``), and may take it exclusively again.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._shared = 0
        self._owner: int | None = None
        self._depth = 0
        self._waiting = 0  # exclusive requests waiting: new shared holders wait behind them

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:  # nested inside this thread's exclusive hold
                self._depth += 1
                mine = True
            else:
                while self._owner is not None or self._waiting:
                    self._cond.wait()
                self._shared += 1
                mine = False
        try:
            yield
        finally:
            with self._cond:
                if mine:
                    self._depth -= 1
                else:
                    self._shared -= 1
                    if not self._shared:
                        self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
            else:
                self._waiting += 1
                try:
                    while self._owner is not None or self._shared:
                        self._cond.wait()
                finally:
                    self._waiting -= 1
                self._owner, self._depth = me, 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if not self._depth:
                    self._owner = None
                    self._cond.notify_all()


_registry: dict[Hashable, SharedExclusiveLock] = {}
_registry_lock = threading.Lock()


def collection_lock(location: Hashable, collection: str) -> SharedExclusiveLock:
    """The one lock of this process for ``collection`` of the database at ``location``.

    Entries are never dropped: a process touches few collections, and a lock that outlived
    a dropped collection is simply reused if the name comes back.
    """
    key = (location, collection)
    with _registry_lock:
        lock = _registry.get(key)
        if lock is None:
            lock = _registry[key] = SharedExclusiveLock()
        return lock


class AsyncSharedExclusiveLock:
    """The same rule for the coroutines of one event loop (the async API's native writes):
    many shared holders or one exclusive one, a waiting exclusive holder first.  The task
    that holds it exclusively may take it again, shared or exclusive (a default flow's nested
    writes: ``update`` -> ``_upsert``)."""

    def __init__(self) -> None:
        self._cond = asyncio.Condition()
        self._shared = 0
        self._owner: asyncio.Task[Any] | None = None
        self._depth = 0
        self._waiting = 0

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        me = asyncio.current_task()
        async with self._cond:
            if self._owner is not None and self._owner is me:
                mine = True
            else:
                await self._cond.wait_for(lambda: self._owner is None and not self._waiting)
                self._shared += 1
                mine = False
        try:
            yield
        finally:
            if not mine:
                async with self._cond:
                    self._shared -= 1
                    self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        me = asyncio.current_task()
        async with self._cond:
            if self._owner is not None and self._owner is me:
                self._depth += 1
            else:
                self._waiting += 1
                try:
                    await self._cond.wait_for(lambda: self._owner is None and not self._shared)
                finally:
                    self._waiting -= 1
                self._owner, self._depth = me, 1
        try:
            yield
        finally:
            async with self._cond:
                self._depth -= 1
                if not self._depth:
                    self._owner = None
                    self._cond.notify_all()
