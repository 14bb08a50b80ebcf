"""The core's rules: options, capabilities, errors, validation of odd input (no backend needed)."""

from __future__ import annotations

import errno
import math

import numpy as np
import pytest

import vecbridge
from vecbridge import errors, filters
from vecbridge.base import classify, native_errors
from vecbridge.options import Option, parse_options
from vecbridge.scores import brute_force_distances, exact_top_k
from vecbridge.validation import validate_batch, validate_metadata, validate_query_vectors

OPTS = (Option("timeout", "float", minimum=0), Option("n", "int", default=3), Option("flag", "bool", default=False),
        Option("mode", default="a", choices=("a", "b")), Option("token", where="server", secret=True))


def test_options_convert_strings_and_fill_defaults():
    got = parse_options(OPTS, {"timeout": "2.5", "n": "007", "flag": "yes", "mode": "B"}, backend="x", local=False)
    assert got == {"timeout": 2.5, "n": 7, "flag": True, "mode": "b", "token": None}
    assert parse_options(OPTS, {}, backend="x", local=True) == {"timeout": None, "n": 3, "flag": False, "mode": "a"}


@pytest.mark.parametrize("given, words", [
    ({"nope": "1"}, ["unknown x option 'nope'", "flag, mode, n, timeout"]),
    ({"n": "1.5"}, ["'n' is a whole number", "'1.5'"]),
    ({"flag": "maybe"}, ["'flag' is true or false"]),
    ({"mode": "c"}, ["one of a, b"]),
    ({"timeout": "-1"}, ["at least 0"]),
    ({"token": "s3cret"}, ["applies to a server URL only"]),
])
def test_options_refuse_clearly(given, words):
    with pytest.raises(errors.InvalidURLError) as info:
        parse_options(OPTS, given, backend="x", local=True, url="x:///p")
    for w in words:
        assert w in str(info.value)
    assert "s3cret" not in str(info.value)


def test_every_backend_refuses_an_unknown_option_listing_the_known_ones(tmp_path):
    with pytest.raises(errors.InvalidURLError, match="unknown faiss option 'colour'"):
        vecbridge.connect("faiss://?colour=red")
    with pytest.raises(errors.InvalidURLError, match="are: batch_size, .*parallel"):
        vecbridge.connect("qdrant://?colour=red")


def test_error_table_classifies_by_type():
    class Refused(Exception):
        pass

    table = ((Refused, errors.BackendUnavailableError), (KeyError, lambda e: errors.RecordNotFoundError))
    assert classify(Refused(), table) is errors.BackendUnavailableError
    assert classify(KeyError("x"), table) is errors.RecordNotFoundError
    assert classify(ConnectionResetError(), ()) is errors.BackendUnavailableError
    assert classify(OSError(errno.ECONNREFUSED, "refused"), ()) is errors.BackendUnavailableError
    assert classify(OSError(errno.ENOENT, "gone"), ()) is errors.BackendError
    assert classify(ValueError("x"), ()) is errors.BackendError
    with pytest.raises(errors.BackendUnavailableError) as info, native_errors("x", "query", table):
        raise Refused("at pgvector://u:hunter2@h/db")
    assert isinstance(info.value.__cause__, Refused) and "hunter2" not in str(info.value)
    assert issubclass(errors.BackendUnavailableError, errors.BackendError)


def test_numpy_scalars_become_python_ones():
    meta = validate_metadata({"a": np.float64(0.5), "b": np.int64(7), "c": np.float32(0.25), "d": np.bool_(True),
                              "e": np.str_("x"), "f": [np.int32(1), np.int64(2)], "g": np.array([1.5, 2.5])})
    assert meta == {"a": 0.5, "b": 7, "c": 0.25, "d": True, "e": "x", "f": [1, 2], "g": [1.5, 2.5]}
    assert [type(meta[k]) for k in "abcde"] == [float, int, float, bool, str]
    assert all(type(v) is int for v in meta["f"]) and all(type(v) is float for v in meta["g"])
    node = filters.parse({"b": np.int64(7), "a": {"$in": [np.float64(0.5)]}, "d": {"$ne": np.bool_(False)}})
    assert filters.matches(node, meta)
    assert type(node.items[0].value) is int  # type: ignore[union-attr]


@pytest.mark.parametrize("vectors, metric, words", [
    ([[1e20, 0.0], [1.0, 1.0]], "l2", ["vectors[0]", "at most"]),
    ([[1.0, 1.0], [1e19, 1e19]], "ip", ["vectors[1]", "at most"]),
    ([[1.0, 1.0], [1e-30, 1e-30]], "cosine", ["vectors[1]", "at least"]),
    ([[1.0, 2.0], [1.0, 2.0, 3.0]], "l2", ["vectors[1] has 3 numbers", "vectors[0] has 2"]),
    ([[1.0, 2.0], "ab"], "l2", ["vectors[1]"]),
])
def test_vectors_that_break_float32_arithmetic_or_shape_are_refused_with_the_position(vectors, metric, words):
    with pytest.raises(errors.InvalidVectorError) as info:
        validate_batch(["a", "b"], vectors, None, None, dimension=2, metric=metric)
    for w in words:
        assert w in str(info.value)


def test_extreme_but_allowed_vectors_give_finite_distances():
    v = np.array([[3e18, 0.0], [0.0, 3e18]], dtype=np.float32)  # squared length 9e36 <= 1e37
    arr = validate_batch(["a", "b"], v, None, None, dimension=2, metric="l2").vectors
    d = (arr[0] - arr[1]).astype(np.float32)
    assert np.isfinite(np.float32(np.dot(d, d)))
    small = validate_batch(["a"], [[1e-15, 0.0]], None, None, dimension=2, metric="cosine").vectors
    assert np.isfinite(small / np.linalg.norm(small)).all()


def test_one_vector_for_one_id_asks_for_a_2d_array():
    with pytest.raises(errors.InvalidVectorError, match=r"2-D array, one row per id \(for one record: \[vector\]\)"):
        validate_batch(["a"], [0.1, 0.2, 0.3, 0.4], None, None, dimension=4, metric="l2")
    with pytest.raises(errors.InvalidVectorError, match="one vector of 4 numbers"):
        validate_batch(["a"], np.ones(4), None, None, dimension=4, metric="l2")


def test_query_vectors_follow_the_same_limits():
    with pytest.raises(errors.InvalidVectorError, match=r"query vectors\[0\]"):
        validate_query_vectors([1e30, 0.0], 2, "l2")


def test_nul_in_a_filter_is_refused_clearly():
    for where in ({"k": "a\x00b"}, {"k\x00": 1}, {"k": {"$in": ["x", "\x00"]}}):
        with pytest.raises(errors.InvalidFilterError, match="NUL"):
            filters.parse(where)


def test_exact_top_k_matches_numpy_for_every_metric():
    rng = np.random.default_rng(3)
    q, v = rng.normal(size=(4, 8)), rng.normal(size=(50, 8))
    for metric in ("cosine", "l2", "ip"):
        d, idx = exact_top_k(metric, q, v, 7)
        full = brute_force_distances(metric, q, v)
        expect = np.argsort(full, axis=1, kind="stable")[:, :7]
        assert (idx == expect).all()
        assert np.allclose(d, np.take_along_axis(full, expect, axis=1))
    d, idx = exact_top_k("l2", q, v[:3], 10)
    assert idx.shape == (4, 3) and math.isfinite(float(d.max()))


def test_async_write_lock_is_reentrant_for_its_task_and_excludes_others():
    import asyncio

    from vecbridge.locks import AsyncSharedExclusiveLock

    async def main() -> list[str]:
        lock, order = AsyncSharedExclusiveLock(), []

        async def writer() -> None:
            async with lock.exclusive():
                async with lock.exclusive():  # a default flow's nested write
                    async with lock.shared():
                        order.append("nested")
                await asyncio.sleep(0.02)
                order.append("writer done")

        async def reader() -> None:
            await asyncio.sleep(0.005)  # arrives while the writer holds the lock
            async with lock.shared():
                order.append("reader")

        await asyncio.gather(writer(), reader())
        return order

    assert asyncio.run(main()) == ["nested", "writer done", "reader"]
