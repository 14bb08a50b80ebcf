"""Qdrant local folders: who may open one, and what the others are told.

qdrant-client's local mode takes an exclusive lock on ``<folder>/.lock``.  A second
process (or a native client of this process) must get ``BackendLockedError`` naming the
folder and saying what to do; vecbridge clients of one process share the folder; a
failure that is not the lock must not be reported as one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import vecbridge

pytest.importorskip("qdrant_client")

HOLDER = textwrap.dedent("""
    import sys, vecbridge
    client = vecbridge.connect(sys.argv[1])
    client.get_or_create_collection("held", 4, "l2")
    print("ready", flush=True)
    sys.stdin.readline()  # hold the folder until the test says so
    client.close()
""")


def _url(path: os.PathLike[str] | str) -> str:
    return f"qdrant:///{os.path.abspath(path)}"  # an absolute path: four slashes


def test_second_process_gets_backend_locked_error(tmp_path):
    folder = tmp_path / "q"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, _url(folder)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(vecbridge.BackendLockedError) as info:
            vecbridge.connect(_url(folder))
        msg = str(info.value)
        assert "another process" in msg
        assert os.path.abspath(folder) in msg
        assert "server" in msg  # what to do for concurrent access
        assert isinstance(info.value.__cause__, RuntimeError)  # the native error is kept
    finally:
        holder.communicate("go\n", timeout=60)
    assert holder.returncode == 0
    # once the other process has let go, the folder opens and holds what it wrote
    with vecbridge.connect(_url(folder)) as client:
        assert client.list_collections() == ["held"]


def test_native_client_of_this_process_holds_the_folder(tmp_path):
    from qdrant_client import QdrantClient as NativeClient

    folder = tmp_path / "q"
    native = NativeClient(path=str(folder))
    try:
        with pytest.raises(vecbridge.BackendLockedError, match="another process") as info:
            vecbridge.connect(_url(folder))
        assert os.path.abspath(folder) in str(info.value)
    finally:
        native.close()
    with vecbridge.connect(_url(folder)) as client:
        assert client.list_collections() == []


def test_a_failure_that_is_not_the_lock_is_not_reported_as_one(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(vecbridge.BackendError) as info:
        vecbridge.connect(_url(not_a_folder))
    assert not isinstance(info.value, vecbridge.BackendLockedError)
    assert info.value.__cause__ is not None


def test_two_clients_of_one_process_share_the_folder(tmp_path, monkeypatch):
    from qdrant_client import QdrantClient as NativeClient

    monkeypatch.chdir(tmp_path)
    first = vecbridge.connect("qdrant:///q")  # relative to the working directory
    second = vecbridge.connect(_url(tmp_path / "q"))  # the same folder, spelled absolute
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(10, 4)).astype(np.float32)
    a = first.create_collection("shared", 4, "l2")
    a.add([f"r{i}" for i in range(10)], vectors, [{"i": i} for i in range(10)])
    b = second.get_collection("shared")
    got = {r.id: r for r in b.get([f"r{i}" for i in range(10)], include=["vector", "metadata"])}
    assert [got[f"r{i}"].metadata for i in range(10)] == [{"i": i} for i in range(10)]
    np.testing.assert_array_equal(np.stack([got[f"r{i}"].vector for i in range(10)]), vectors)

    first.close()
    # a collection of the closed client says so, even though the folder is still open for `second`
    with pytest.raises(vecbridge.BackendError, match="closed"):
        a.count()
    assert b.count() == 10
    second.close()
    # the last client closed the native one: the lock is free for anyone
    native = NativeClient(path=str(tmp_path / "q"))
    try:
        assert native.count("shared").count == 10
    finally:
        native.close()


def test_collection_of_a_closed_memory_client_says_closed():
    client = vecbridge.connect("qdrant://")
    coll = client.create_collection("gone", 4, "l2")
    client.close()
    with pytest.raises(vecbridge.BackendError, match=r"closed.*vecbridge\.connect"):
        coll.add(["a"], [[1.0, 2.0, 3.0, 4.0]])
