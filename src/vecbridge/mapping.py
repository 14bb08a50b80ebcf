"""Collections vecbridge did not create: how a native schema maps onto the contract's records.

A backend *describes* a collection it finds (:class:`NativeSchema`: its fields and their
types, the metric its index says, whether it has free-form keys); the core *decides* the
mapping here, once, for every backend (CONTRACT §7):

=========  ==============================================================  ===================
part       detected as                                                      URL option
=========  ==============================================================  ===================
id         the primary key / point id, given back as ``str``                ``id_field``
vector     the only vector field (several: an error naming them)            ``vector_field``
document   the backend's own documents; else a string field named           ``document_field``
           ``document``, ``text``, ``content`` or ``page_content``
metadata   the backend's own metadata / free keys; the keys of a JSON field  ``metadata_field``,
           named ``metadata``, ``meta`` or ``cmetadata``; every other       ``metadata_fields``
           scalar or array field
metric     the collection's distance / index metric                         ``metric``
=========  ==============================================================  ===================

Values the contract's metadata cannot hold are converted by one rule (:func:`to_metadata`):
nested objects -> dotted keys, ``None`` -> the key left out, dates and timestamps -> ISO-8601
strings, other numeric types -> ``int``/``float``, UUIDs -> their canonical string; anything
else is refused with the field named.  Each conversion is counted (:class:`Conversions`) so
that a migration's plan can list them before it writes.
"""

from __future__ import annotations

import datetime as _dt
import decimal
import math
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidMetadataError, InvalidRecordError, UnsupportedFeatureError
from .types import METRICS
from .validation import INT64_MAX, INT64_MIN, plain_scalar

__all__ = [
    "DOCUMENT_NAMES",
    "LAYOUTS",
    "MAPPING_OPTIONS",
    "METADATA_NAMES",
    "CollectionMapping",
    "Conversions",
    "Field",
    "NativeSchema",
    "decide",
    "id_from_native",
    "id_to_native",
    "split_metadata",
    "to_metadata",
]

LAYOUTS = ("vecbridge", "native", "langchain", "llamaindex")
DOCUMENT_NAMES = ("document", "text", "content", "page_content")
METADATA_NAMES = ("metadata", "meta", "cmetadata")
#: The URL options of a mapping (each backend accepts them besides its own).
MAPPING_OPTIONS = ("id_field", "vector_field", "document_field", "metadata_field", "metadata_fields", "metric",
                   "layout")
#: Field kinds a backend describes its fields with.
KINDS = ("id", "vector", "string", "int", "float", "bool", "json", "array", "datetime", "date", "uuid", "bytes",
         "other")


@dataclass(frozen=True)
class Field:
    """One field of a native collection, as its backend describes it."""

    name: str
    kind: str
    native_type: str = ""  # the database's own name of the type, for messages
    primary: bool = False
    dimension: int | None = None  # vectors
    element: str | None = None  # arrays: the kind of their elements

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name!r}: kind {self.kind!r} is not one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class NativeSchema:
    """What a backend found: the collection's fields, its metric (``None``: nothing says), and
    whether it has free-form keys (Chroma's metadata, Milvus's dynamic fields, Qdrant's payload)
    or documents of its own (Chroma)."""

    collection: str
    fields: tuple[Field, ...]
    metric: str | None = None
    free_keys: bool = False
    own_documents: bool = False
    layout: str = "native"

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)


@dataclass(frozen=True)
class CollectionMapping:
    """The decided mapping of a native collection onto records."""

    collection: str
    id_field: str | None  # None: the backend's own ids (Chroma, Qdrant point ids)
    id_kind: str
    vector_field: str | None
    dimension: int
    metric: str
    document_field: str | None  # None: no document, or the backend's own documents
    own_documents: bool
    metadata_field: str | None  # a JSON field whose keys are metadata keys
    metadata_fields: tuple[str, ...]  # fields that are metadata keys of their own
    free_keys: bool
    layout: str = "native"
    notes: tuple[str, ...] = field(default=())

    def describe(self) -> list[str]:
        """The mapping in words, one line each (``vecbridge info``)."""
        return [
            f"id:       {self.id_field or '(the point id)'} ({self.id_kind}), given back as a string",
            f"vector:   {self.vector_field or '(the collection vector)'} ({self.dimension} dimensions, {self.metric})",
            f"document: {self.document_field or ('(its own documents)' if self.own_documents else 'none')}",
            f"metadata: {', '.join(filter(None, [f'the keys of {self.metadata_field}' if self.metadata_field else '', ', '.join(self.metadata_fields), 'free keys' if self.free_keys else ''])) or 'none'}",  # noqa: E501
            *self.notes,
        ]


def _one(options: Mapping[str, Any], key: str) -> str | None:
    value = options.get(key)
    return None if value in (None, "") else str(value)


def decide(schema: NativeSchema, options: Mapping[str, Any] | None = None) -> CollectionMapping:
    """The mapping of ``schema`` under the URL ``options`` (``id_field`` …); a part that cannot
    be decided raises :class:`UnsupportedFeatureError` saying which option settles it."""
    opts = dict(options or {})
    where = f"collection {schema.collection!r}"
    names = {f.name for f in schema.fields}
    for key in ("id_field", "vector_field", "document_field", "metadata_field"):
        given = _one(opts, key)
        if given is not None and given not in names:
            raise UnsupportedFeatureError(f"{where} has no field {given!r} ({key}); its fields are "
                                          f"{', '.join(sorted(names)) or 'none'}")
    # id
    id_name = _one(opts, "id_field")
    if id_name is None:
        primary = [f for f in schema.fields if f.primary]
        id_name = primary[0].name if primary else None
    id_spec = schema.field(id_name) if id_name else None
    id_kind = id_spec.kind if id_spec is not None else "string"
    if id_spec is not None and id_kind not in ("int", "string", "uuid", "id"):
        raise UnsupportedFeatureError(f"{where}: the key {id_name!r} is {id_spec.native_type or id_kind}; "
                                      "ids must be integers, strings or UUIDs")
    # vector
    vectors = [f for f in schema.fields if f.kind == "vector"]
    vec_name = _one(opts, "vector_field")
    if vec_name is None:
        if len(vectors) > 1:
            raise UnsupportedFeatureError(f"{where} has several vector fields ({', '.join(f.name for f in vectors)}): "
                                          "choose one with ?vector_field=NAME")
        if not vectors:
            raise UnsupportedFeatureError(f"{where} has no vector field")
        vec = vectors[0]
    else:
        vec = schema.field(vec_name)  # type: ignore[assignment]
        if vec is None or vec.kind != "vector":
            raise UnsupportedFeatureError(f"{where}: {vec_name!r} is not a vector field")
    if not vec.dimension:
        raise UnsupportedFeatureError(f"{where}: the dimension of {vec.name!r} is unknown")
    # metric
    metric = _one(opts, "metric") or schema.metric
    if metric is None:
        raise UnsupportedFeatureError(f"{where}: nothing says its metric (no index or distance); add "
                                      f"?metric=cosine, l2 or ip to the URL")
    if metric not in METRICS:
        raise UnsupportedFeatureError(f"{where}: metric {metric!r} is not one of {', '.join(METRICS)}")
    # document
    doc_name = _one(opts, "document_field")
    if doc_name is None and not schema.own_documents:
        doc_name = next((f.name for n in DOCUMENT_NAMES for f in schema.fields if f.name == n and f.kind == "string"),
                        None)
    elif doc_name is not None and schema.field(doc_name).kind != "string":  # type: ignore[union-attr]
        raise UnsupportedFeatureError(f"{where}: the document field {doc_name!r} is not a string field")
    # metadata
    meta_name = _one(opts, "metadata_field")
    if meta_name is None:
        meta_name = next((f.name for n in METADATA_NAMES for f in schema.fields if f.name == n and f.kind == "json"),
                         None)
    elif schema.field(meta_name).kind != "json":  # type: ignore[union-attr]
        raise UnsupportedFeatureError(f"{where}: the metadata field {meta_name!r} is not a JSON field")
    taken = {id_name, vec.name, doc_name, meta_name}
    listed = _one(opts, "metadata_fields")
    if listed is not None:
        meta_fields = tuple(x.strip() for x in listed.split(",") if x.strip())
        unknown = [x for x in meta_fields if x not in names]
        if unknown:
            raise UnsupportedFeatureError(f"{where} has no field {', '.join(map(repr, unknown))} (metadata_fields)")
    else:
        meta_fields = tuple(f.name for f in schema.fields
                            if f.name not in taken and f.kind not in ("vector", "bytes", "other", "id"))
    return CollectionMapping(schema.collection, id_name, id_kind, vec.name, int(vec.dimension), metric, doc_name,
                    schema.own_documents and doc_name is None, meta_name, meta_fields, schema.free_keys,
                    _one(opts, "layout") or schema.layout)


# -- ids --------------------------------------------------------------------------------
def id_from_native(value: Any) -> str:
    """A native id as the contract's string: ``42`` -> ``"42"``, a UUID in canonical form."""
    if isinstance(value, bool):
        raise InvalidRecordError(f"a boolean id {value!r} cannot be a record id")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    return str(value)


def id_to_native(id_: str, kind: str, where: str = "ids") -> Any:
    """The contract's string id as a native one of ``kind``; an id the key cannot take ->
    :class:`InvalidRecordError` naming it (nothing is written)."""
    if kind == "int":
        if id_.lstrip("-").isdigit() and id_ == str(int(id_)) and INT64_MIN <= int(id_) <= INT64_MAX:
            return int(id_)
        raise InvalidRecordError(f"{where}: {id_!r} is not a whole number in canonical form; this collection's key is "
                                 "an integer")
    if kind == "uuid":
        try:
            parsed = uuid.UUID(id_)
        except ValueError:
            raise InvalidRecordError(f"{where}: {id_!r} is not a UUID; this collection's key is a UUID") from None
        if str(parsed) != id_:
            raise InvalidRecordError(f"{where}: {id_!r} is a UUID not in canonical form (write {str(parsed)!r})")
        return parsed
    return id_


# -- values -----------------------------------------------------------------------------
class Conversions(Counter):  # type: ignore[type-arg]
    """How many values each rule of :func:`to_metadata` converted, by rule."""

    def lines(self) -> list[str]:
        return [f"{n:,} {rule}" for rule, n in sorted(self.items())]


def _scalar(value: Any, key: str, conv: Conversions | None) -> Any:
    value = plain_scalar(value)
    if type(value) in (str, bool, int):
        if type(value) is int and not INT64_MIN <= value <= INT64_MAX:
            raise InvalidMetadataError(f"the field {key!r} holds {value}, beyond a signed 64-bit integer")
        return value
    if type(value) is float:
        if not math.isfinite(value):
            raise InvalidMetadataError(f"the field {key!r} holds {value}, which metadata cannot hold")
        return value
    rule = None
    if isinstance(value, _dt.datetime) or isinstance(value, (_dt.date, _dt.time)):
        value, rule = value.isoformat(), "dates and timestamps as ISO-8601 strings"
    elif isinstance(value, uuid.UUID):
        value, rule = str(value), "UUIDs as strings"
    elif isinstance(value, decimal.Decimal):
        exponent = value.as_tuple().exponent
        whole = isinstance(exponent, int) and exponent >= 0
        value = int(value) if whole else float(value)
        if whole and not INT64_MIN <= value <= INT64_MAX:
            raise InvalidMetadataError(f"the field {key!r} holds {value}, beyond a signed 64-bit integer")
        rule = "decimals as int/float"
    else:
        raise InvalidMetadataError(f"the field {key!r} holds {type(value).__name__} {str(value)[:60]!r}, which "
                                   "metadata cannot hold (str, int, float, bool or a list of one of those)")
    if conv is not None:
        conv[rule] += 1
    return value


def to_metadata(values: Mapping[str, Any], conv: Conversions | None = None, prefix: str = "") -> dict[str, Any]:
    """Native key/values as contract metadata, by the one rule (module docstring)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}" if prefix or type(key) is not str else key
        kind = type(value)
        # the common case first: a value metadata holds as it is (a scan maps every value of every record)
        if kind is str or kind is bool or (kind is int and INT64_MIN <= value <= INT64_MAX) or (
                kind is float and math.isfinite(value)):
            out[name] = value
            continue
        if value is None:
            if conv is not None:
                conv["null values left out"] += 1
            continue
        if isinstance(value, Mapping):
            if conv is not None:
                conv["nested objects as dotted keys"] += 1
            out.update(to_metadata(value, conv, f"{name}."))
        elif isinstance(value, (list, tuple)):
            items = [v if type(v) is str or type(v) is bool else _scalar(v, name, conv) for v in value if v is not None]
            if len(items) != len(value) and conv is not None:
                conv["null list elements left out"] += 1
            if len({bool if type(v) is bool else type(v) for v in items}) > 1:
                if all(type(v) in (int, float) for v in items):
                    items = [float(v) for v in items]
                    if conv is not None:
                        conv["lists of ints and floats as floats"] += 1
                else:
                    raise InvalidMetadataError(f"the field {name!r} holds a list of mixed types, which metadata "
                                               "cannot hold")
            out[name] = items
        else:
            out[name] = _scalar(value, name, conv)
    return out


def split_metadata(meta: Mapping[str, Any], mapping: CollectionMapping,
                   columns: Iterable[str] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """Contract metadata written back: ``(values of real fields, keys for the JSON field or the
    free keys)``; a key that has nowhere to go -> :class:`InvalidMetadataError` naming it."""
    real = set(mapping.metadata_fields) | set(columns)
    fields_, rest = {}, {}
    for key, value in meta.items():
        if key in real:
            fields_[key] = value
        elif mapping.metadata_field is not None or mapping.free_keys:
            rest[key] = value
        else:
            raise InvalidMetadataError(f"the metadata key {key!r} has no field in collection {mapping.collection!r} "
                                       f"(its metadata fields are {', '.join(sorted(real)) or 'none'})")
    return fields_, rest
