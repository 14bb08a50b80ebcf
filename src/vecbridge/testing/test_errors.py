"""Conformance: every error of the contract, with nothing written by a refused batch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import vecbridge
from vecbridge import errors

GOOD = [[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]


@pytest.fixture
def coll(make_collection):
    c = make_collection(dimension=3, metric="cosine")
    c.add(["keep"], [[1.0, 1.0, 1.0]], [{"k": 1}], ["kept"])
    return c


def _unchanged(c) -> None:
    assert c.count() == 1
    (rec,) = c.get(["keep"], include=["metadata", "document"])
    assert rec.metadata == {"k": 1} and rec.document == "kept"


@pytest.mark.parametrize("method", ["add", "upsert"])
@pytest.mark.parametrize("vectors, exc, words", [
    ([[1.0, 2.0, 3.0], [1.0, math.nan, 1.0]], errors.InvalidVectorError, "vectors[1]"),
    ([[1.0, 2.0, 3.0], [1.0, math.inf, 1.0]], errors.InvalidVectorError, "vectors[1]"),
    ([[1.0, 2.0, 3.0], [1e39, 1.0, 1.0]], errors.InvalidVectorError, "vectors[1]"),
    ([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], errors.InvalidVectorError, "vectors[1]"),
    ([[1.0, 2.0], [1.0, 2.0]], errors.DimensionMismatchError, "dimension"),
    ([[1.0, 2.0, 3.0], [1.0, 2.0]], errors.InvalidVectorError, "vectors"),
    ([[1.0, 2.0, 3.0], ["a", "b", "c"]], errors.InvalidVectorError, "vectors"),
])
def test_bad_vectors(coll, method, vectors, exc, words):
    with pytest.raises(exc) as info:
        getattr(coll, method)(["n1", "n2"], vectors)
    assert words in str(info.value)
    _unchanged(coll)


@pytest.mark.parametrize("metadata, key", [
    ({"ok": 1, "bad": None}, "bad"),
    ({"bad": {"nested": 1}}, "bad"),
    ({"bad": [1, "a"]}, "bad"),
    ({"bad": [[1]]}, "bad"),
    ({"bad": 2**64}, "bad"),
    ({"bad": math.nan}, "bad"),
    ({"bad": b"bytes"}, "bad"),
    ({"$bad": 1}, "$bad"),
    ({"_vbx": 1}, "_vbx"),
    ({"": 1}, "''"),
    ({3: 1}, "3"),
])
def test_bad_metadata(coll, metadata, key):
    with pytest.raises(errors.InvalidMetadataError) as info:
        coll.upsert(["n1", "n2"], GOOD, [{"fine": True}, metadata])
    assert key in str(info.value) and "metadatas[1]" in str(info.value)
    _unchanged(coll)


@pytest.mark.parametrize("ids, vectors, metadatas, documents, words", [
    (["a", "b"], GOOD[:1], None, None, "vectors"),
    (["a", "b"], GOOD, [{}], None, "metadatas"),
    (["a", "b"], GOOD, None, ["x"], "documents"),
    (["a", ""], GOOD, None, None, "ids[1]"),
    (["a", "a"], GOOD, None, None, "ids[1]"),
    (["a", "x" * 257], GOOD, None, None, "ids[1]"),
    (["a", "é" * 129], GOOD, None, None, "ids[1]"),
    (["a", 5], GOOD, None, None, "ids[1]"),
    ("ab", GOOD, None, None, "ids"),
    (["a", "b"], GOOD, None, ["ok", 5], "documents[1]"),
])
def test_bad_batches(coll, ids, vectors, metadatas, documents, words):
    for method in ("add", "upsert"):
        with pytest.raises(errors.InvalidRecordError) as info:
            getattr(coll, method)(ids, vectors, metadatas, documents)
        assert words in str(info.value)
    _unchanged(coll)


def test_bad_query_vectors(coll):
    with pytest.raises(errors.DimensionMismatchError):
        coll.query([1.0, 2.0], k=1)
    with pytest.raises(errors.InvalidVectorError):
        coll.query([1.0, math.nan, 2.0], k=1)
    with pytest.raises(errors.InvalidVectorError):
        coll.query([0.0, 0.0, 0.0], k=1)
    with pytest.raises(ValueError):
        coll.query([1.0, 2.0, 3.0], k=0)


def test_error_tree():
    for name in ["InvalidURLError", "BackendNotInstalledError", "CollectionNotFoundError", "CollectionExistsError",
                 "DimensionMismatchError", "InvalidRecordError", "InvalidVectorError", "InvalidMetadataError",
                 "InvalidFilterError", "UnsupportedFilterError", "UnsupportedFeatureError", "DuplicateIdError",
                 "RecordNotFoundError", "BackendError"]:
        assert issubclass(getattr(vecbridge, name), vecbridge.VecbridgeError)


def test_numpy_inputs_accepted(coll):
    coll.upsert(np.array(["n1", "n2"]).tolist(), np.asarray(GOOD, dtype=np.float64))
    assert coll.count() == 3
