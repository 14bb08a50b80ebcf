"""Per-collection write locks and read timestamps shared by every Milvus client of this process.

Why: Milvus has no insert-if-absent and no unique primary key.  ``add`` checks for the
ids and then writes, and a Milvus 2.3 server keeps *both* rows when an id is inserted
twice; Milvus Lite keeps the newer.  Two threads (or two clients of one process) adding
the same id would both succeed, one silently replacing the other.  So, within one
process, every write to a collection takes that collection's lock, keyed by the
database's location (the server address and database, or the Milvus Lite file) and the
collection name, whichever client object is used:

- ``add`` (check, then write) and ``update`` (read, merge, write) hold it *exclusively*;
- ``upsert`` and ``delete`` hold it *shared*: they may run alongside each other (a
  parallel migration's upserts stay parallel) but never inside an ``add``'s or
  ``update``'s window, where a record written between the check and the write would be
  duplicated (server) or replaced (Lite), or a deleted record brought back by ``update``.

The read timestamps of session consistency (see :mod:`.client`) are kept here too, per
collection of the process: ``add``'s check through one client must see what another
client of the process wrote just before, or the lock would serialise two adds that
both find nothing.

Across processes there is no such lock: see the backend's module docstring.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

__all__ = ["READ_TIMESTAMPS", "READ_TIMESTAMPS_LOCK", "WRITE_COUNTS", "SharedExclusiveLock", "collection_lock"]

#: (location, database, collection) -> the timestamp the next read must wait for, or
#: ``None``: read Strong (see MilvusClient.read_consistency).
READ_TIMESTAMPS: dict[tuple[str, str, str], int | None] = {}
#: (location, database, collection) -> writes so far: a Strong read that a write overlapped
#: does not make later reads cheap.
WRITE_COUNTS: dict[tuple[str, str, str], int] = {}
READ_TIMESTAMPS_LOCK = threading.Lock()


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


_registry: dict[tuple[str, str, str], SharedExclusiveLock] = {}
_registry_lock = threading.Lock()


def collection_lock(location: str, database: str, collection: str) -> SharedExclusiveLock:
    """The one lock of this process for ``collection`` of ``database`` at ``location``.

    ``location`` is the resolved Milvus Lite path or the server's ``scheme://host:port``.
    Entries are never dropped: a process touches few collections, and a lock that
    outlived a dropped collection is simply reused if the name comes back.
    """
    key = (location, database, collection)
    with _registry_lock:
        lock = _registry.get(key)
        if lock is None:
            lock = _registry[key] = SharedExclusiveLock()
        return lock
