"""Milvus failures the user can act on: a Milvus Lite database held by another process
(BackendLockedError, not "Open local milvus failed"), a .db that is not a Milvus Lite
folder, and a server that cannot be reached (BackendUnavailableError: a retry can cure it)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import engines
import numpy as np
import pytest

import vecbridge

pytest.importorskip("milvus_lite")

HOLDER = textwrap.dedent("""
    import sys, vecbridge
    with vecbridge.connect(sys.argv[1]) as client:
        client.create_collection("held", 4, "l2").add(["a"], [[1, 2, 3, 4]])
        print("ready", flush=True)
        sys.stdin.read()  # hold the database until the test closes stdin
""")


def test_second_process_gets_backend_locked_error(tmp_path: Any) -> None:
    path = tmp_path / "data" / "milvus.db"
    url = f"milvus:///{path}"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready", holder.stderr.read()
        with pytest.raises(vecbridge.BackendLockedError) as info:
            vecbridge.connect(url)
        msg = str(info.value)
        assert "another process" in msg and str(path) in msg
        assert "milvus-lite server --data-dir" in msg and "milvus://" in msg
        assert isinstance(info.value, vecbridge.BackendError)  # still a BackendError for those who catch that
        assert info.value.__cause__ is not None
    finally:
        holder.communicate(input="", timeout=120)
    assert holder.returncode == 0
    # once the other process has gone, the database opens, with its data
    with vecbridge.connect(url) as client:
        coll = client.get_collection("held")
        assert [r.id for r in coll.get(["a"], include=["vector"])] == ["a"]
        np.testing.assert_array_equal(coll.get(["a"], include=["vector"])[0].vector, [1, 2, 3, 4])


def test_a_failure_that_is_not_a_lock_stays_a_backend_error(tmp_path: Any) -> None:
    # a .db path that is a plain file (not a Milvus Lite folder): not mistaken for a lock
    path = tmp_path / "plain.db"
    path.write_bytes(b"not a database")
    with pytest.raises(vecbridge.BackendError) as info:
        vecbridge.connect(f"milvus:///{path}")
    assert not isinstance(info.value, vecbridge.BackendLockedError)
    assert str(path) in str(info.value) and "not a Milvus Lite database folder" in str(info.value)


def test_unreachable_server_is_backend_unavailable() -> None:
    port = engines.free_port()  # nothing listens there
    with pytest.raises(vecbridge.BackendUnavailableError) as info:
        vecbridge.connect(f"milvus://127.0.0.1:{port}?timeout=3")
    assert f"127.0.0.1:{port}" in str(info.value)
    assert info.value.__cause__ is not None
