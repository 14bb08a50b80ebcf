"""The cross-process lock that keeps a Chroma folder single-writer.

Within one process
    Chroma has no atomic insert-if-absent (its ``add`` silently keeps an existing record),
    and its ``upsert`` merges metadata into an existing record, so ``add`` (check, then
    write), ``upsert`` (read the old keys, then write), ``update`` (read, merge, write) and
    ``delete`` run under the core's in-process write lock of the collection
    (:mod:`vecbridge.locks`, keyed by ``ChromaClient.location`` and the collection's name,
    shared by every vecbridge client of that database in the process), all four
    exclusively (``ChromaCollection.exclusive_writes``).  Nothing here adds to that.

Across processes on one folder
    chromadb's embedded engine keeps each collection's HNSW index in the memory of the
    process that opened it, filled once from the folder on the first read; writes by
    another process reach the shared SQLite metadata but never that index (checked with
    chromadb 1.5.9).  A reader process then answers from a stale index: it returns deleted
    records, misses new ones, and fails with "Error finding id" when its filter or its
    ``include=["vector"]`` names a record the other process added.  No retry can cure
    that, so vecbridge keeps a folder to one writing process: each process holding a
    folder open holds a shared ``flock`` on the folder itself for as long as one of its
    vecbridge clients is open, and turns it exclusive before its first write.  A process
    that cannot get its lock raises :class:`~vecbridge.errors.BackendLockedError`.
    Readers share a folder freely.  (Processes that use chromadb directly take no such
    lock; on a system without ``fcntl`` no lock is taken.)

Across processes on one server
    nothing here can serialise two processes adding the same id to a Chroma server at the
    same moment: both checks may pass, and Chroma keeps the first record and tells the
    second writer nothing.
"""

from __future__ import annotations

import os
import threading

from ...errors import BackendLockedError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, no cross-process guard
    fcntl = None  # type: ignore[assignment]

__all__ = ["FolderLock", "close_folder", "open_folder"]

_registry_lock = threading.Lock()
_folders: dict[str, FolderLock] = {}


_ADVICE = ("chromadb's embedded engine does not see another process's writes (each process keeps its own "
           "copy of the index), so vecbridge lets one process write a folder while no other has it open; "
           "close the other process's client, or serve the folder with a Chroma server "
           "(chroma run --path {path}) and connect every process to chroma://host:port")


class FolderLock:
    """One process's ``flock`` on a Chroma folder: shared while open, exclusive once written."""

    def __init__(self, path: str):
        self.path = path
        self.refs = 0
        self.exclusive = False
        self._fd: int | None = None
        self._mutex = threading.Lock()

    def _flock(self, mode: int) -> bool:
        assert self._fd is not None
        try:
            fcntl.flock(self._fd, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def open(self) -> None:
        if fcntl is None:
            return
        os.makedirs(self.path, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDONLY)
        if not self._flock(fcntl.LOCK_SH):
            os.close(self._fd)
            self._fd = None
            raise BackendLockedError(f"chroma: the folder {self.path} is being written by another process; "
                                     + _ADVICE.format(path=self.path))

    def for_writing(self) -> None:
        """Turn the lock exclusive (once); raise if another process has the folder open."""
        if self._fd is None or self.exclusive:
            return
        with self._mutex:
            if self.exclusive:
                return
            if not self._flock(fcntl.LOCK_EX):
                # Linux drops the shared lock when a conversion fails: take it back (nobody
                # can have taken it exclusive meanwhile, the other holder blocks that)
                self._flock(fcntl.LOCK_SH)
                raise BackendLockedError(f"chroma: cannot write the folder {self.path}: another process has it "
                                         "open; " + _ADVICE.format(path=self.path))
            self.exclusive = True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None


def open_folder(path: str) -> FolderLock:
    """This process's lock of the folder ``path``, taken on its first opening (see the module docstring)."""
    key = os.path.realpath(path)
    with _registry_lock:
        lock = _folders.get(key)
        if lock is None:
            lock = FolderLock(key)
            lock.open()
            _folders[key] = lock
        lock.refs += 1
        return lock


def close_folder(lock: FolderLock) -> None:
    """Let go of one opening; the last one releases the flock."""
    with _registry_lock:
        lock.refs -= 1
        if lock.refs <= 0:
            _folders.pop(lock.path, None)
            lock.close()
