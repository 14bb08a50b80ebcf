"""The FAISS backend's error table (see :func:`vecbridge.base.native_errors`).

Why: the records live in SQLite, and the one SQLite failure that is not "the database
failed" is ``SQLITE_BUSY`` ("database is locked"): another process held the file's write
lock for longer than the connection's busy timeout (:data:`.store.BUSY_TIMEOUT`).  Writers
of this backend take the folder's ``flock`` first (:mod:`.lock`), so that is a foreign
writer, or a process of this backend stuck inside a transaction: a
:class:`~vecbridge.errors.BackendLockedError` whose message names the folder.  Python 3.11
gives the SQLite result code (``sqlite_errorcode``); on 3.10 only the message exists, and
the match is SQLite's own text for ``SQLITE_BUSY`` (``sqlite3ErrStr`` in SQLite's
``main.c``, "database is locked").  Every other native failure stays a
:class:`~vecbridge.errors.BackendError`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ...base import ErrorRule, native_errors
from ...errors import BackendLockedError

__all__ = ["ERRORS", "mapped_errors"]

_SQLITE_BUSY = getattr(sqlite3, "SQLITE_BUSY", 5)


def _sqlite_operational(exc: BaseException) -> Any:
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:  # Python 3.10: the message only (see the module docstring)
        busy = "database is locked" in str(exc)
    else:
        busy = code & 0xFF == _SQLITE_BUSY  # the primary code: SQLITE_BUSY_SNAPSHOT etc. too
    return BackendLockedError if busy else None


ERRORS: tuple[ErrorRule, ...] = (
    (sqlite3.OperationalError, _sqlite_operational),
)


@contextlib.contextmanager
def mapped_errors(action: str, folder: Path | None, backend: str = "faiss",
                  table: Sequence[ErrorRule] = ERRORS) -> Iterator[None]:
    """:func:`native_errors` with the client's table (:data:`ERRORS` unless a subclass has its
    own); a locked SQLite file is reported with the folder it is in and what to do."""
    try:
        with native_errors(backend, action, table):
            yield
    except BackendLockedError as exc:
        cause = exc.__cause__
        if not isinstance(cause, sqlite3.Error):
            raise  # the folder lock's own error (lock.py) says all of this already
        from .store import BUSY_TIMEOUT

        raise BackendLockedError(
            f"{backend}: {action} failed: the records of {folder} are locked by another process (SQLite waited "
            f"{BUSY_TIMEOUT:g} s: {cause}); retry when that process has finished writing, or close it") from cause
