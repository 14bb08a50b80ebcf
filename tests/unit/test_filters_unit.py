from __future__ import annotations

import pytest

from vecbridge import errors
from vecbridge.filters import And, Cmp, Not, Or, evaluate, parse


@pytest.mark.parametrize("where, meta, want", [
    ({"a": 1}, {"a": 1}, True),
    ({"a": 1}, {"a": 1.0}, True),
    ({"a": 1.0}, {"a": 1}, True),
    ({"a": 1}, {"a": True}, False),
    ({"a": True}, {"a": 1}, False),
    ({"a": "1"}, {"a": 1}, False),
    ({"a": 1}, {}, False),
    ({"a": {"$ne": 1}}, {}, True),
    ({"a": {"$nin": [1]}}, {}, True),
    ({"a": {"$in": [1]}}, {}, False),
    ({"a": {"$gt": 0}}, {"a": True}, False),
    ({"a": {"$gt": 0}}, {"a": "b"}, False),
    ({"a": {"$gte": 1, "$lt": 2}}, {"a": 1.5}, True),
    ({"a": {"$contains": "x"}}, {"a": ["x", "y"]}, True),
    ({"a": {"$contains": 1}}, {"a": [1.0]}, True),
    ({"a": {"$contains": 1}}, {"a": [True]}, False),
    ({"a": {"$contains": "x"}}, {"a": "xyz"}, False),
    ({"a": "x"}, {"a": ["x"]}, False),
    ({"a": {"$ne": "x"}}, {"a": ["x"]}, True),
    ({"$not": {"a": 1}}, {}, True),
    ({"$not": {"a": {"$ne": 1}}}, {}, False),
    ({"$or": [{"a": 1}, {"b": 2}]}, {"b": 2}, True),
    ({"$and": [{"a": 1}, {"b": 2}]}, {"b": 2}, False),
    ({"a": 1, "b": 2}, {"a": 1, "b": 2}, True),
    ({}, {"a": 1}, True),
    (None, {}, True),
])
def test_reference_semantics(where, meta, want):
    assert evaluate(where, meta) is want


def test_parse_tree():
    node = parse({"a": {"$gt": 1, "$lt": 5}, "$or": [{"b": "x"}, {"$not": {"c": True}}]})
    assert node == And((Cmp("a", "$gt", 1), Cmp("a", "$lt", 5), Or((Cmp("b", "$eq", "x"), Not(Cmp("c", "$eq", True))))))
    assert parse({"a": {"$in": [1, 2]}}) == Cmp("a", "$in", (1, 2))


@pytest.mark.parametrize("bad, words", [
    ({"a": {"$regex": "x"}}, "$regex"),
    ({"a": {"$gt": "x"}}, "$gt takes a number"),
    ({"a": {"$gt": True}}, "$gt takes a number"),
    ({"a": {"$in": []}}, "non-empty list"),
    ({"$xor": []}, "$xor"),
    ({"a": None}, "where['a']"),
    ({"a": [1]}, "where['a']"),
    ([1], "dict"),
    ({"$and": [{"a": 1}, {"b": {"$nope": 1}}]}, "where['$and'][1]['b']['$nope']"),
])
def test_errors_name_the_place(bad, words):
    with pytest.raises(errors.InvalidFilterError) as info:
        parse(bad)
    assert words in str(info.value)
