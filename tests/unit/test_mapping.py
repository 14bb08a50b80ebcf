"""The core's mapping of native collections (CONTRACT §7), independent of any backend."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pytest

from vecbridge import errors
from vecbridge.mapping import Conversions, Field, NativeSchema, decide, id_from_native, id_to_native, to_metadata

QUICK = NativeSchema("quick", (Field("id", "int", "INT64", primary=True), Field("vector", "vector", dimension=8),
                               Field("text", "string"), Field("year", "int"), Field("tags", "array", element="string"),
                               Field("meta", "json")), metric="cosine", free_keys=True)


def test_detection_rules():
    m = decide(QUICK)
    assert (m.id_field, m.id_kind, m.vector_field, m.dimension, m.metric) == ("id", "int", "vector", 8, "cosine")
    assert (m.document_field, m.metadata_field, m.metadata_fields, m.free_keys) == ("text", "meta", ("year", "tags"), True)
    assert any("free keys" in line for line in m.describe())


def test_options_override_detection():
    m = decide(QUICK, {"document_field": "meta", "metric": "l2"} | {"document_field": "text", "metadata_fields": "year"})
    assert m.metric == "l2" and m.metadata_fields == ("year",)
    with pytest.raises(errors.UnsupportedFeatureError, match="has no field 'nope'"):
        decide(QUICK, {"vector_field": "nope"})


def test_several_vectors_or_no_metric_need_an_option():
    two = NativeSchema("two", (Field("pk", "string", primary=True), Field("a", "vector", dimension=4),
                               Field("b", "vector", dimension=8)))
    with pytest.raises(errors.UnsupportedFeatureError, match=r"several vector fields \(a, b\).*vector_field"):
        decide(two, {"metric": "l2"})
    with pytest.raises(errors.UnsupportedFeatureError, match=r"\?metric="):
        decide(two, {"vector_field": "b"})
    assert decide(two, {"vector_field": "b", "metric": "ip"}).dimension == 8


def test_the_value_rule_and_its_counts():
    conv = Conversions()
    got = to_metadata({"a": {"b": 1, "c": {"d": "x"}}, "n": None, "t": dt.datetime(2024, 5, 1, 12, 30),
                       "d": dt.date(2024, 5, 1), "u": uuid.UUID(int=5), "dec": decimal.Decimal("2.5"),
                       "i": decimal.Decimal(7), "l": [1, None, 2], "mix": [1, 2.5]}, conv)
    assert got == {"a.b": 1, "a.c.d": "x", "t": "2024-05-01T12:30:00", "d": "2024-05-01",
                   "u": "00000000-0000-0000-0000-000000000005", "dec": 2.5, "i": 7, "l": [1, 2], "mix": [1.0, 2.5]}
    assert type(got["i"]) is int
    assert conv["nested objects as dotted keys"] == 2 and conv["null values left out"] == 1
    assert conv["dates and timestamps as ISO-8601 strings"] == 2
    with pytest.raises(errors.InvalidMetadataError, match="'blob'"):
        to_metadata({"blob": b"\x00\x01"})
    with pytest.raises(errors.InvalidMetadataError, match="'x'.*mixed"):
        to_metadata({"x": ["a", 1]})


def test_ids_round_trip_and_refuse_what_the_key_cannot_take():
    assert id_from_native(42) == "42" and id_to_native("42", "int") == 42
    u = uuid.uuid4()
    assert id_to_native(id_from_native(u), "uuid") == u
    for bad in ("042", "4.2", "x", str(2**63)):
        with pytest.raises(errors.InvalidRecordError, match="whole number"):
            id_to_native(bad, "int")
    with pytest.raises(errors.InvalidRecordError, match="canonical"):
        id_to_native(str(u).upper(), "uuid")
    assert id_to_native("any text", "string") == "any text"
