"""Chroma under concurrency, and values Chroma changes on the way (issue 18).

* Two threads, or two clients of one database in one process, adding the same ids at
  once: exactly one ``add`` per id succeeds, the other raises ``DuplicateIdError``, and
  the stored record (read with chromadb's own client) is the winner's.  The same for
  update against delete (a deleted record must stay deleted) and upsert against upsert
  (one whole record wins, never a merge of both).
* ``-0.0`` comes back as ``-0.0`` through get, query and scan; subclasses of float and
  int (``numpy.float64``, ``IntEnum``) keep their exact value and their filters.
* An int filter operand beyond int64 is refused rather than saturated.

Every form: embedded folder, in memory, and a real ``chroma run`` server.
"""

from __future__ import annotations

import contextlib
import enum
import math
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import vecbridge
from vecbridge.errors import DuplicateIdError, RecordNotFoundError, UnsupportedFilterError
from vecbridge.filters import evaluate

chromadb = pytest.importorskip("chromadb")

import engines  # noqa: E402  (tests/conftest.py puts tests/ on the path)

FORMS = ["embedded", "memory", pytest.param("server", marks=pytest.mark.server)]
N_IDS = 60
DIM = 4


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with engines.chroma_server() as engine:
        yield engine.url


@pytest.fixture(params=FORMS)
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A URL that two clients can open and share: a folder, a named in-memory database, a server."""
    if request.param == "embedded":
        yield f"chroma:///{tmp_path}/chroma"
    elif request.param == "memory":
        # a named database is shared by the clients of this process (a plain chroma:// is private)
        name = f"t{uuid.uuid4().hex}"
        settings = chromadb.config.Settings(anonymized_telemetry=False, is_persistent=False)
        admin = chromadb.AdminClient(settings)
        admin.create_database(name)
        yield f"chroma://?database={name}"
    else:
        yield request.getfixturevalue("server")


def _collection_name() -> str:
    return f"c{uuid.uuid4().hex[:12]}"


def _race(workers: list[Callable[[], None]]) -> None:
    """Start every worker at once (a barrier), join them, re-raise the first unexpected error."""
    barrier = threading.Barrier(len(workers))
    errors: list[BaseException] = []

    def run(work: Callable[[], None]) -> None:
        barrier.wait()
        try:
            work()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    if errors:
        raise errors[0]


def _vector(thread: int, i: int) -> list[float]:
    return [float(thread + 1), float(i + 1), 1.0, 0.5]


@contextlib.contextmanager
def _two_collections(url: str, two_clients: bool) -> Iterator[tuple[Any, Any, Any]]:
    """(collection of thread 0, collection of thread 1, chromadb's own collection)."""
    name = _collection_name()
    with contextlib.ExitStack() as stack:
        first = stack.enter_context(vecbridge.connect(url))
        coll = first.create_collection(name, DIM, "l2")
        other = stack.enter_context(vecbridge.connect(url)).get_collection(name) if two_clients else coll
        yield coll, other, coll.native


@pytest.mark.parametrize("two_clients", [False, True], ids=["one-client", "two-clients"])
def test_concurrent_add_of_the_same_ids(database_url: str, two_clients: bool) -> None:
    ids = [f"id{i}" for i in range(N_IDS)]
    with _two_collections(database_url, two_clients) as (c0, c1, native):
        won: dict[int, list[str]] = {0: [], 1: []}
        refused: dict[int, list[str]] = {0: [], 1: []}

        def adder(thread: int, coll: Any) -> Callable[[], None]:
            def work() -> None:
                for i, id_ in enumerate(ids):
                    try:
                        coll.add([id_], [_vector(thread, i)], [{"thread": thread}], [f"doc {thread}"])
                        won[thread].append(id_)
                    except DuplicateIdError:
                        refused[thread].append(id_)
            return work

        _race([adder(0, c0), adder(1, c1)])
        for id_ in ids:
            winners = [t for t in (0, 1) if id_ in won[t]]
            losers = [t for t in (0, 1) if id_ in refused[t]]
            assert len(winners) == 1 and len(losers) == 1 and winners != losers, (id_, winners, losers)
        got = native.get(ids=ids, include=["embeddings", "metadatas", "documents"])
        assert sorted(got["ids"]) == sorted(ids)
        for id_, vec, meta, doc in zip(got["ids"], got["embeddings"], got["metadatas"], got["documents"]):
            winner = 0 if id_ in won[0] else 1
            assert meta["thread"] == winner and doc == f"doc {winner}", id_
            np.testing.assert_array_equal(np.asarray(vec, np.float32),
                                          np.asarray(_vector(winner, ids.index(id_)), np.float32))


def test_update_racing_delete_never_brings_a_record_back(database_url: str) -> None:
    ids = [f"id{i}" for i in range(N_IDS)]
    with _two_collections(database_url, True) as (c0, c1, native):
        c0.add(ids, [_vector(0, i) for i in range(N_IDS)], [{"v": 0} for _ in ids])
        updated: list[str] = []

        def updater() -> None:
            for id_ in ids:
                try:
                    c0.update([id_], metadatas=[{"v": 1}])
                    updated.append(id_)
                except RecordNotFoundError:
                    pass

        def deleter() -> None:
            for id_ in ids:
                c1.delete([id_])

        _race([updater, deleter])
        # each update ran wholly before or wholly after its id's delete: none survives it
        assert native.get(ids=ids, include=[])["ids"] == []
        assert native.count() == 0


def test_concurrent_upserts_replace_whole_records(database_url: str) -> None:
    ids = [f"id{i}" for i in range(N_IDS)]
    with _two_collections(database_url, True) as (c0, c1, native):
        def upserter(thread: int, coll: Any) -> Callable[[], None]:
            def work() -> None:
                for i, id_ in enumerate(ids):
                    coll.upsert([id_], [_vector(thread, i)], [{f"only{thread}": thread}])
            return work

        _race([upserter(0, c0), upserter(1, c1)])
        got = native.get(ids=ids, include=["metadatas"])
        for id_, meta in zip(got["ids"], got["metadatas"]):
            user = {k: v for k, v in meta.items() if not k.startswith("_vb")}
            assert user in ({"only0": 0}, {"only1": 1}), (id_, user)  # never both keys merged


# -- values --------------------------------------------------------------------------------

class Level(enum.IntEnum):
    HIGH = 7


def _same(a: Any, b: Any) -> bool:
    """Equal, of the same plain type, and floats with the same sign (-0.0 is not 0.0)."""
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    plain = bool if isinstance(a, bool) else int if isinstance(a, int) else float if isinstance(a, float) else type(a)
    if type(b) is not plain or a != b:
        return False
    return not isinstance(a, float) or math.copysign(1.0, a) == math.copysign(1.0, b)


@pytest.fixture(params=FORMS)
def url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "embedded":
        return f"chroma:///{tmp_path}/chroma"
    if request.param == "memory":
        return "chroma://"
    return str(request.getfixturevalue("server"))


def test_negative_zero_and_number_subclasses_round_trip(url: str) -> None:
    rng = random.Random(3)
    many_digits = [rng.random() for _ in range(20)]  # some of them Chroma's parser changes
    metas: list[dict[str, Any]] = [
        {"z": -0.0, "zl": [-0.0, 0.0, -0.0], "pz": 0.0, "np": np.float64(f), "npl": [np.float64(f)],
         "level": Level.HIGH, "i": i}
        for i, f in enumerate(many_digits)]
    ids = [f"r{i}" for i in range(len(metas))]
    with vecbridge.connect(url) as client:
        coll = client.create_collection(_collection_name(), DIM, "l2")
        coll.add(ids, [_vector(0, i) for i in range(len(ids))], metas)
        reads = {
            "get": coll.get(ids),
            "query": coll.query(_vector(0, 0), k=len(ids)),
            "scan": [r for batch in coll.scan(batch_size=7) for r in batch],
        }
        for how, recs in reads.items():
            assert sorted(r.id for r in recs) == sorted(ids), how
            for r in recs:
                written = metas[ids.index(r.id)]
                assert r.metadata is not None and r.metadata.keys() == written.keys(), (how, r.id)
                for key, value in written.items():
                    assert _same(value, r.metadata[key]), (how, r.id, key, value, r.metadata[key])
        # the filters see those values as the numbers they are (expected: the reference evaluator)
        for where in ({"$not": {"np": {"$gt": -1}}}, {"$not": {"level": {"$gte": 7}}}, {"np": {"$lt": 0.5}},
                      {"level": 7}, {"z": 0}, {"zl": {"$contains": 0.0}}):
            expected = {id_ for id_, m in zip(ids, metas) if evaluate(where, m)}
            assert {r.id for r in coll.get(where=where, limit=1000)} == expected, where


@pytest.mark.parametrize("where", [
    {"n": 2**64}, {"n": {"$gte": 2**63}}, {"n": {"$lt": -(2**63) - 1}}, {"n": {"$in": [1, 2**70]}},
    {"n": {"$ne": 2**64}}, {"tags": {"$contains": 2**64}}, {"$not": {"n": {"$nin": [-(2**65)]}}},
])
def test_int_operands_beyond_int64_are_refused(url: str, where: dict[str, Any]) -> None:
    with vecbridge.connect(url) as client:
        coll = client.create_collection(_collection_name(), DIM, "l2")
        coll.add(["max", "min"], [_vector(0, 0), _vector(0, 1)],
                 [{"n": 2**63 - 1, "tags": [2**63 - 1]}, {"n": -(2**63), "tags": [-(2**63)]}])
        with pytest.raises(UnsupportedFilterError) as info:
            coll.get(where=where)
        message = str(info.value)
        assert str(-(2**63)) in message and str(2**63 - 1) in message
        assert any(str(v) in message for v in (2**64, 2**63, -(2**63) - 1, 2**70, -(2**65)))
        # operands inside the range still run, exactly
        for ok in ({"n": -(2**63)}, {"n": {"$lte": -(2**63)}}, {"tags": {"$contains": -(2**63)}}, {"n": {"$gt": 0}}):
            expected = {i for i, m in (("max", {"n": 2**63 - 1, "tags": [2**63 - 1]}),
                                       ("min", {"n": -(2**63), "tags": [-(2**63)]})) if evaluate(ok, m)}
            assert {r.id for r in coll.get(where=ok)} == expected, ok


def test_reads_racing_deletes_answer(database_url: str) -> None:
    """Chroma fails a read with "Error finding id" when a delete of its records runs at the
    same moment; vecbridge reads again, and every answer holds the data written."""
    written: dict[str, list[float]] = {}
    with _two_collections(database_url, True) as (writer, reader, _native):
        errors: list[str] = []
        reads = [0]
        done = threading.Event()

        def write() -> None:
            try:
                for b in range(150):
                    ids = [f"w{b}-{j}" for j in range(20)]
                    vecs = [_vector(b, j) for j in range(20)]
                    written.update(zip(ids, vecs))
                    writer.add(ids, vecs, [{"b": b} for _ in ids])
                    writer.delete(ids[:15])
            finally:
                done.set()

        def read() -> None:
            while not done.is_set():
                try:
                    wanted = list(written)[-200:]
                    for rec in reader.get(wanted, include=["vector", "metadata"]):
                        assert rec.metadata == {"b": int(rec.id[1:].split("-")[0])}
                        np.testing.assert_array_equal(rec.vector, np.asarray(written[rec.id], np.float32))
                    for hit in reader.query(_vector(1, 1), k=10, where={"b": {"$gte": 0}}, include=["vector"]):
                        np.testing.assert_array_equal(hit.vector, np.asarray(written[hit.id], np.float32))
                    reads[0] += 1
                except vecbridge.VecbridgeError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")

        _race([write, read])
        assert errors == [], errors[:3]
        assert reads[0] > 0
