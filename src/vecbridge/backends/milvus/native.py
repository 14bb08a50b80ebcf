"""Milvus collections vecbridge did not create: described, mapped by the core, read and written.

A collection made with pymilvus's quick setup (INT64 ``id``, ``vector``, dynamic fields) or
with a schema of its own (INT64 or VARCHAR key, several vector fields, scalar, ARRAY and JSON
fields, dynamic fields) is described as a :class:`vecbridge.mapping.NativeSchema`
(:func:`describe`: the metric is the one of the chosen vector field's index) and mapped by
:func:`vecbridge.mapping.decide` with the URL options (``vector_field`` chooses among several
vector fields).  :class:`NativeCollection` is a :class:`.collection.MilvusCollection` with
the layout pieces overridden: the key and vector field, the fields fetched, rows to records
(values by :func:`vecbridge.mapping.to_metadata`), and the filter compiler.

Why the workarounds:

* Dotted metadata keys are paths: a JSON value ``{"k": {"z": 1}}`` reads as ``k.z`` (the
  core's one rule), so a filter on ``k.z`` compiles to ``field["k"]["z"]`` and a write of
  ``k.z`` nests it back.  A native key that itself contains a dot is therefore read but
  cannot be filtered on exactly.
* A comparison the field's type cannot hold (a string against an INT64 field, a range on a
  VARCHAR) is false, not an error: the engines refuse such expressions, while the contract
  says such a record simply does not match.  Written as ``key in []`` (both engines accept it).
* A document field cannot hold ``None`` (Milvus 2.3 has no nullable fields): ``None`` is
  written as ``""``.
* Milvus Lite's three-valued comparisons on missing JSON keys are guarded under negation
  with ``exists``, as in :mod:`.translator`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ...base import RawHit
from ...errors import InvalidRecordError, UnsupportedFeatureError, VecbridgeError
from ...filters import Cmp
from ...mapping import (
    CollectionMapping,
    Conversions,
    Field,
    NativeSchema,
    decide,
    id_from_native,
    id_to_native,
    split_metadata,
    to_metadata,
)
from ...types import Record
from ...validation import Batch
from .codec import METRIC_TYPES, vectors_of
from .collection import MilvusCollection, Program
from .translator import Compiler, number_literal, string_literal

if TYPE_CHECKING:
    from .client import MilvusClient

__all__ = ["NativeCollection", "describe", "open_native"]

_KINDS = {"INT8": "int", "INT16": "int", "INT32": "int", "INT64": "int", "VARCHAR": "string", "STRING": "string",
          "FLOAT": "float", "DOUBLE": "float", "BOOL": "bool", "JSON": "json", "ARRAY": "array",
          "FLOAT_VECTOR": "vector"}
_METRICS = {v: k for k, v in METRIC_TYPES.items()}
DYNAMIC = "$meta"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _type_name(t: Any) -> str:
    return str(getattr(t, "name", t)).upper()


def describe(name: str, desc: Mapping[str, Any], metrics: Mapping[str, str | None],
             vector_field: str | None = None) -> NativeSchema:
    """The schema of ``desc`` (pymilvus ``describe_collection``); ``metrics``: each vector
    field's index metric, as Milvus names it; the metric is the one of ``vector_field``'s index
    (default: of the only vector field)."""
    fields = []
    for f in desc.get("fields", []):
        tname = _type_name(f["type"])
        kind = _KINDS.get(tname, "other")
        element = _KINDS.get(_type_name(f.get("element_type")), "other") if kind == "array" else None
        dim = int(f.get("params", {}).get("dim", 0)) or None if kind == "vector" else None
        fields.append(Field(f["name"], kind, tname, bool(f.get("is_primary")), dim, element))
    vectors = [f.name for f in fields if f.kind == "vector"]
    chosen = vector_field or (vectors[0] if len(vectors) == 1 else None)
    metric = _METRICS.get(str(metrics.get(chosen) or "").upper()) if chosen else None
    return NativeSchema(name, tuple(fields), metric, free_keys=bool(desc.get("enable_dynamic_field")))


def _metrics(client: MilvusClient, name: str, desc: Mapping[str, Any]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    n, opts = client.native, client.call_options()
    for f in desc.get("fields", []):
        if _type_name(f["type"]) != "FLOAT_VECTOR":
            continue
        names = n.list_indexes(name, field_name=f["name"], **opts)
        info = n.describe_index(name, names[0], **opts) if names else {}
        out[f["name"]] = (info or {}).get("metric_type")
    return out


def nullable_fields(desc: Mapping[str, Any]) -> frozenset[str]:
    """The fields of ``desc`` that may hold null (Milvus 2.5+, Milvus Lite 3)."""
    return frozenset(f["name"] for f in desc.get("fields", []) if f.get("nullable"))


def open_native(client: MilvusClient, name: str, desc: Mapping[str, Any], options: Mapping[str, Any] | None = None,
                cls: type[NativeCollection] | None = None) -> NativeCollection:
    """The collection ``name`` mapped by the core with ``options`` (default: the client's
    mapping options), as a ``cls`` (default :class:`NativeCollection`)."""
    if options is None:
        options = client.mapping_options
    opts = {k: v for k, v in options.items() if v not in (None, "")}
    schema = describe(name, desc, _metrics(client, name, desc), opts.get("vector_field"))
    mapping = decide(schema, opts)
    if mapping.id_field is None:
        raise UnsupportedFeatureError(f"milvus collection {name!r} has no primary key field")
    info: dict[str, Any] = {}
    names = client.native.list_indexes(name, field_name=mapping.vector_field, **client.call_options())
    if names:
        info = client.native.describe_index(name, names[0], **client.call_options()) or {}
    spec = client._spec_from(None, info)
    client._ensure_loaded(name)
    return (cls or NativeCollection)(client, mapping, schema, spec, nullable_fields(desc))


class NativeCompiler(Compiler):
    """Filters onto the real fields: a metadata field by its name, other keys as paths into
    the metadata JSON field or the dynamic fields."""

    def __init__(self, coll: NativeCollection, three_valued: bool, doubles: bool):
        super().__init__(three_valued, doubles)
        self.c = coll
        self.false = f"{coll._key} in []"

    def _resolve(self, key: str) -> tuple[str, Field | None] | None:
        """(expression, the real field or None for a JSON path); None: the key has nowhere to be."""
        m, fields = self.c.mapping, self.c.schema
        if key in m.metadata_fields:
            f = fields.field(key)
            assert f is not None
            return key, f if f.kind != "json" else None
        head, _, rest = key.partition(".")
        if rest and head in m.metadata_fields and (f := fields.field(head)) is not None and f.kind == "json":
            return head + _segments(rest), None
        if m.metadata_field is not None:
            return m.metadata_field + _segments(key), None
        if m.free_keys and fields.field(head) is None:
            # a dynamic key by its bare name where it is one (Milvus Lite's functions take no
            # ``$meta[...]``); others through ``$meta``
            if _IDENT.fullmatch(head):
                return head + (_segments(rest) if rest else ""), None
            return DYNAMIC + _segments(key), None
        return None

    def _literal(self, value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return string_literal(value)
        return self.number(value)

    def _cmp(self, c: Cmp, negated: bool) -> str:
        op, value = c.op, c.value
        if op == "$ne":
            return f"not ({self._cmp(Cmp(c.key, '$eq', value), not negated)})"
        if op == "$nin":
            return f"not ({self._cmp(Cmp(c.key, '$in', value), not negated)})"
        if op == "$in":
            unique = {(type(v), v): v for v in value}.values()
            parts = [self._cmp(Cmp(c.key, "$eq", v), negated) for v in unique]
            return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"
        found = self._resolve(c.key)
        if op == "$exists":
            if found is None:
                present = self.false
            elif found[1] is not None and found[0] in self.c._nullable:
                present = f"({found[0]} is not null)"
            elif found[1] is not None:  # a real field that holds no nulls is in every row
                present = f"not ({self.false})"
            else:
                present = f"(exists {found[0]})"
            return present if value else f"not ({present})"
        if found is None:
            return self.false
        path, field = found
        if field is not None and not _fits(field, op, value):
            return self.false
        if op == "$contains":
            fn = "array_contains" if field is not None else "json_contains_any"
            if field is not None:
                return f"{fn}({path}, {self._literal(value)})"
            return f"{fn}({path}, [{self._literal(value)}])"
        symbol = {"$eq": "==", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}[op]
        test = f"{symbol} {self._literal(value)}"
        if field is not None and path in self.c._nullable and negated:
            # a null compares to unknown (SQL's logic), and so does its negation: guarded
            return f"(({path} is not null) and {path} {test})"
        return f"{path} {test}" if field is not None else self.guard(path, test, negated)


def _segments(key: str) -> str:
    return "".join(f"[{string_literal(part)}]" for part in key.split("."))


def _fits(field: Field, op: str, value: Any) -> bool:
    """Whether ``op value`` can hold on ``field`` (else: false, see the module)."""
    kind = field.element if field.kind == "array" else field.kind
    if (op == "$contains") != (field.kind == "array"):
        return False
    if isinstance(value, bool):
        return kind == "bool" and op in ("$eq", "$contains")
    if isinstance(value, str):
        return kind == "string" and op in ("$eq", "$contains")
    if kind == "int" and isinstance(value, float) and op in ("$eq", "$contains"):
        return value.is_integer() and number_literal(value) is not None
    return kind in ("int", "float")


class NativeCollection(MilvusCollection):
    """A Milvus collection of its own schema, read and written through its mapping."""

    def __init__(self, client: MilvusClient, mapping: CollectionMapping, schema: NativeSchema, index: dict[str, Any],
                 nullable: frozenset[str] = frozenset()):
        super().__init__(client, mapping.collection, mapping.dimension, mapping.metric, index)
        #: What reads converted by the core's one rule (vecbridge.mapping.to_metadata), by rule.
        self.conversions = Conversions()
        self._compiler = NativeCompiler(self, client.three_valued, doubles=not client.lite)
        self._set_mapping(mapping, schema, nullable)

    def _set_mapping(self, mapping: CollectionMapping, schema: NativeSchema, nullable: frozenset[str]) -> None:
        self.mapping, self.schema, self._nullable = mapping, schema, nullable
        assert mapping.id_field is not None and mapping.vector_field is not None
        self._key, self._vec = mapping.id_field, mapping.vector_field
        self._meta_names = tuple(mapping.metadata_fields) + ((mapping.metadata_field,) if mapping.metadata_field else ())

    # -- configuration: nothing of vecbridge's is stored in a native collection -------------
    def _read_config(self) -> dict[str, Any] | None:
        return {"layout": self.mapping.layout}

    def _write_config(self, doc: dict[str, Any]) -> None:
        raise UnsupportedFeatureError(f"milvus collection {self.name!r} was not created by vecbridge: it keeps no "
                                      "vecbridge configuration")

    # -- the layout ------------------------------------------------------------------------
    def _fields(self, include: frozenset[str]) -> list[str]:
        out = [self._key]
        if "vector" in include:
            out.append(self._vec)
        if "metadata" in include:
            out += [n for n in self._meta_names if n not in out]
            if self.mapping.free_keys:
                out.append(DYNAMIC)
        if "document" in include and self.mapping.document_field:
            out.append(self.mapping.document_field)
        return out

    def _id_of(self, value: Any) -> str:  # type: ignore[override]
        return id_from_native(value)

    def _metadata(self, row: Mapping[str, Any]) -> dict[str, Any]:
        m = self.mapping
        values: dict[str, Any] = {}
        if m.free_keys:
            schema_names = {f.name for f in self.schema.fields}
            values.update({k: v for k, v in row.items() if k not in schema_names and k != DYNAMIC})
            values.update(row.get(DYNAMIC) or {})
        if m.metadata_field and isinstance(row.get(m.metadata_field), Mapping):
            values.update(row[m.metadata_field])
        # a null in a nullable field is a key the record lacks: not a conversion
        values.update({n: row.get(n) for n in m.metadata_fields if not (n in self._nullable and row.get(n) is None)})
        try:
            return to_metadata(values, self.conversions)
        except VecbridgeError as exc:
            raise InvalidRecordError(f"milvus collection {self.name!r}, id {row.get(self._key)!r}: {exc}") from exc

    def _parts(self, row: Mapping[str, Any], include: frozenset[str]) -> tuple[dict[str, Any] | None, str | None]:
        meta = self._metadata(row) if "metadata" in include else None
        doc = row.get(self.mapping.document_field) if "document" in include and self.mapping.document_field else None
        return meta, doc

    def _records(self, rows: Any, include: frozenset[str]) -> list[Record]:
        rows = rows[:]  # pymilvus's lazy row list: decode once
        vecs = vectors_of(rows, self._vec) if "vector" in include else None
        out = []
        for i, row in enumerate(rows):
            meta, doc = self._parts(row, include)
            out.append(Record(self._id_of(row[self._key]), vecs[i] if vecs is not None else None, meta, doc))
        return out

    def _hit(self, hit: Any, row: dict[str, Any], vector: np.ndarray | None, include: frozenset[str]) -> RawHit:
        meta, doc = self._parts(row, include)
        # pymilvus names a hit's key after the primary field the engine reports (Milvus Lite: the
        # field's name; Milvus 2.3.5 reports none, and the key comes back as "id")
        key = hit.pk if getattr(hit, "pk", None) is not None else hit.get(self._key, hit.get("id"))
        return RawHit(self._id_of(key), float(hit["distance"]), meta, doc, vector)

    def _native_ids(self, ids: list[str], where: str = "ids") -> list[Any]:
        return [id_to_native(i, self.mapping.id_kind, where) for i in ids]

    def _key_literal(self, value: Any) -> str:
        return str(value) if isinstance(value, int) else string_literal(value)

    def _ids_cond(self, ids: list[str]) -> str:
        try:
            native = self._native_ids(ids)
        except InvalidRecordError:  # an id the key cannot hold names no record: look up the others
            native = [v for i in ids for v in self._native_ids_or_none(i)]
        return f"{self._key} in [{', '.join(self._key_literal(v) for v in native)}]"

    def _native_ids_or_none(self, id_: str) -> list[Any]:
        try:
            return self._native_ids([id_])
        except InvalidRecordError:
            return []

    def _everything(self) -> str:
        return f"not ({self._key} in [])"

    # -- writes ----------------------------------------------------------------------------
    def _upsert(self, b: Batch) -> None:
        with self._native_call("upsert"):
            self._drive(self._p_upsert(b))

    def _vb_check_batch(self, b: Batch) -> None:
        """The checks of a write of ``b`` (InvalidRecordError / InvalidMetadataError), writing nothing."""
        self._rows(b)

    def _rows(self, b: Batch, conv: Conversions | None = None) -> list[dict[str, Any]]:
        """The native rows of ``b``; a record the schema cannot take -> InvalidRecordError naming it;
        ``conv`` counts what the write converts."""
        assert b.vectors is not None and b.metadatas is not None and b.documents is not None
        m = self.mapping
        extra_vectors = [f.name for f in self.schema.fields if f.kind == "vector" and f.name != self._vec]
        if extra_vectors:
            raise UnsupportedFeatureError(f"collection {self.name!r} has other vector fields "
                                          f"({', '.join(extra_vectors)}) that a record cannot fill; nothing was written")
        needed = [f.name for f in self.schema.fields
                  if f.kind != "vector" and f.name != self._key and f.name not in self._nullable]
        rows = []
        for i, id_ in enumerate(b.ids):
            row: dict[str, Any] = {self._key: id_to_native(id_, m.id_kind, f"ids[{i}]"),
                                   self._vec: b.vectors[i].tolist()}
            if m.document_field:
                doc = b.documents[i]
                # "" where the field holds no nulls (Milvus 2.3): see the module
                row[m.document_field] = doc if doc is not None or m.document_field in self._nullable else ""
                if doc is None and conv is not None and m.document_field not in self._nullable:
                    conv["missing documents written as empty strings"] += 1
            elif b.documents[i] is not None:
                raise InvalidRecordError(f"documents[{i}] (id {id_!r}): collection {self.name!r} has no document "
                                         "field; nothing was written")
            row.update(self._meta_row(b.metadatas[i] or {}, i, id_))
            missing = [n for n in needed if n not in row]
            if missing:
                raise InvalidRecordError(f"metadatas[{i}] (id {id_!r}): collection {self.name!r}: the fields "
                                         f"{', '.join(missing)} need a value in every record (metadata keys of those "
                                         "names); nothing was written")
            rows.append(row)
        return rows

    def _p_upsert(self, b: Batch) -> Program:
        rows = self._rows(b, self.conversions)
        for start in range(0, len(rows), 1000):
            yield "upsert", (self.name, rows[start:start + 1000]), self._mc.call_options()
            self._mc.wrote(self.name, 0)  # no timestamp asked for: the next read is Strong

    def _meta_row(self, meta: dict[str, Any], i: int, id_: str) -> dict[str, Any]:
        m = self.mapping
        where = f"metadatas[{i}] (id {id_!r})"
        try:
            real, rest = split_metadata(meta, m, self._json_keys(meta))
        except VecbridgeError as exc:
            raise InvalidRecordError(f"{where}: {exc}; nothing was written") from exc
        out: dict[str, Any] = {}
        for key, value in real.items():
            head, _, tail = key.partition(".")
            if tail and key not in m.metadata_fields:  # a dotted key of a JSON field
                _nest(out.setdefault(head, {}), tail, value)
                continue
            field = self.schema.field(key)
            assert field is not None
            if not _holds(field, value):
                raise InvalidRecordError(f"{where}: the field {key!r} is {field.native_type}"
                                         f"{' of ' + str(field.element) if field.element else ''}; it cannot hold "
                                         f"{value!r}; nothing was written")
            out[key] = value
        target: dict[str, Any] = out.setdefault(m.metadata_field, {}) if m.metadata_field else out
        for key, value in rest.items():
            head = key.partition(".")[0]
            if target is out and self.schema.field(head) is not None:
                raise InvalidRecordError(f"{where}: the key {key!r} would overwrite the field {head!r}; nothing "
                                         "was written")
            _nest(target, key, value)
        return out

    def _json_keys(self, meta: Mapping[str, Any]) -> list[str]:
        """Dotted keys that belong to a JSON field listed as a metadata field of its own."""
        jsons = {f for f in self.mapping.metadata_fields if (s := self.schema.field(f)) is not None and s.kind == "json"}
        return [k for k in meta if k.partition(".")[0] in jsons and "." in k]


def _nest(target: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    for p in parts[:-1]:
        nxt = target.get(p)
        if not isinstance(nxt, dict):
            nxt = target[p] = {}
        target = nxt
    target[parts[-1]] = value


def _holds(field: Field, value: Any) -> bool:
    def one(kind: str | None, v: Any) -> bool:
        if kind == "bool":
            return isinstance(v, bool)
        if kind == "int":
            return isinstance(v, int) and not isinstance(v, bool)
        if kind == "float":
            return isinstance(v, (int, float)) and not isinstance(v, bool)
        if kind == "string":
            return isinstance(v, str)
        return kind == "json"
    if field.kind == "array":
        return isinstance(value, list) and all(one(field.element, v) for v in value)
    return one(field.kind, value)
