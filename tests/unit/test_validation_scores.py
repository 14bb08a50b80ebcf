from __future__ import annotations

import math

import numpy as np
import pytest

from vecbridge import errors
from vecbridge.scores import brute_force_distances, convert
from vecbridge.validation import validate_batch, validate_index, validate_metadata


def test_batch_is_float32_contiguous():
    b = validate_batch(["a", "b"], [[1, 2], [3, 4]], None, None, dimension=2, metric="l2")
    assert b.vectors.dtype == np.float32 and b.vectors.flags.c_contiguous
    assert b.metadatas is None and b.documents is None


def test_metadata_tuple_becomes_list_and_types_kept():
    m = validate_metadata({"t": (1, 2), "f": 1.0, "b": True})
    assert m == {"t": [1, 2], "f": 1.0, "b": True} and type(m["f"]) is float


@pytest.mark.parametrize("value", [None, {"x": 1}, [1, "a"], [True, 1], 2**63, math.inf, "nul\x00", object()])
def test_bad_metadata_values(value):
    with pytest.raises(errors.InvalidMetadataError, match="'k'"):
        validate_metadata({"k": value})


def test_index_specs():
    assert validate_index(None, ["flat"], "x") == {"type": "default"}
    assert validate_index({"type": "HNSW", "m": 8}, ["hnsw"], "x") == {"type": "hnsw", "m": 8}
    with pytest.raises(errors.UnsupportedFeatureError, match="offers flat"):
        validate_index({"type": "ivf"}, ["flat"], "mydb")
    with pytest.raises(ValueError, match="nlist"):
        validate_index({"type": "hnsw", "nlist": 3}, ["hnsw"], "x")


@pytest.mark.parametrize("metric, kind, native", [
    ("l2", "squared_l2", 4.0), ("l2", "distance", 2.0),
    ("cosine", "similarity", 0.8), ("cosine", "one_minus_similarity", 0.2), ("cosine", "distance", 0.2),
    ("ip", "similarity", 3.0), ("ip", "neg_similarity", -3.0), ("ip", "one_minus_similarity", -2.0),
    ("ip", "distance", -3.0),
])
def test_score_conversion(metric, kind, native):
    score, distance = convert(metric, kind, native)
    want = {"l2": (-2.0, 2.0), "cosine": (0.8, 0.2), "ip": (3.0, -3.0)}[metric]
    assert score == pytest.approx(want[0]) and distance == pytest.approx(want[1])


def test_brute_force_distances_by_hand():
    q, v = np.array([[3.0, 4.0]]), np.array([[0.0, 0.0], [3.0, 0.0], [6.0, 8.0]])
    np.testing.assert_allclose(brute_force_distances("l2", q, v), [[5.0, 4.0, 5.0]])
    np.testing.assert_allclose(brute_force_distances("ip", q, v[1:]), [[-9.0, -50.0]])
    np.testing.assert_allclose(brute_force_distances("cosine", q, v[1:]), [[1 - 0.6, 0.0]], atol=1e-12)
