"""Qdrant: metadata values and keys arrive unchanged, and filters on them answer as the reference.

Expected answers are the data written and ``vecbridge.filters.evaluate``; the disk form
is read back by a fresh client, after the first one has closed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import vecbridge
from vecbridge.filters import evaluate

pytest.importorskip("qdrant_client")

KEYS = ["a.b", "a.b.c", "a[]", "a[0]", "a[].b", "it's", 'say "hi"', "back\\slash", "ключ.ü", "a b", "x:y", "*",
        "[", "emoji😀", "tab\tkey", "d$x"]
VALUES = {
    "neg_zero": -0.0, "max_float": 1.7976931348623157e308, "min_subnormal": 5e-324, "min_normal": 2.2250738585072014e-308,
    "np_float": np.float64(0.1), "int_max": 2**63 - 1, "int_min": -(2**63), "long": "x" * 100_000,
    "unicode": "日本語 ¿ \u200b", "floats": [-0.0, 1e308, 5e-324], "bools": [True, False], "empty": "", "one_f": 1.0,
}
META = {**VALUES, **{k: f"v{i}" for i, k in enumerate(KEYS)}}


def _same(a, b):
    """Equal, of the same type, and with the same sign for floats (-0.0 is not 0.0 here)."""
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float):
        return type(b) is float and a == b and math.copysign(1, a) == math.copysign(1, b)
    return type(a) is type(b) and a == b


@pytest.fixture(params=["memory", "disk"])
def coll(request, tmp_path):
    if request.param == "memory":
        client = vecbridge.connect("qdrant://")
        c = client.create_collection("values", 4, "cosine")
        c.add(["r"], [[1.0, 2.0, 3.0, 4.0]], [META], ["doc"])
    else:
        url = f"qdrant:///{tmp_path}/q"
        with vecbridge.connect(url) as writer:
            writer.create_collection("values", 4, "cosine").add(["r"], [[1.0, 2.0, 3.0, 4.0]], [META], ["doc"])
        client = vecbridge.connect(url)
        c = client.get_collection("values")
    yield c
    client.close()


def test_values_and_keys_come_back_unchanged(coll):
    (rec,) = coll.get(["r"])
    assert set(rec.metadata) == set(META)
    changed = {k: (v, rec.metadata[k]) for k, v in META.items() if not _same(float(v) if isinstance(v, np.floating)
                                                                              else v, rec.metadata[k])}
    assert changed == {}
    (scanned,) = [r for b in coll.scan() for r in b]
    assert all(_same(scanned.metadata[k], rec.metadata[k]) for k in META)


PLAIN = {k: float(v) if isinstance(v, np.floating) else v for k, v in META.items()}
FILTERS = [{k: META[k]} for k in KEYS] + [{k: {"$ne": META[k]}} for k in KEYS] + [
    {"neg_zero": 0.0}, {"neg_zero": -0.0}, {"neg_zero": {"$lt": 0}}, {"neg_zero": {"$gte": 0}},
    {"floats": {"$contains": 0.0}}, {"max_float": {"$gt": 1e307}}, {"max_float": 1.7976931348623157e308},
    {"min_subnormal": {"$gt": 0}}, {"min_subnormal": {"$lt": 1e-320}}, {"unicode": META["unicode"]},
    {"long": META["long"]}, {"empty": ""}, {"one_f": 1}, {"int_max": {"$lt": 1e300}}, {"int_min": {"$gt": -1e300}},
    {"int_max": {"$lt": 2.0**64}}, {"int_min": {"$lt": -(2.0**64)}},
]


@pytest.mark.parametrize("where", FILTERS, ids=repr)
def test_filters_answer_as_the_reference(coll, where):
    assert coll.count(where=where) == int(evaluate(where, PLAIN))
    assert [r.id for r in coll.get(where=where)] == (["r"] if evaluate(where, PLAIN) else [])


@pytest.mark.parametrize("where, shown", [
    ({"int_max": 2**63 - 1}, "9223372036854775807"),
    ({"int_max": {"$gte": 2**53}}, "9007199254740992"),
    ({"int_min": {"$in": [1, -(2**53)]}}, "-9007199254740992"),
    ({"int_max": {"$lt": 2.0**63}}, "9.223372036854776e+18"),  # a float an int64 rounds to
    ({"int_max": {"$gt": 2.0**60}}, "1.152921504606847e+18"),
    ({"int_min": {"$in": ["a", -(2.0**53)]}}, "-9007199254740992.0"),
])
def test_a_whole_number_qdrant_cannot_compare_exactly_is_refused_with_value_and_range(coll, where, shown):
    with pytest.raises(vecbridge.UnsupportedFilterError) as info:
        coll.count(where=where)
    msg = str(info.value)
    assert shown in msg
    assert "-9007199254740991 to 9007199254740991" in msg
