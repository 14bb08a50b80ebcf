"""The write lock of a collection folder: ``flock`` on ``<folder>/lock``.

SQLite serialises its own transactions, but a write here is a transaction *and* an
update of the in-memory FAISS index *and*, on close, the index file saved under the
generation it reflects.  Two writers interleaving those steps (processes, or two
clients in one process) would each mirror only their own changes and save an index that
misses the other's records.  So every write, every index save and ``delete_collection``
hold this lock.  ``flock`` (not ``lockf``): its locks belong to an open file, so two
clients of one process exclude each other too.  A new descriptor is opened per hold:
after a ``delete_collection`` the next holder locks the new folder's file, never the
unlinked one's (the caller checks the folder still holds its records afterwards).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from ...errors import BackendLockedError

LOCK_NAME = "lock"
#: How long a writer waits for another writer before giving up.
LOCK_TIMEOUT = 60.0


@contextlib.contextmanager
def folder_lock(folder: Path, timeout: float | None = None) -> Iterator[None]:
    """Hold the exclusive write lock of ``folder``, waiting up to ``timeout`` seconds."""
    limit = LOCK_TIMEOUT if timeout is None else timeout
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + limit
        pause = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if time.monotonic() >= deadline:
                    raise BackendLockedError(
                        f"faiss: {folder} is being written by another process (or another client in this "
                        f"process) for more than {limit:g} s; retry when that write has finished") from exc
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
