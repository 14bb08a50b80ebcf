"""Tables and views vecbridge did not create: any relation with a ``vector(n)`` column.

The client finds them in every schema the user may read (:func:`find`), describes each as a
:class:`vecbridge.mapping.NativeSchema` (:func:`describe`: columns and their kinds, the
primary key, the metric from the ANN index's operator class) and lets the core decide the
mapping (:func:`vecbridge.mapping.decide`, with the URL options).  :class:`NativeCollection`
then reads and writes the relation through that mapping with the SQL of
:class:`.collection.PgvectorCollection`, overriding only the layout pieces:

* the key column (int2/int4/int8, uuid, text) as the id: ``id_from_native`` reading,
  ``id_to_native`` writing (a non-integer id for an integer key is an InvalidRecordError
  when written, and simply matches nothing when read); keyset scans and partitions on it;
* metadata: the keys of the jsonb field (``mapping.to_metadata``: nested objects become
  dotted keys, nulls are left out) plus every scalar, array and json column, each value by
  the core's one rule, counted in ``collection.conversions``;
* filters on real columns compile to SQL on them, on the jsonb to the same tests at every
  path a dotted key can stand for (:mod:`.translator`), every value bound;
* writes map back (``split_metadata``): ``INSERT … ON CONFLICT (key)`` with every value
  checked against its column's type first, so that a value a column cannot take is an
  InvalidRecordError naming it and nothing is written.  A relation without a unique key (a
  view, a table without a primary key) is read-only.  The ANN index of a native table is
  never dropped for a bulk load, as vecbridge's own tables' is: it is the user's.

Columns are read in UTC (``SET TimeZone``), so a timestamptz reads as ``…+00:00``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from ...base import RawHit
from ...errors import (
    InvalidMetadataError,
    InvalidRecordError,
    UnsupportedFeatureError,
)
from ...filters import Node
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
from . import created, ddl
from .codec import dump_json, vector_param
from .collection import PgvectorCollection
from .nativefilters import compare as _compare
from .nativefilters import splits as _splits
from .ops import Many, Program, Transaction
from .translator import ColumnKey, JsonKey, compile_filter

if TYPE_CHECKING:
    from .client import PgvectorClient

__all__ = ["NativeCollection", "describe", "find", "open_native"]

_KINDS = {"int2": "int", "int4": "int", "int8": "int", "float4": "float", "float8": "float", "numeric": "float",
          "text": "string", "varchar": "string", "bpchar": "string", "name": "string", "citext": "string",
          "bool": "bool", "jsonb": "json", "json": "json", "uuid": "uuid", "date": "date",
          "timestamp": "datetime", "timestamptz": "datetime", "bytea": "bytes", "vector": "vector"}
_INT_RANGE = {"int2": 2**15, "int4": 2**31, "int8": 2**63}
_METRICS = {v: k for k, v in ddl.OPCLASSES.items()}

# temporary tables are no collections: every pooled session has one with a vector column, the
# staging table _vb_stage of upserts, and a superuser sees the others' in their pg_temp_N schemas
FIND = """
SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND NOT c.relispartition AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%%'
  AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')
  AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
              AND NOT a.attisdropped AND a.atttypid = %s)
ORDER BY 1, 2
"""
COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typname, a.atttypmod, a.attnotnull,
       a.atthasdef, coalesce(e.typname, '')
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type e ON e.oid = t.typelem AND t.typcategory = 'A'
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""
UNIQUE = """
SELECT a.attname, i.indisprimary FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indrelid = %s::regclass AND i.indisunique AND i.indnatts = 1 AND i.indpred IS NULL AND i.indexprs IS NULL
"""
ANN = """
SELECT a.attname, am.amname, opc.opcname, coalesce(ic.reloptions, '{}')
FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_am am ON am.oid = ic.relam
JOIN pg_opclass opc ON opc.oid = i.indclass[0] JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indrelid = %s::regclass AND am.amname IN ('hnsw', 'ivfflat')
"""
COMMENT = "SELECT obj_description(%s::regclass, 'pg_class')"


@dataclass(frozen=True)
class Column:
    name: str
    native_type: str  # format_type: what a value is cast to
    typname: str
    notnull: bool
    element: str  # an array's element typname


@dataclass(frozen=True)
class Relation:
    """What :func:`describe` found, besides the schema the core decides on."""

    schema: str
    table: str
    relkind: str
    columns: dict[str, Column]
    unique: frozenset[str]
    ann: dict[str, list[tuple[str, str, dict[str, str]]]]  # vector column -> (am, metric, options)
    comment: str = ""  # the table's COMMENT: a table vecbridge made in the native layout says so (.created)

    @property
    def name(self) -> str:
        return f"{self.schema}.{self.table}"

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.table)


def find(conn: psycopg.Connection, vector_oid: int) -> list[tuple[str, str, str]]:
    """(schema, table, relkind) of every readable relation with a vector column."""
    return [tuple(r) for r in conn.execute(FIND, (vector_oid,))]  # type: ignore[misc]


def _kind(typname: str, element: str) -> tuple[str, str | None]:
    if element:
        inner = _KINDS.get(element, "other")
        return ("array", inner) if inner in ("int", "float", "string", "bool", "uuid", "date", "datetime") else \
            ("other", None)
    return _KINDS.get(typname, "other"), None


def describe(conn: psycopg.Connection, schema: str, table: str, relkind: str,
             options: Mapping[str, Any]) -> tuple[NativeSchema, Relation]:
    """The native schema of ``schema.table`` and what the collection needs besides."""
    reg = sql.Identifier(schema, table).as_string(conn)
    cols: dict[str, Column] = {}
    fields: list[Field] = []
    unique = {r[0]: r[1] for r in conn.execute(UNIQUE, (reg,))}
    primary = next((k for k, is_pk in unique.items() if is_pk), None)
    ident = sql.Identifier(schema, table)
    # the comment before the columns: a first write deciding a created table's columns (.created)
    # commits its columns and its comment at once, so a comment read as decided here is followed
    # by columns that include them (read the other way round, a handle could see the old columns
    # and a decided comment, and write every key into the jsonb)
    comment = (conn.execute(COMMENT, (reg,)).fetchone() or [None])[0] or ""
    for name, ntype, typname, typmod, notnull, _hasdef, element in conn.execute(COLUMNS, (reg,)):
        cols[name] = Column(name, ntype, typname, bool(notnull), element)
        kind, inner = _kind(typname, element)
        dim = None
        if kind == "vector":
            dim = int(typmod) if typmod and typmod > 0 else None
            if dim is None:  # vector without a dimension: the first row's says
                row = conn.execute(sql.SQL("SELECT vector_dims({}) FROM {} WHERE {} IS NOT NULL LIMIT 1").format(
                    sql.Identifier(name), ident, sql.Identifier(name))).fetchone()
                dim = int(row[0]) if row is not None else None
        if name == primary and kind in ("int", "uuid", "string"):
            kind_pk = kind
        else:
            kind_pk = None
        fields.append(Field(name, kind, ntype, primary=name == primary and kind_pk is not None, dimension=dim,
                            element=inner))
    ann: dict[str, list[tuple[str, str, dict[str, str]]]] = {}
    for col, am, opclass, reloptions in conn.execute(ANN, (reg,)):
        metric = _METRICS.get(opclass)
        if metric is not None:
            opts = dict(o.split("=", 1) for o in reloptions if "=" in o)
            ann.setdefault(col, []).append((am, metric, opts))
    vectors = [f.name for f in fields if f.kind == "vector"]
    chosen = options.get("vector_field") or (vectors[0] if len(vectors) == 1 else None)
    metrics = {m for _, m, _ in ann.get(str(chosen), [])} if chosen else set()
    metric = metrics.pop() if len(metrics) == 1 else None
    if metric is None:  # an exact table vecbridge made in the native layout names its metric (.created)
        metric = created.comment_metric(comment)
    native = NativeSchema(f"{schema}.{table}", tuple(fields), metric)
    return native, Relation(schema, table, relkind, cols, frozenset(unique), ann, comment)


def open_native(client: PgvectorClient, conn: psycopg.Connection, schema: str, table: str, relkind: str
                ) -> NativeCollection:
    """The collection of ``schema.table`` under the client's mapping options; an
    UnsupportedFeatureError says why one cannot be opened."""
    options = {k: v for k, v in client.mapping_options.items() if v not in (None, "")}
    native, rel = describe(conn, schema, table, relkind, options)
    mapping = decide(native, options)
    if mapping.id_field is None:
        raise UnsupportedFeatureError(f"collection {rel.name!r} has no single-column primary key: name its key "
                                      "column with ?id_field=NAME")
    if native.field(mapping.id_field).kind not in ("int", "uuid", "string"):  # type: ignore[union-attr]
        raise UnsupportedFeatureError(f"collection {rel.name!r}: the key {mapping.id_field!r} is "
                                      f"{rel.columns[mapping.id_field].native_type}; keys must be int, bigint, "
                                      "uuid or text")
    return NativeCollection(client, mapping, rel)


def _numeric(value: float) -> Decimal:
    """A number for a numeric column that reads back as the same type: an int at scale 0, a float
    with a fraction digit (``1.0`` stays a float: mapping.to_metadata reads scale > 0 as float)."""
    if type(value) is int:
        return Decimal(value)
    d = Decimal(repr(value))
    exponent = d.as_tuple().exponent
    return d.quantize(Decimal("0.1")) if isinstance(exponent, int) and exponent >= 0 else d


class NativeCollection(PgvectorCollection):
    """A table or view vecbridge did not create, read and written through its mapping."""

    def __init__(self, client: PgvectorClient, mapping: CollectionMapping, rel: Relation, name: str | None = None):
        assert mapping.id_field is not None and mapping.vector_field is not None
        index = self._index(rel.ann.get(mapping.vector_field, []), mapping.metric, mapping.dimension)
        super().__init__(client, name or rel.name, mapping.dimension, mapping.metric, index, table=rel.ident)
        self.conversions = Conversions()
        self._set_layout(mapping, rel)

    @staticmethod
    def _q(name: str) -> str:
        return sql.Identifier(name).as_string(None).replace("%", "%%")

    def _set_layout(self, mapping: CollectionMapping, rel: Relation) -> None:
        """The SQL pieces of ``mapping`` on ``rel`` (again after the first write decided a
        created table's columns: :mod:`.created`)."""
        if rel.comment.startswith(created.DECIDED) and created.NOTES[0] not in mapping.notes:
            mapping = dataclasses.replace(mapping, notes=mapping.notes + created.NOTES)
        assert mapping.id_field is not None and mapping.vector_field is not None
        self.mapping = mapping
        self._rel = rel
        #: a table vecbridge made in the native layout whose metadata columns the first write decides
        self._pending = rel.comment.startswith(created.PENDING)
        q = self._q
        self._key = q(mapping.id_field)
        self._vec = q(mapping.vector_field)
        self._dist = self._distance_sql()
        key_col = rel.columns[mapping.id_field]
        self._key_type = key_col.native_type
        self._key_range = _INT_RANGE.get(key_col.typname)
        self._doc = q(mapping.document_field) if mapping.document_field else None
        self._json = mapping.metadata_field
        self._fields = [f for f in mapping.metadata_fields if f in rel.columns]
        tail = ([f"{q(self._json)}"] if self._json else []) + [q(f) for f in self._fields]
        self._meta_sql = ", ".join(tail)
        self._sql_cache.clear()  # statements of the layout before

    @staticmethod
    def _index(found: list[tuple[str, str, dict[str, str]]], metric: str, dimension: int) -> dict[str, Any]:
        """The ANN index a query of ``metric`` uses (its operator class must match), else exact."""
        for am, m, opts in found:
            if m == metric:
                if am == "hnsw":
                    spec = {"type": "hnsw", **{k: int(v) for k, v in opts.items() if k in ("m", "ef_construction")}}
                else:
                    spec = {"type": "ivf", **({"nlist": int(opts["lists"])} if "lists" in opts else {})}
                return ddl.resolve_index(spec, dimension)
        return {"type": "flat"}

    # -- the layout ---------------------------------------------------------------------------
    def _tail(self, include: frozenset[str]) -> list[str]:
        # a TRUE marks the metadata as asked for (the row is longer), so that a record without
        # metadata columns still gets {} and one not asking gets None
        return ["TRUE", *filter(None, [self._meta_sql])] if "metadata" in include else []

    def _cols(self, include: frozenset[str]) -> str:
        return ", ".join([self._key, self._vec if "vector" in include else "NULL",
                          (self._doc or "NULL") if "document" in include else "NULL", *self._tail(include)])

    def _hit_cols(self, include: frozenset[str]) -> str:
        return ", ".join([self._key, f"{self._dist} AS d", self._vec if "vector" in include else "NULL",
                          (self._doc or "NULL") if "document" in include else "NULL", *self._tail(include)])

    def _metadata(self, row: Sequence[Any], start: int) -> dict[str, Any]:
        conv = self.conversions
        meta: dict[str, Any] = {}
        if self._json:
            doc = row[start]
            start += 1
            if isinstance(doc, Mapping):
                meta.update(to_metadata(doc, conv))
            elif doc is not None:
                raise InvalidMetadataError(f"collection {self.name!r}: the metadata column {self._json!r} holds "
                                           f"{type(doc).__name__}, not a JSON object; choose another with "
                                           "?metadata_field=NAME")
        columns = {name: row[i] for i, name in enumerate(self._fields, start) if row[i] is not None}
        if columns:  # one call per row: the rule's own loop, not one dict and call per column
            meta.update(to_metadata(columns, conv))
        return meta

    def _to_records(self, rows: Sequence[tuple[Any, ...]]) -> list[Record]:
        return [Record(id_from_native(r[0]), r[1], self._metadata(r, 4) if len(r) > 3 else None, r[2]) for r in rows]

    def _to_hits(self, rows: Sequence[tuple[Any, ...]]) -> list[RawHit]:
        return [RawHit(id_from_native(r[0]), r[1], self._metadata(r, 5) if len(r) > 4 else None, r[3], r[2])
                for r in rows]

    def _resolve(self, key: str) -> Any:
        mapping = self.mapping
        if key in self._fields:
            col = self._rel.columns[key]
            kind, element = _kind(col.typname, col.element)
            if kind == "json":
                return JsonKey(f"{self._q(key)}::jsonb", ((),))
            if kind in ("int", "float", "string", "bool", "uuid", "date", "datetime", "array"):
                sql_col = f"{self._q(key)}::float8" if kind == "float" else self._q(key)
                if kind == "datetime" and col.typname == "timestamptz":
                    kind = "datetimetz"
                if element == "datetime" and col.element == "timestamptz":
                    element = "datetimetz"
                return ColumnKey(sql_col, kind, element, _compare)
            return False
        for name in self._fields:  # a key inside a json column: "attrs.colour"
            col = self._rel.columns[name]
            if key.startswith(name + ".") and _kind(col.typname, col.element)[0] == "json":
                return JsonKey(f"{self._q(name)}::jsonb", _splits(key[len(name) + 1:]))
        if mapping.metadata_field:
            return JsonKey(f"{self._q(mapping.metadata_field)}::jsonb", _splits(key))
        return False

    def _cond(self, where: Node, params: list[Any]) -> str:
        return compile_filter(where, params, self._resolve)

    def _native_id(self, id_: str, where: str) -> Any:
        value = id_to_native(id_, self.mapping.id_kind, where)
        if self._key_range is not None and not -self._key_range <= value < self._key_range:
            raise InvalidRecordError(f"{where}: {id_!r} is beyond the key column's type {self._key_type}")
        return value

    def _ids_cond(self, ids: list[str], params: list[Any]) -> str:
        keys = []
        for i in ids:  # an id the key cannot take names no record
            try:
                keys.append(self._native_id(i, "ids"))
            except InvalidRecordError:
                continue
        params.append(keys)
        return f"{self._key} = ANY(%s::{self._key_type}[])"

    def _id_of(self, value: Any) -> str:
        return id_from_native(value)

    def _key_param(self, id_: str) -> Any:
        return self._native_id(id_, "the partition bound")

    # -- writes -------------------------------------------------------------------------------
    def _writable(self) -> None:
        if self.mapping.id_field not in self._rel.unique:
            what = "a view" if self._rel.relkind == "v" else "a table without a unique index on its key"
            raise UnsupportedFeatureError(f"collection {self.name!r} is {what} ({self.mapping.id_field!r}): "
                                          "vecbridge reads it but cannot write it")

    def _column_value(self, name: str, value: Any, where: str) -> Any:
        col = self._rel.columns[name]
        if value is None:
            if col.notnull:
                raise InvalidRecordError(f"{where}: the column {name!r} ({col.native_type}) is NOT NULL and the "
                                         "record has no value for it; nothing was written")
            return None
        kind, element = _kind(col.typname, col.element)
        if kind == "json":
            return dump_json(value)
        if kind == "array":
            if not isinstance(value, list):
                raise self._refused(name, value, where)
            return [self._scalar_value(col, element or "", col.element, v, name, where) for v in value]
        return self._scalar_value(col, kind, col.typname, value, name, where)

    def _scalar_value(self, col: Column, kind: str, typname: str, value: Any, name: str, where: str) -> Any:
        ok: Any = None
        if kind == "int" and type(value) is int and -_INT_RANGE[typname] <= value < _INT_RANGE[typname]:
            ok = value
        elif kind == "float" and type(value) in (int, float):
            ok = _numeric(value) if typname == "numeric" else value
        elif kind in ("string", "bool") and type(value) is (str if kind == "string" else bool):
            ok = value
        elif kind in ("uuid", "date", "datetime") and isinstance(value, str):
            try:
                ok = (uuid.UUID(value) if kind == "uuid" else _dt.date.fromisoformat(value) if kind == "date"
                      else _dt.datetime.fromisoformat(value))
            except ValueError:
                ok = None
        if ok is None:
            raise self._refused(name, value, where, col)
        return ok

    def _refused(self, name: str, value: Any, where: str, col: Column | None = None) -> InvalidRecordError:
        col = col or self._rel.columns[name]
        return InvalidRecordError(f"{where}: {type(value).__name__} {str(value)[:60]!r} cannot go into the column "
                                  f"{name!r} ({col.native_type}) of {self.name!r}; nothing was written")

    def _row_parts(self, b: Batch, i: int, vectors: bool, metadata: bool, documents: bool) -> list[Any]:
        """One record's values in the order of :meth:`_write_columns`."""
        out: list[Any] = []
        if vectors:
            out.append(vector_param(b.vectors[i]))  # type: ignore[index]
        if documents and self._doc:
            out.append(b.documents[i])  # type: ignore[index]
        elif documents and b.documents is not None and b.documents[i] is not None:
            raise InvalidRecordError(f"documents[{i}] (id {b.ids[i]!r}): {self.name!r} has no document column "
                                     "(name one with ?document_field=NAME); nothing was written")
        if metadata:
            meta = (b.metadatas[i] if b.metadatas is not None else None) or {}
            try:
                real, rest = split_metadata(meta, self.mapping, self._fields)
            except InvalidMetadataError as exc:
                raise InvalidMetadataError(f"metadatas[{i}] (id {b.ids[i]!r}): {exc}; nothing was written") from None
            if self._json:
                out.append(dump_json(rest))
            for name in self._fields:
                out.append(self._column_value(name, real.get(name), f"metadatas[{i}][{name!r}] (id {b.ids[i]!r})"))
        return out

    def _write_columns(self, vectors: bool, metadata: bool, documents: bool) -> list[tuple[str, str]]:
        """(column, placeholder) of the parts written."""
        out = []
        if vectors:
            out.append((self._vec, "%b"))
        if documents and self._doc:
            out.append((self._doc, "%s::text"))
        if metadata:
            if self._json:
                out.append((self._q(self._json), f"%s::{self._rel.columns[self._json].native_type}"))
            out += [(self._q(f), f"%s::{self._rel.columns[f].native_type}") for f in self._fields]
        return out

    def _guarded(self, prog: Program) -> Program:
        return created.p_fresh(self, prog) if self._pending else prog

    def _p_write(self, b: Batch, replace: bool) -> Program:
        if self._pending:  # a table vecbridge made in the native layout: this batch decides its columns
            found = yield Transaction(created.p_decide(self, b))
            self._set_layout(*found)
        return (yield from super()._p_write(b, replace))

    def _vb_check_batch(self, b: Batch) -> None:
        """The checks of a write of ``b`` (ids the key cannot take, values a column cannot hold),
        writing nothing and sending nothing to the database."""
        self._writable()
        for i, id_ in enumerate(b.ids):
            self._native_id(id_, f"ids[{i}]")
            self._row_parts(b, i, b.vectors is not None, b.metadatas is not None and not self._pending,
                            b.documents is not None)

    # the framework layouts (.frameworks) hook in here: a column every row of the collection
    # has (LangChain's collection_id), checks before the insert, an upsert without ON CONFLICT
    _extra: tuple[tuple[str, str, Any], ...] = ()  # (column, placeholder, value)
    _on_conflict = ""  # an ON CONFLICT DO UPDATE's extra WHERE

    def _p_before_insert(self, b: Batch, replace: bool) -> Program:
        return
        yield  # a program

    def _p_insert(self, b: Batch, replace: bool) -> Program:
        self._writable()
        extra = self._extra
        rows = [[self._native_id(id_, f"ids[{i}]"), *self._row_parts(b, i, True, True, True),
                 *(v for _, _, v in extra)] for i, id_ in enumerate(b.ids)]
        yield from self._p_before_insert(b, replace)
        cols = self._write_columns(True, True, True)
        q = (f"INSERT INTO {self._w} ({self._key}, {', '.join([c for c, _ in cols] + [c for c, _, _ in extra])}) "
             f"VALUES (%s::{self._key_type}, {', '.join([p for _, p in cols] + [p for _, p, _ in extra])})")
        if replace and self.mapping.id_field in self._rel.unique:
            q += (f" ON CONFLICT ({self._key}) DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c, _ in cols)
                  + self._on_conflict)
        yield from self._p_rows(q, rows)

    def _p_rows(self, q: str, rows: list[list[Any]]) -> Program:
        try:
            yield Many(q, rows)
        except (pg_errors.NotNullViolation, pg_errors.CheckViolation, pg_errors.ForeignKeyViolation,
                pg_errors.DataError) as exc:
            raise InvalidRecordError(f"{self.name!r} refused a record: {str(exc).strip().splitlines()[0]}; nothing "
                                     "was written") from exc

    def _p_update_rows(self, b: Batch) -> Program:
        self._writable()
        given = (b.vectors is not None, b.metadatas is not None, b.documents is not None)
        cols = self._write_columns(*given)
        if not cols:
            return
        rows = [[*self._row_parts(b, i, *given), self._native_id(id_, f"ids[{i}]")] for i, id_ in enumerate(b.ids)]
        q = (f"UPDATE {self._w} SET {', '.join(f'{c} = {p}' for c, p in cols)} "
             f"WHERE {self._key} = %s::{self._key_type}")
        yield from self._p_rows(q, rows)

    def _p_update(self, b: Batch) -> Program:
        self._writable()
        return (yield from super()._p_update(b))

    # -- configuration: a native table has no catalog row ------------------------------------
    def _read_config(self) -> dict[str, Any] | None:
        return {"layout": self.mapping.layout}

    def _write_config(self, doc: dict[str, Any]) -> None:
        raise UnsupportedFeatureError(f"{self.name!r} is a table vecbridge did not create: it has no vecbridge "
                                      "configuration to store (an embedding spec needs a vecbridge collection)")

