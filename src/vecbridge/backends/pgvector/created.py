"""``layout=native``: a new collection made as a PostgreSQL user would make it by hand (issue 12 item 4).

The table, in the client's schema, named as the collection::

    "<name>" (id text PRIMARY KEY, embedding vector(d) NOT NULL, document text, metadata jsonb,
              <one real column per metadata key of one type, added by the first write>)

with the ANN index of the collection's index spec (HNSW by default) and the operator class of
its metric, so that :mod:`.native` reads the metric back from the index as it does for any
table.  No catalog row: the table is a native table like any other, and the catalog would
hide it from the application that reads it with SQL.  The one thing vecbridge keeps is the
table's COMMENT (:data:`PENDING`, :data:`DECIDED`): it says whether the first write has
decided the metadata columns yet, and the metric, which an exact (unindexed) table has
nowhere else to keep.

The first write decides the columns (:func:`decide_columns`), because at ``create_collection``
nothing is known about the metadata; the migration writes its first batch right after the
plan.  A key becomes a column when every value of it in that batch has one type: ``int`` ->
``bigint``, ``float`` -> ``double precision``, ``bool`` -> ``boolean``, ``str`` -> ``text``,
a list whose elements all have one of those types -> that type's array.  Everything else
(keys of mixed types, lists that are only empty, keys of more than 63 bytes -- PostgreSQL's
identifier limit --, the names ``id``/``embedding``/``document``/``metadata``) and every key
first seen later goes into ``metadata jsonb``.  The decision runs in its own transaction
holding a lock that writers take in turn, so that concurrent first writes (the migration's
workers) decide once: the others find the comment changed and read the columns made.

What the layout gives up (docs/backends/pgvector.md): a later value of another type than its
key's column is refused (InvalidRecordError, nothing written), except an ``int`` into a
``double precision`` column, which reads back as a float; vecbridge's own configuration
entries (``set_config``: an embedding spec) have no place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from psycopg import sql

from ...validation import Batch
from . import ddl
from .ops import Exec, Program

if TYPE_CHECKING:
    from ...mapping import CollectionMapping
    from .native import NativeCollection

__all__ = ["DECIDED", "PENDING", "comment_metric", "create_sql", "decide_columns", "p_decide", "p_fresh", "p_layout"]

PENDING = "vecbridge layout=native: metadata columns are decided by the first write"
DECIDED = "vecbridge layout=native"
BASE_COLUMNS = ("id", "embedding", "document", "metadata")
#: What the layout gives up, in the mapping's description (``vecbridge info``, the plan).
NOTES = (("made by vecbridge in the native layout: the first write's metadata keys of one type are columns, the "
          "rest is in metadata jsonb"),
         ("gives up: a later value of another type than its key's column is refused; an int written into a double "
          "precision column reads back as a float; no vecbridge configuration entries (an embedding spec)"))
_TYPES = {str: "text", int: "bigint", float: "double precision", bool: "boolean"}
_METRIC = re.compile(r"\bmetric=(cosine|l2|ip)\b")
MAX_NAME_BYTES = 63  # NAMEDATALEN - 1: a longer name would be cut


def comment_metric(comment: str) -> str | None:
    """The metric a created table's comment names (``None``: not one of ours)."""
    if not comment.startswith(DECIDED):
        return None
    found = _METRIC.search(comment)
    return found.group(1) if found else None


def _comment(table: sql.Identifier, text: str, metric: str) -> sql.Composed:
    return sql.SQL("COMMENT ON TABLE {} IS {}").format(table, sql.Literal(f"{text} (metric={metric})"))


def create_sql(table: sql.Identifier, ext_schema: str, dimension: int, metric: str,
               index: dict[str, Any]) -> list[sql.Composed]:
    """The statements that make the table of a new native-layout collection."""
    out = [sql.SQL("CREATE TABLE {} (id text PRIMARY KEY, embedding {}({}) NOT NULL, document text, "
                   "metadata jsonb)").format(table, sql.Identifier(ext_schema, "vector"), sql.Literal(int(dimension))),
           _comment(table, PENDING, metric)]
    vec_index = ddl.vector_index_sql(table, ext_schema, metric, index)
    if vec_index is not None:
        out.append(vec_index)
    return out


def _type_of(value: Any) -> str | None:
    """The column type of one value, ``None`` when no column of one type fits it."""
    if isinstance(value, list):
        kinds = {type(v) for v in value}
        if len(kinds) != 1:
            return None  # empty, or mixed: nothing says the element type
        inner = _TYPES.get(kinds.pop())
        return f"{inner}[]" if inner is not None else None
    return _TYPES.get(type(value))


def decide_columns(metadatas: Iterable[dict[str, Any] | None]) -> dict[str, str]:
    """``key -> SQL type`` for the keys of one type in a first batch (module docstring)."""
    seen: dict[str, set[str | None]] = {}
    for meta in metadatas:
        for key, value in (meta or {}).items():
            if value is not None:
                seen.setdefault(key, set()).add(_type_of(value))
    return {key: types.pop() for key, types in seen.items()  # type: ignore[misc]
            if len(types) == 1 and None not in types and key not in BASE_COLUMNS
            and len(key.encode("utf-8")) <= MAX_NAME_BYTES}


def p_decide(coll: NativeCollection, b: Batch) -> Program:
    """In its own transaction: add the columns ``b`` decides (unless another writer decided them
    first) and give back the collection's layout with them, ``(mapping, relation)``."""
    rel = coll._rel
    table = rel.ident
    reg = table.as_string(None)
    # SHARE ROW EXCLUSIVE conflicts with itself and with every write: one decision, before any row
    yield Exec(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(table), fetch="rowcount")
    row = yield Exec("SELECT obj_description(%s::regclass, 'pg_class')", (reg,), "one", binary=False)
    comment = str(row[0] or "") if row is not None else ""
    if comment.startswith(PENDING):  # still pending: this batch decides
        for key, type_ in decide_columns(b.metadatas or []).items():
            yield Exec(sql.SQL("ALTER TABLE {} ADD COLUMN {} " + type_).format(table, sql.Identifier(key)),
                       fetch="rowcount")
        comment = f"{DECIDED} (metric={coll.metric})"
        yield Exec(sql.SQL("COMMENT ON TABLE {} IS {}").format(table, sql.Literal(comment)), fetch="rowcount")
    return (yield from p_layout(coll, comment))


def p_fresh(coll: NativeCollection, prog: Program) -> Program:
    """``prog``, after taking in the columns that another writer's first write decided: a
    collection opened while its table was pending (the migration's own handle, which verifies)
    must read the columns made since."""
    row = yield Exec("SELECT obj_description(%s::regclass, 'pg_class')", (coll._rel.ident.as_string(None),), "one",
                     binary=False)
    comment = str(row[0] or "") if row is not None else ""
    if not comment.startswith(PENDING):
        coll._set_layout(*(yield from p_layout(coll, comment)))
    return (yield from prog)


def p_layout(coll: NativeCollection, comment: str) -> Program:
    """The collection's ``(mapping, relation)`` with the columns its table has now."""
    from .native import COLUMNS, Column

    rel = coll._rel
    rows = yield Exec(COLUMNS, (rel.ident.as_string(None),), binary=False)
    columns = {r[0]: Column(r[0], r[1], r[2], bool(r[4]), r[6]) for r in rows}
    mapping: CollectionMapping = coll.mapping
    added = tuple(n for n in columns if n not in BASE_COLUMNS and n not in mapping.metadata_fields)
    return (replace(mapping, metadata_fields=mapping.metadata_fields + added),
            replace(rel, columns=columns, comment=comment))
