"""Milvus under concurrency, the public-API write fallback, and scans in small batches.

Every test runs on Milvus Lite (a fresh ``.db``) and on a real Milvus 2.3.5 server
(tests/engines.py, or ``VECBRIDGE_TEST_MILVUS_URL``).  Expected answers come from the
data written and from pymilvus's own reads (``count(*)`` counts rows, so it sees an id
stored twice, which vecbridge's reads would hide).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import engines
import numpy as np
import pytest

import vecbridge

pytest.importorskip("pymilvus")


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    given = os.environ.get("VECBRIDGE_TEST_MILVUS_URL")
    if given:
        yield given
        return
    with engines.milvus_server() as engine:
        yield engine.url


@pytest.fixture(params=["lite", "server"])
def url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "lite":
        return f"milvus:///{tmp_path}/milvus.db"
    return str(request.getfixturevalue("server_url"))


@pytest.fixture
def name() -> str:
    return "t" + uuid.uuid4().hex[:12]


def _native_rows(client: Any, name: str) -> int:
    """Rows stored, by pymilvus's own Strong count."""
    rows = client.native.query(name, filter="", output_fields=["count(*)"], consistency_level="Strong")
    return int(rows[0]["count(*)"])


def _native_get(client: Any, name: str, ids: list[str]) -> dict[str, dict[str, Any]]:
    expr = "id in [" + ", ".join(f'"{i}"' for i in ids) + "]"
    rows = client.native.query(name, filter=expr, output_fields=["id", "vector", "document", "metadata"],
                               consistency_level="Strong")
    return {r["id"]: r for r in rows}


def _race(n: int, *actions: Callable[[int], Any]) -> list[list[Any]]:
    """Run ``actions[t](i)`` for i in range(n) on one thread per action, step i started together.

    Returns, per action, the outcome of each step: ``None`` or the exception raised.
    """
    barrier = threading.Barrier(len(actions))
    outcomes: list[list[Any]] = [[] for _ in actions]

    def run(t: int) -> None:
        for i in range(n):
            barrier.wait()
            try:
                actions[t](i)
                outcomes[t].append(None)
            except vecbridge.VecbridgeError as exc:
                outcomes[t].append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(len(actions))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert all(len(o) == n for o in outcomes), "a racing thread did not finish"
    return outcomes


# -- 1. add's DuplicateIdError under concurrency ---------------------------------------------
@pytest.mark.parametrize("clients", [1, 2], ids=["two-threads-one-client", "two-clients"])
def test_concurrent_add_of_one_id_succeeds_once(url: str, name: str, clients: int) -> None:
    n = 60
    with vecbridge.connect(url) as first, vecbridge.connect(url) as second:
        first.create_collection(name, 4, "l2")
        colls = [first.get_collection(name), (second if clients == 2 else first).get_collection(name)]

        def adder(t: int) -> Callable[[int], None]:
            return lambda i: colls[t].add([f"id{i}"], np.full((1, 4), t + 1.0), [{"by": t}], [f"doc by {t}"])

        outcomes = _race(n, adder(0), adder(1))
        for i in range(n):
            results = [outcomes[0][i], outcomes[1][i]]
            assert sum(r is None for r in results) == 1, f"id{i}: both adds succeeded or both failed: {results}"
            loser = results[0] if results[1] is None else results[1]
            assert isinstance(loser, vecbridge.DuplicateIdError), loser
        assert _native_rows(first, name) == n
        stored = _native_get(first, name, [f"id{i}" for i in range(n)])
        for i in range(n):
            winner = 0 if outcomes[0][i] is None else 1
            row = stored[f"id{i}"]
            np.testing.assert_array_equal(np.asarray(row["vector"], dtype=np.float32), np.full(4, winner + 1.0))
            assert row["document"] == f"doc by {winner}"
        first.delete_collection(name)


def test_add_racing_upsert_never_stores_an_id_twice(url: str, name: str) -> None:
    # a Milvus server keeps two rows for an id inserted twice: add must not insert over an upsert
    n = 60
    with vecbridge.connect(url) as client:
        coll = client.create_collection(name, 4, "l2")
        outcomes = _race(n, lambda i: coll.add([f"id{i}"], np.full((1, 4), 1.0)),
                         lambda i: coll.upsert([f"id{i}"], np.full((1, 4), 2.0)))
        assert all(o is None or isinstance(o, vecbridge.DuplicateIdError) for o in outcomes[0])
        assert outcomes[1] == [None] * n
        assert _native_rows(client, name) == n
        assert coll.count() == n
        client.delete_collection(name)


def test_update_racing_delete_never_brings_a_record_back(url: str, name: str) -> None:
    n = 40
    with vecbridge.connect(url) as client:
        coll = client.create_collection(name, 4, "l2")
        ids = [f"id{i}" for i in range(n)]
        coll.add(ids, np.ones((n, 4)), [{"v": 0} for _ in ids])
        outcomes = _race(n, lambda i: coll.update([ids[i]], metadatas=[{"v": 1}]), lambda i: coll.delete([ids[i]]))
        assert all(o is None or isinstance(o, vecbridge.RecordNotFoundError) for o in outcomes[0])
        assert outcomes[1] == [None] * n
        # whichever came first, the delete came too: nothing may be left
        assert _native_rows(client, name) == 0
        client.delete_collection(name)


def test_lock_lets_upserts_overlap_but_not_an_add() -> None:
    from vecbridge.locks import SharedExclusiveLock

    lock, inside, events = SharedExclusiveLock(), threading.Barrier(2, timeout=10), []

    # two shared holders at once: both reach the barrier inside the lock
    def shared() -> None:
        with lock.shared():
            inside.wait()
    threads = [threading.Thread(target=shared) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert not inside.broken
    # an exclusive holder keeps a shared one out until it leaves; and may nest shared itself
    entered = threading.Event()

    def late_shared() -> None:
        with lock.shared():
            entered.set()

    with lock.exclusive():
        with lock.shared():
            events.append("nested")
        th = threading.Thread(target=late_shared)
        th.start()
        assert not entered.wait(0.3)
    assert entered.wait(10)
    th.join(10)
    assert events == ["nested"]


# -- 4. the public-API fallback of the write path -----------------------------------------------
def _records(n: int, dim: int, seed: int) -> tuple[list[str], np.ndarray, list[dict[str, Any]], list[str | None]]:
    rng = np.random.default_rng(seed)
    ids = [f"r{i}-é" for i in range(n)]
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    metas: list[dict[str, Any]] = [{"i": i, "f": i / 7, "b": i % 2 == 0, "s": f"s{i}", "tags": ["a", f"t{i}"],
                                    "a.b \"q\"": i} for i in range(n)]
    docs: list[str | None] = [None if i % 3 == 0 else f"document {i}" for i in range(n)]
    return ids, vectors, metas, docs


def _check_arrived(client: Any, name: str, ids: list[str], vectors: np.ndarray, metas: list[dict[str, Any]],
                   docs: list[str | None]) -> None:
    stored = _native_get(client, name, ids)
    assert sorted(stored) == sorted(ids)
    for i, id_ in enumerate(ids):
        np.testing.assert_array_equal(np.asarray(stored[id_]["vector"], dtype=np.float32), vectors[i])
    coll = client.get_collection(name)
    got = {r.id: r for r in coll.get(ids, include=["metadata", "document", "vector"])}
    for i, id_ in enumerate(ids):
        assert got[id_].metadata == metas[i] and [type(v) for v in got[id_].metadata.values()] == \
            [type(v) for v in metas[i].values()]
        assert got[id_].document == docs[i]
        np.testing.assert_array_equal(got[id_].vector, vectors[i])


@pytest.fixture
def fastpath() -> Iterator[Any]:
    """The fast-path module, its detection forgotten before and after the test."""
    from vecbridge.backends.milvus import fastpath as module

    module.reset()
    yield module
    module.reset()


def test_fast_path_is_used_with_the_pymilvus_tested(url: str, name: str, fastpath: Any) -> None:
    with vecbridge.connect(url) as client:
        assert fastpath.detect(client.native) == ""
        coll = client.create_collection(name, 8, "cosine")
        ids, vectors, metas, docs = _records(50, 8, 0)
        coll.add(ids, vectors, metas, docs)
        assert fastpath.fast_path_problem() == ""
        _check_arrived(client, name, ids, vectors, metas, docs)
        client.delete_collection(name)


def test_fallback_when_a_private_hook_is_missing(url: str, name: str, fastpath: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from pymilvus.client.grpc_handler import GrpcHandler

    monkeypatch.delattr(GrpcHandler, "_prepare_batch_upsert_request")  # as if a pymilvus release renamed it
    with vecbridge.connect(url) as client:
        coll = client.create_collection(name, 8, "l2")
        ids, vectors, metas, docs = _records(120, 8, 1)
        coll.add(ids[:60], vectors[:60], metas[:60], docs[:60])
        assert "_prepare_batch_upsert_request" in (fastpath.fast_path_problem() or "")
        coll.upsert(ids[60:], vectors[60:], metas[60:], docs[60:])
        coll.update(ids[:1], metadatas=[{"changed": True}])
        metas = [{"changed": True}] + metas[1:]
        assert coll.count() == 120  # the public path gives no timestamp: this read is Strong
        _check_arrived(client, name, ids, vectors, metas, docs)
        with pytest.raises(vecbridge.DuplicateIdError):
            coll.add(ids[:1], vectors[:1])
        client.delete_collection(name)


def test_fallback_when_the_fast_call_is_refused(url: str, name: str, fastpath: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from pymilvus.client.grpc_handler import GrpcHandler

    original = GrpcHandler.upsert

    def no_prebuilt(self: Any, collection_name: str, entities: Any, partition_name: Any = None,
                    timeout: Any = None, context: Any = None, **kwargs: Any) -> Any:
        if "upsert_param" in kwargs:  # as if a pymilvus release stopped taking prebuilt requests
            raise TypeError("upsert() got an unexpected keyword argument 'upsert_param'")
        return original(self, collection_name, entities, partition_name, timeout, context, **kwargs)

    monkeypatch.setattr(GrpcHandler, "upsert", no_prebuilt)
    with vecbridge.connect(url) as client:
        coll = client.create_collection(name, 8, "ip")
        ids, vectors, metas, docs = _records(80, 8, 2)
        coll.add(ids, vectors, metas, docs)
        assert "TypeError" in (fastpath.fast_path_problem() or "")
        _check_arrived(client, name, ids, vectors, metas, docs)
        assert _native_rows(client, name) == 80
        client.delete_collection(name)


# -- 3. scans in small batches --------------------------------------------------------------
def test_small_batch_scan_reads_large_native_pages(url: str, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    n, dim = 3000, 16
    with vecbridge.connect(url) as client:
        coll = client.create_collection(name, dim, "l2")
        ids, vectors, metas, docs = _records(n, dim, 3)
        coll.add(ids, vectors, metas, docs)
        calls = []
        real_query = client.native.query
        monkeypatch.setattr(client.native, "query", lambda *a, **k: calls.append(k) or real_query(*a, **k))
        batches = list(coll.scan(batch_size=7))
        # one native query per page, whatever the batch size (before: one per batch of 7, 429)
        assert len(calls) <= 3, len(calls)
        assert [len(b) for b in batches] == [7] * (n // 7) + [n % 7]
        seen = [r.id for b in batches for r in b]
        assert sorted(seen) == sorted(ids) and len(set(seen)) == n
        by_id = {r.id: r for b in batches for r in b}
        for i in range(0, n, 97):
            np.testing.assert_array_equal(by_id[ids[i]].vector, vectors[i])
            assert by_id[ids[i]].metadata == metas[i] and by_id[ids[i]].document == docs[i]
        client.delete_collection(name)


def test_scan_sees_every_record_once_while_written(url: str, name: str) -> None:
    # records added behind and ahead of the scan's position: the old ones exactly once
    n = 500
    with vecbridge.connect(url) as client:
        coll = client.create_collection(name, 4, "l2")
        ids = [f"k{i:04d}" for i in range(n)]
        coll.add(ids, np.ones((n, 4)))
        seen: list[str] = []
        for j, batch in enumerate(coll.scan(batch_size=50)):
            seen += [r.id for r in batch]
            if j == 0:
                coll.add([f"z{j}", "a0"], np.ones((2, 4)))
        assert len(seen) == len(set(seen))
        assert set(ids) <= set(seen)
        client.delete_collection(name)
