"""FAISS's error table: SQLite's "database is locked" names the folder and the other process;
every other native failure stays a plain BackendError."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import vecbridge
from vecbridge.backends.faiss import store as faiss_store

pytest.importorskip("faiss")

HOLDER = textwrap.dedent("""
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")  # SQLite's write lock, as any other program may take it
    conn.execute("INSERT INTO info (key, value) VALUES ('held', '1')")
    print("held", flush=True)
    sys.stdin.readline()
    conn.execute("ROLLBACK")
""")


def test_sqlite_locked_by_another_process_is_backend_locked(tmp_path, monkeypatch):
    monkeypatch.setattr(faiss_store, "BUSY_TIMEOUT", 0.3)  # SQLite's wait, not the outcome
    url = f"faiss:///{tmp_path}/f"
    with vecbridge.connect(url) as client:
        coll = client.create_collection("held", 2, "l2", index={"type": "flat"})
        coll.add(["a"], [[1.0, 0.0]])
        folder = tmp_path / "f" / "held"
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder / "records.sqlite")],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
            with pytest.raises(vecbridge.BackendLockedError) as err:
                coll.add(["b"], [[0.0, 1.0]])
            msg = str(err.value)
            assert "another process" in msg and str(folder) in msg
            assert isinstance(err.value.__cause__, sqlite3.OperationalError)
            assert coll.count() == 1  # readers are not blocked, and nothing was written
        finally:
            proc.communicate("\n", timeout=30)
        coll.add(["b"], [[0.0, 1.0]])  # the lock is gone: writes work again
        assert sorted(r.id for r in coll.get(["a", "b"])) == ["a", "b"]


def test_a_damaged_records_file_is_a_backend_error_not_locked_or_unavailable(tmp_path):
    url = f"faiss:///{tmp_path}/f"
    with vecbridge.connect(url) as client:
        client.create_collection("broken", 2, "l2")
    db = tmp_path / "f" / "broken" / "records.sqlite"
    for extra in db.parent.glob("records.sqlite-*"):  # WAL files of the closed connection
        extra.unlink()
    db.write_bytes(b"this is not an SQLite database" * 100)
    with vecbridge.connect(url) as client, pytest.raises(vecbridge.BackendError) as err:
        client.get_collection("broken")
    assert not isinstance(err.value, (vecbridge.BackendLockedError, vecbridge.BackendUnavailableError))
    assert isinstance(err.value.__cause__, sqlite3.DatabaseError)
    assert "faiss" in str(err.value)


def test_a_faiss_url_has_no_server_form():
    # FAISS runs in the process: there is no connection that could be refused
    with pytest.raises(vecbridge.InvalidURLError):
        vecbridge.connect("faiss://localhost:1")


def test_reads_and_close_map_native_errors_too(tmp_path):
    client = vecbridge.connect(f"faiss:///{tmp_path}/f")
    coll = client.create_collection("reads", 2, "l2", index={"type": "flat"})
    coll.add(["a"], np.ones((1, 2)))
    coll._store.conn.close()  # the native connection now fails under every call
    for read in (coll.count, lambda: coll.get(["a"]), lambda: coll.get(limit=1),
                 lambda: next(coll.scan(10)), lambda: coll.query([1.0, 0.0], k=1), lambda: coll.config):
        with pytest.raises(vecbridge.BackendError) as err:
            read()
        assert isinstance(err.value.__cause__, sqlite3.ProgrammingError)
    with pytest.raises(vecbridge.BackendError) as err:  # saving the index on close
        client.close()
    assert isinstance(err.value.__cause__, sqlite3.ProgrammingError)
