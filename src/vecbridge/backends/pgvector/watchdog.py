"""Stops an embedded PostgreSQL once no process uses its folder, even if every user was killed.

Who uses a folder is told by one lock file in it, :data:`USERS_LOCK`: every process
using the server holds a shared ``flock`` on it for as long as it does, and the kernel
drops that lock when the process ends, however it ends (a SIGKILL included).  So "no
user is left" is exactly "an exclusive lock can be taken", with no pid list to go stale.

The watchdog is a small daemon, one per running server, started by the client that
found none (it holds :data:`WATCHDOG_LOCK` for its life, which is how clients tell
that it runs).  Every :data:`POLL` seconds it tries the exclusive lock; once it gets it,
it stops the server (``pg_ctl stop -m fast``) and exits.  A client arriving meanwhile
asks for its shared lock and so waits until the stop is over, then starts the server
(and a watchdog) again.  The watchdog gives up its own lock before the users' lock, so
that such a client never sees a watchdog that is about to leave.

This file runs as a script (``python -I watchdog.py FOLDER BIN_DIR USER``) and so
imports nothing but the standard library: it needs no ``PYTHONPATH`` of the client's.
"""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["POLL", "USERS_LOCK", "WATCHDOG_LOCK", "ensure_watchdog", "open_lock", "stop_server"]

USERS_LOCK = ".vecbridge-users.lock"
WATCHDOG_LOCK = ".vecbridge-watchdog.lock"
WATCHDOG_LOG = ".vecbridge-watchdog.log"
#: Seconds between two looks for a user.
POLL = 1.0


def open_lock(path: Path) -> int:
    """A descriptor of the lock file ``path`` (made if missing), not inherited by programs run."""
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)


def _postmaster_pid(folder: Path) -> int | None:
    """The pid of the postmaster serving ``folder``, or ``None`` if none does."""
    try:
        pid = int((folder / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # a stale file left by a crash
    except PermissionError:
        pass
    try:  # a stale file's pid may since belong to another program: never signal that one
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid  # no /proc here
    return pid if str(folder).encode() in cmdline else None


def stop_server(folder: Path, bin_dir: Path, user: str | None) -> None:
    """Stop the server of ``folder`` if one runs (a fast shutdown: sessions are ended)."""
    pid = _postmaster_pid(folder)
    if pid is None:
        return
    cmd = [str(bin_dir / "pg_ctl"), "stop", "-D", str(folder), "-m", "fast", "-w", "-t", "60"]
    try:  # pg_ctl may not run as root: it runs as the user the server runs as
        subprocess.run(cmd, user=user, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=90, check=True)
        return
    except (subprocess.SubprocessError, OSError):
        pass
    # pg_ctl failed (it was removed, say): SIGINT is the postmaster's own fast shutdown.
    for sig, wait in ((signal.SIGINT, 30.0), (signal.SIGQUIT, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if _postmaster_pid(folder) != pid:
                return
            time.sleep(0.1)


def ensure_watchdog(folder: Path, bin_dir: Path, user: str | None) -> None:
    """Start the folder's watchdog unless one runs (the caller holds a user's lock)."""
    fd = open_lock(folder / WATCHDOG_LOCK)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # a watchdog holds it
    finally:
        os.close(fd)  # (which releases the lock just taken, for the watchdog to take)
    with open(folder / WATCHDOG_LOG, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-I", os.path.abspath(__file__), str(folder), str(bin_dir),
                                 user or ""], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                start_new_session=True, close_fds=True, cwd="/")
    # It forks and its first process exits once the daemon holds WATCHDOG_LOCK.
    if proc.wait(60) != 0:
        raise RuntimeError(f"the watchdog of {folder} did not start (exit status {proc.returncode}); "
                           f"see {folder / WATCHDOG_LOG}")


def _watch(folder: Path, bin_dir: Path, user: str | None, live: int, users: int) -> None:
    inode = os.fstat(users).st_ino
    while True:
        time.sleep(POLL)
        try:
            if os.stat(folder / USERS_LOCK).st_ino != inode:
                return  # the folder was deleted or made anew: its users and server are not ours
        except FileNotFoundError:
            return
        try:
            fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a process still uses the server
        try:
            stop_server(folder, bin_dir, user)
        finally:
            os.close(live)  # first: a client that gets the users' lock next must see no watchdog
            os.close(users)
        return


def main(argv: list[str]) -> int:
    folder, bin_dir, user = Path(argv[1]), Path(argv[2]), argv[3] or None
    live = open_lock(folder / WATCHDOG_LOCK)
    try:
        fcntl.flock(live, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another watchdog got there first
    users = open_lock(folder / USERS_LOCK)
    if os.fork():
        os._exit(0)  # the starter waits for this process only; the daemon child keeps both locks
    _watch(folder, bin_dir, user, live, users)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
