"""Conformance: the contract rules that a demanding user broke (issues 11 and 18).

An operator added to the language is refused, never run as another one; ``-0.0`` and
numpy scalars round-trip with their exact types; vectors whose distances would leave
float32 are refused naming the position; NUL characters are refused in ids, documents
and filters; numbers near 2**53, 2**60 and 2**63 compare exactly (or the filter is
refused where the suite's gap table allows it); concurrent ``add`` of one id succeeds
once.  Expected answers come from the reference evaluator and the data written.
"""

from __future__ import annotations

import math
import threading
from typing import Any

import numpy as np
import pytest

import vecbridge
from vecbridge import errors, filters

from ._helpers import exact_index
from .gaps import filter_gap

READS = ("get", "count", "query", "delete")


def _read(coll: Any, how: str, where: Any) -> Any:
    if how == "get":
        return coll.get(where=where, limit=100, include=[])
    if how == "count":
        return coll.count(where)
    if how == "query":
        return coll.query([1.0, 0.0, 0.0], k=5, where=where, include=[])
    return coll.delete(where=where)


# -- an operator the translators do not know ------------------------------------------------

@pytest.mark.parametrize("where", [
    {"s": {"$startswith": "a"}},
    {"$or": [{"s": "banana"}, {"s": {"$startswith": "a"}}]},
    {"$not": {"s": {"$startswith": "a"}}},
], ids=["plain", "in-or", "under-not"])
def test_added_operator_refused(vb_backend, make_collection, monkeypatch, where):
    """Issue 11: an operator added to the language later is refused by every translator,
    never sent to another operator's branch (FAISS and pgvector once counted it as $eq)."""
    coll = make_collection(dimension=3, metric="l2", index=exact_index(vb_backend))
    coll.add(["a", "b"], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [{"s": "apple"}, {"s": "banana"}])
    monkeypatch.setattr(filters, "COMPARISONS", (*filters.COMPARISONS, "$startswith"))
    filters.parse(where)  # the language now has it: only the backend can refuse it
    for how in READS:
        with pytest.raises(errors.UnsupportedFilterError) as info:
            _read(coll, how, where)
        assert "$startswith" in str(info.value), f"{how}: the message names the operator: {info.value}"
    monkeypatch.undo()
    assert sorted(r.id for r in coll.get(limit=10, include=[])) == ["a", "b"], "nothing was deleted"


# -- exact types of numbers in metadata -----------------------------------------------------

def test_negative_zero_roundtrips(vb_backend, make_collection):
    """Issue 18 item 13: -0.0 comes back as -0.0; a filter on 0.0 (or 0) matches it."""
    coll = make_collection(dimension=3, metric="l2", index=exact_index(vb_backend))
    metas = [{"x": -0.0, "l": [-0.0, 1.5]}, {"x": 0.0, "l": [0.0]}, {"x": 1.0}]
    coll.add(["neg", "pos", "one"], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], metas)

    def sign_of(meta: dict[str, Any], where: str) -> None:
        assert type(meta["x"]) is float and meta["x"] == 0.0, f"{where}: {meta!r}"
        assert math.copysign(1.0, meta["x"]) == -1.0, f"{where}: -0.0 came back as {meta['x']!r}"
        assert [math.copysign(1.0, v) for v in meta["l"]] == [-1.0, 1.0], f"{where}: {meta['l']!r}"

    sign_of(coll.get(["neg"], include=["metadata"])[0].metadata, "get")
    sign_of(coll.query([1.0, 0.0, 0.0], k=1, include=["metadata"])[0].metadata, "query")
    scanned = {r.id: r for batch in coll.scan(batch_size=2) for r in batch}
    sign_of(scanned["neg"].metadata, "scan")
    for where in ({"x": 0.0}, {"x": -0.0}, {"x": 0}, {"x": {"$gte": 0}}, {"x": {"$lt": 0.0}},
                  {"x": {"$ne": 0.0}}, {"l": {"$contains": 0.0}}):
        want = {i for i, m in zip(["neg", "pos", "one"], metas) if filters.evaluate(where, m)}
        assert {r.id for r in coll.get(where=where, include=[])} == want, where
        assert coll.count(where) == len(want), where


def test_numpy_scalars_stored_as_python(vb_backend, make_collection):
    """Issue 18 item 8: numpy scalars are stored as the Python float/int/bool a pandas user means."""
    coll = make_collection(dimension=3, metric="l2", index=exact_index(vb_backend))
    given = {"f64": np.float64(1.5), "i64": np.int64(7), "f32": np.float32(0.1), "b": np.bool_(True),
             "i32": np.int32(-3), "li": [np.int64(1), np.int64(2)]}
    want = {"f64": 1.5, "i64": 7, "f32": float(np.float32(0.1)), "b": True, "i32": -3, "li": [1, 2]}
    coll.add(["np", "other"], np.asarray([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
             [given, {"f64": 2.5, "i64": 8, "b": False}])
    reads = {
        "get": coll.get(["np"], include=["metadata"])[0].metadata,
        "query": coll.query([1.0, 0.0, 0.0], k=1, include=["metadata"])[0].metadata,
        "scan": next(r for b in coll.scan() for r in b if r.id == "np").metadata,
    }
    for how, got in reads.items():
        assert got == want, how
        for key, value in want.items():
            assert type(got[key]) is type(value), f"{how}: {key!r} came back as {type(got[key]).__name__}"
        assert [type(v) for v in got["li"]] == [int, int], how
    stored = {"np": want, "other": {"f64": 2.5, "i64": 8, "b": False}}
    for where in ({"i64": np.int64(7)}, {"f64": {"$gt": np.float64(1.0)}}, {"b": np.bool_(True)},
                  {"i64": {"$in": [np.int64(7), np.int32(9)]}}, {"f32": np.float32(0.1)},
                  {"li": {"$contains": np.int64(2)}}, {"i64": {"$ne": np.int64(8)}}):
        expected = {i for i, m in stored.items() if filters.evaluate(where, m)}
        assert {r.id for r in coll.get(where=where, include=[])} == expected, where
        assert coll.count(where) == len(expected), where


# -- vectors whose distances leave float32 --------------------------------------------------

@pytest.mark.parametrize("metric, bad", [
    ("l2", [1e20, 1.0, 1.0]), ("ip", [1.0, -1e20, 1.0]), ("cosine", [1e-30, 0.0, 0.0]),
    ("cosine", [1e-20, 1e-20, 0.0]),
])
def test_extreme_vectors_refused(vb_backend, make_collection, metric, bad):
    """Issue 18 item 6: a vector of squared length above 1e37 (or below 1e-30 in a cosine
    collection) is refused naming its position, before anything is written."""
    coll = make_collection(dimension=3, metric=metric, index=exact_index(vb_backend))
    coll.add(["keep", "keep2"], [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], [{"k": 1}, {"k": 2}])
    for write, ids in (("add", ["n0", "n1"]), ("upsert", ["n0", "keep"]), ("update", ["keep2", "keep"])):
        with pytest.raises(errors.InvalidVectorError) as info:
            getattr(coll, write)(ids, [[0.5, 0.5, 0.5], bad])
        assert "vectors[1]" in str(info.value), f"{write}: {info.value}"
    assert coll.count() == 2
    got = coll.get(["keep", "keep2"], include=["vector"])
    np.testing.assert_array_equal(np.stack([r.vector for r in got]),
                                  np.asarray([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], dtype=np.float32))
    with pytest.raises(errors.InvalidVectorError):
        coll.query(bad, k=1)
    with pytest.raises(errors.InvalidVectorError) as info:
        coll.query([[1.0, 1.0, 1.0], bad], k=1)
    assert "[1]" in str(info.value), str(info.value)


# -- NUL characters -------------------------------------------------------------------------

@pytest.mark.parametrize("where", [
    {"k\x00ey": 1}, {"s": "a\x00b"}, {"s": {"$in": ["ok", "a\x00"]}}, {"l": {"$contains": "\x00"}},
    {"$or": [{"s": "ok"}, {"s": {"$ne": "x\x00"}}]}, {"$not": {"ke\x00y": {"$gt": 1}}},
])
def test_nul_in_filter_refused(vb_backend, make_collection, where):
    """Issue 18 item 9: a NUL in a filter key or value is an InvalidFilterError everywhere."""
    coll = make_collection(dimension=3, metric="l2", index=exact_index(vb_backend))
    coll.add(["a"], [[1.0, 0.0, 0.0]], [{"s": "ok"}])
    for how in READS:
        with pytest.raises(errors.InvalidFilterError):
            _read(coll, how, where)
    assert coll.count() == 1


@pytest.mark.parametrize("ids, documents, words", [
    (["a", "b\x00c"], None, "ids[1]"),
    (["a", "\x00"], None, "ids[1]"),
    (["a", "b"], ["ok", "x\x00y"], "documents[1]"),
])
def test_nul_in_ids_and_documents_refused(vb_backend, make_collection, ids, documents, words):
    """Issue 18 item 12: ids are non-empty strings of at most 256 UTF-8 bytes without NUL;
    documents hold no NUL; both are refused clearly, before anything is written."""
    coll = make_collection(dimension=3, metric="l2", index=exact_index(vb_backend))
    coll.add(["keep"], [[1.0, 0.0, 0.0]], documents=["kept"])
    for write in ("add", "upsert"):
        with pytest.raises(errors.InvalidRecordError) as info:
            getattr(coll, write)(ids, [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], None, documents)
        assert words in str(info.value) and "NUL" in str(info.value), str(info.value)
    if documents is not None:
        with pytest.raises(errors.InvalidRecordError):
            coll.update(["keep"], documents=[documents[1]])
    else:
        for read in (lambda: coll.get([ids[1]]), lambda: coll.delete([ids[1]])):
            with pytest.raises(errors.InvalidRecordError):
                read()
    assert [(r.id, r.document) for r in coll.get(limit=10)] == [("keep", "kept")]


# -- numbers that float64 or int64 cannot tell apart ----------------------------------------

_STORED_NUMBERS: list[int | float] = [
    2**53 - 1, 2**53, 2**53 + 1, float(2**53), 2**60 - 1, 2**60, 2**60 + 1, float(2**60), 2.0**62,
    2**63 - 2, 2**63 - 1, float(2**63 - 1024), -(2**63), -(2**60) - 1, float(-(2**60)), 0, 1.5,
]


def _operands() -> list[int | float]:
    out: list[int | float] = []
    for base in (2**53, 2**60, 2**63 - 1):
        out += [base - 1, base, base + 1, float(base)]
    return out + [-(2**60) - 1, float(-(2**60)), -(2**63), 2**64, 2.0**64, -(2.0**64), 2.0**63 + 2.0**11]


def test_large_numbers_in_filters(vb_backend, make_collection):
    """Issue 18 items 4-5: near 2**53, 2**60 and 2**63 every comparison gives exactly the
    reference evaluator's answer, or is refused where the suite's gap table allows it."""
    coll = make_collection(dimension=3, metric="l2", index=exact_index(vb_backend))
    ids = [f"n{i}" for i in range(len(_STORED_NUMBERS))]
    metas = [{"n": v} for v in _STORED_NUMBERS]
    rng = np.random.default_rng(1)
    coll.add(ids, rng.normal(size=(len(ids), 3)), metas)
    problems: list[str] = []
    for value in _operands():
        for where in ({"n": value}, *({"n": {op: value}} for op in ("$ne", "$gt", "$gte", "$lt", "$lte")),
                      {"n": {"$in": [value]}}):
            want = {i for i, m in zip(ids, metas) if filters.evaluate(where, m)}
            try:
                got = {r.id for r in coll.get(where=where, limit=100, include=[])}
                count = coll.count(where)
            except errors.UnsupportedFilterError as exc:
                if filter_gap(vb_backend.name, where) is None:
                    problems.append(f"{where!r}: refused ({exc}), and no gap allows it")
                continue
            if got != want or count != len(want):
                wrong = sorted((got ^ want), key=ids.index)
                problems.append(f"{where!r}: count {count} (want {len(want)}); wrong on "
                                + ", ".join(f"{metas[ids.index(i)]['n']!r}" for i in wrong))
    assert not problems, f"{len(problems)} filters answered wrongly:\n" + "\n".join(problems)


# -- concurrent add of the same ids ---------------------------------------------------------

def _race(colls: list[Any], ids: list[str]) -> dict[str, list[Any]]:
    """Each of two threads adds every id, one at a time, into its own collection object."""
    barrier = threading.Barrier(len(colls))
    outcome: dict[str, list[Any]] = {i: [None] * len(colls) for i in ids}

    def run(t: int) -> None:
        barrier.wait()
        for n, id_ in enumerate(ids):
            try:
                colls[t].add([id_], [[float(t + 1), float(n + 1), 1.0]], [{"w": t}], [f"by {t}"])
                outcome[id_][t] = "ok"
            except Exception as exc:  # noqa: BLE001  (every outcome is recorded and judged below)
                outcome[id_][t] = exc

    threads = [threading.Thread(target=run, args=(t,)) for t in range(len(colls))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=300)
    assert not any(th.is_alive() for th in threads), "an add hung"
    return outcome


def _judge(coll: Any, outcome: dict[str, list[Any]]) -> None:
    problems = []
    winners: dict[str, int] = {}
    for id_, results in outcome.items():
        ok = [t for t, r in enumerate(results) if r == "ok"]
        dup = [t for t, r in enumerate(results) if isinstance(r, errors.DuplicateIdError)]
        other = [r for r in results if r != "ok" and not isinstance(r, errors.DuplicateIdError)]
        if other:
            problems.append(f"{id_}: {', '.join(f'{type(e).__name__}: {e}' for e in other)}")
        elif len(ok) != 1 or len(dup) != 1:
            problems.append(f"{id_}: {len(ok)} adds succeeded, {len(dup)} raised DuplicateIdError")
        else:
            winners[id_] = ok[0]
    assert not problems, f"{len(problems)} of {len(outcome)} ids:\n" + "\n".join(problems[:20])
    recs = {r.id: r for r in coll.get(list(outcome), include=["metadata", "document", "vector"])}
    assert set(recs) == set(outcome) and coll.count() == len(outcome)
    for id_, t in winners.items():
        assert recs[id_].metadata == {"w": t} and recs[id_].document == f"by {t}", id_
        assert float(recs[id_].vector[0]) == float(t + 1), id_


def test_concurrent_add_one_client(vb_backend, make_collection):
    """Issue 18 item 2: two threads adding the same ids through one client: per id exactly
    one add succeeds, the other raises DuplicateIdError, and the winner's record is stored."""
    coll = make_collection(dimension=3, metric="l2", index=exact_index(vb_backend))
    outcome = _race([coll, coll], [f"id{i:03d}" for i in range(100)])
    _judge(coll, outcome)


def test_concurrent_add_two_clients(vb_backend, vb_api, make_collection):
    """The same with a client per thread, in one process (an in-memory store is private to
    its client, so only the persistent forms can share a collection between two)."""
    if not vb_backend.persistent:
        pytest.skip("an in-memory store is private to its client")
    coll = make_collection(dimension=3, metric="l2", index=exact_index(vb_backend))
    with vb_api.connect(vb_backend.url) as c1, vb_api.connect(vb_backend.url) as c2:
        outcome = _race([c1.get_collection(coll.name), c2.get_collection(coll.name)],
                        [f"id{i:03d}" for i in range(100)])
    _judge(coll, outcome)


_ADDER = """
import json, sys, time, vecbridge
url, name, me, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
out = {}
try:
    with vecbridge.connect(url) as client:
        coll = client.get_collection(name)
        while time.time() < start:
            time.sleep(0.005)
        for n in range(100):
            id_ = f"id{n:03d}"
            try:
                coll.add([id_], [[float(me + 1), float(n + 1), 1.0]], [{"w": me}], [f"by {me}"])
                out[id_] = "ok"
            except vecbridge.DuplicateIdError:
                out[id_] = "dup"
except vecbridge.VecbridgeError as exc:
    out["error"] = type(exc).__name__ + ": " + str(exc)
except BaseException as exc:
    out["error"] = "RAW " + type(exc).__name__ + ": " + str(exc)
print(json.dumps(out))
"""


@pytest.mark.never(["chroma-server"], reason="Chroma has no atomic insert-if-absent: two processes adding one id "
                   "to a server can both be told it worked, and one record is kept (docs/backends/chroma.md); "
                   "give each id one writing process")
@pytest.mark.never(["milvus-server"], reason="Milvus has no insert-if-absent and no unique key: two processes adding "
                   "one id can both be told it worked, the later record replaces the earlier "
                   "(docs/backends/milvus.md); give each id one writing process")
def test_concurrent_add_two_processes(vb_backend, make_collection):
    """Two processes adding the same ids: a process either fails clearly because the other
    holds the folder (BackendLockedError) or, per id, exactly one add succeeds and the other
    raises DuplicateIdError; the stored record is the winner's."""
    if not vb_backend.persistent:
        pytest.skip("an in-memory store is private to its process")
    import json
    import subprocess
    import sys
    import time

    coll = make_collection(dimension=3, metric="l2", index=exact_index(vb_backend))
    name = coll.name
    coll._client.close()  # an embedded folder may admit one process at a time: let both try
    start = time.time() + 8.0
    procs = [subprocess.Popen([sys.executable, "-c", _ADDER, vb_backend.url, name, str(me), str(start)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for me in (0, 1)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0 and out.strip(), f"a writer died ({p.returncode}): {err[-2000:]}"
        results.append(json.loads(out.strip().splitlines()[-1]))
    unclear = [r["error"] for r in results if "error" in r and not r["error"].startswith("BackendLockedError")]
    assert not unclear, f"a writer failed with something else than BackendLockedError: {unclear}"
    working = [r for r in results if "error" not in r]
    ids = [f"id{n:03d}" for n in range(100)]
    outcome = {i: [("ok" if r.get(i) == "ok" else errors.DuplicateIdError(i) if r.get(i) == "dup" else "absent")
                   for r in working] for i in ids}
    with vecbridge.connect(vb_backend.url) as client:
        again = client.get_collection(name)
        try:
            if len(working) == 2:
                _judge(again, outcome)
            elif working:
                assert all(v == ["ok"] for v in outcome.values()), outcome
                assert again.count() == 100
            else:
                assert again.count() == 0
        finally:
            client.delete_collection(name)
