"""Compile a filter tree to a SQL condition over the ``metadata jsonb`` column.

The translation is a table keyed by operator (:data:`OPERATORS`), dispatched through
:func:`vecbridge.filters.operator_table`: an operator the table lacks (one added to the
language later) is refused with :class:`UnsupportedFilterError`, never translated as
another one.

The SQL text is made only of the fixed fragments below and ``%s`` placeholders: every
key and every value travels as a bound parameter, so a key such as ``"x') OR 1=1 --"``
is just a key that no record has.

The contract's semantics map onto jsonb as follows:

* ``$eq``: containment ``metadata @> {"k": v}``.  jsonb compares numbers by value
  (``1 == 1.0``), keeps ``true`` apart from ``1``, and ``{"k": [v]}`` does not contain
  ``{"k": v}``, so a list field equals no scalar.  Containment is what the GIN index
  (``jsonb_path_ops``) serves.
* ``$ne``/``$nin``: ``NOT`` of the positive test, true on a missing key or a list field.
* ``$contains``: ``metadata @> {"k": [v]}``, true only when the field is a list holding v.
* ``$exists``: ``metadata ? k`` (a top-level key, whatever its value), or its ``NOT``.
* ranges: ``jsonb_typeof(metadata -> k) = 'number' AND metadata -> k > v`` (jsonb's own
  numeric order; no cast, so no row can raise an error), wrapped in ``COALESCE`` so
  that a missing key gives false, never NULL, and ``NOT`` stays exact.

A native table (:mod:`.native`) passes a resolver: a key that is a real column compiles to
SQL on that column (``=``, ``= ANY`` for an array's ``$contains``, ``IS NOT NULL`` for
``$exists``, comparisons for numeric columns), a key inside its jsonb to the same tests at
every path the flattened key can stand for, each wrapped so that it is never NULL.

Numbers are bound at their exact values (:func:`.codec.dump_json`, :func:`.codec.filter_value`),
so jsonb's exact decimal comparison is Python's.  Text that PostgreSQL cannot hold (a NUL
character, a lone surrogate) is refused with :class:`InvalidFilterError` before anything
is sent: PostgreSQL would fail the statement, and libpq would cut a key at the NUL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...errors import InvalidFilterError
from ...filters import Cmp, Node, operator_table, to_sql
from ...validation import _check_text
from .codec import dump_json, filter_value

__all__ = ["OPERATORS", "ColumnKey", "JsonKey", "compile_filter"]

_CONTAINS = "metadata @> %s::jsonb"

#: One comparison's translation: the node, the parameter list and the resolver, giving a SQL boolean.
Translation = Callable[..., str]


@dataclass(frozen=True)
class JsonKey:
    """A filter key inside a jsonb column (of a native table): ``column`` is its SQL, ``paths``
    every path whose value the mapped metadata shows under that key (``a.b`` is the key
    ``a.b``, or ``b`` inside ``a``: mapping.to_metadata flattens nested objects)."""

    column: str
    paths: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class ColumnKey:
    """A filter key that is a real column of a native table; ``compare(kind, value)`` gives
    the bound value and its SQL type, or ``None`` when no value of the column can equal it."""

    column: str
    kind: str  # int, float, string, bool, uuid, date, datetime, array
    element: str | None
    compare: Callable[[str, Any], tuple[Any, str] | None]


#: What a key is: ``None`` (the vecbridge layout: a top-level key of ``metadata``), a
#: :class:`JsonKey`, a :class:`ColumnKey`, or ``False`` (no field holds it: missing everywhere).
Resolver = Callable[[str], Any]


def _checked(node: Cmp) -> Any:
    """The node's value as it is bound, after refusing text PostgreSQL cannot hold (the rule of stored text)."""
    where = f"where[{node.key!r}][{node.op!r}]"
    _check_text(node.key, f"the filter key {node.key!r}", InvalidFilterError)
    if isinstance(node.value, tuple):
        for i, v in enumerate(node.value):
            if isinstance(v, str):
                _check_text(v, f"{where}[{i}]", InvalidFilterError)
        return tuple(filter_value(v) for v in node.value)
    if isinstance(node.value, str):
        _check_text(node.value, where, InvalidFilterError)
    return filter_value(node.value)


def _nest(path: tuple[str, ...], value: Any) -> Any:
    for part in reversed(path):
        value = {part: value}
    return value


def _json_any_of(target: JsonKey, values: tuple[Any, ...], params: list[Any]) -> str:
    alts = []
    for path in target.paths:
        if not path:  # the column's own value (a json metadata field): equality, not containment
            params.append([dump_json(v) for v in values])
            alts.append(f"COALESCE({target.column} = ANY(%s::jsonb[]), false)")
        else:
            params.append([dump_json(_nest(path, v)) for v in values])
            alts.append(f"COALESCE({target.column} @> ANY(%s::jsonb[]), false)")
    return "(" + " OR ".join(alts) + ")"


def _column_any_of(target: ColumnKey, values: tuple[Any, ...], params: list[Any], contains: bool = False) -> str:
    kind = target.element if contains else target.kind
    if kind is None or (target.kind == "array") is not contains:
        return "false"  # a list equals no scalar; a scalar column holds no list
    alts = []
    for v in values:
        bound = target.compare(kind, v)
        if bound is None:
            continue
        params.append(bound[0])
        alts.append(f"%s::{bound[1]} = ANY({target.column})" if contains else f"{target.column} = %s::{bound[1]}")
    return "COALESCE(" + " OR ".join(alts) + ", false)" if alts else "false"


def _any_of(node: Cmp, values: tuple[Any, ...], params: list[Any], resolve: Resolver | None) -> str:
    target = resolve(node.key) if resolve is not None else None
    if target is None:
        key = node.key
        if len(values) == 1:
            params.append(dump_json({key: values[0]}))
            return _CONTAINS
        params.append([dump_json({key: v}) for v in values])
        return "metadata @> ANY(%s::jsonb[])"
    if target is False:
        return "false"
    if isinstance(target, JsonKey):
        return _json_any_of(target, values, params)
    return _column_any_of(target, values, params)


def _eq(node: Cmp, params: list[Any], resolve: Resolver | None = None) -> str:
    return _any_of(node, (_checked(node),), params, resolve)


def _ne(node: Cmp, params: list[Any], resolve: Resolver | None = None) -> str:
    return f"(NOT {_eq(node, params, resolve)})"


def _in(node: Cmp, params: list[Any], resolve: Resolver | None = None) -> str:
    return _any_of(node, _checked(node), params, resolve)


def _nin(node: Cmp, params: list[Any], resolve: Resolver | None = None) -> str:
    return f"(NOT {_in(node, params, resolve)})"


def _contains(node: Cmp, params: list[Any], resolve: Resolver | None = None) -> str:
    value = _checked(node)
    target = resolve(node.key) if resolve is not None else None
    if target is None:
        params.append(dump_json({node.key: [value]}))
        return _CONTAINS
    if target is False:
        return "false"
    if isinstance(target, JsonKey):
        alts = []
        for path in target.paths:
            params.append(dump_json(_nest(path, [value])))
            alts.append(f"COALESCE({target.column} @> %s::jsonb, false)")
        return "(" + " OR ".join(alts) + ")"
    return _column_any_of(target, (value,), params, contains=True)


def _exists(node: Cmp, params: list[Any], resolve: Resolver | None = None) -> str:
    _checked(node)
    target = resolve(node.key) if resolve is not None else None
    if target is None:
        params.append(node.key)
        # jsonb's ? tests a top-level key, whatever its value (psycopg's placeholders are %s, not ?)
        return "(metadata ? %s::text)" if node.value else "(NOT (metadata ? %s::text))"
    if target is False:
        test = "false"
    elif isinstance(target, JsonKey):
        # to_metadata leaves nulls out and turns objects into dotted keys: a key is there when a
        # path holds a scalar or a list
        alts = []
        for path in target.paths:
            params.append(list(path))
            alts.append(f"COALESCE(jsonb_typeof({target.column} #> %s::text[]) NOT IN ('null', 'object'), false)")
        test = "(" + " OR ".join(alts) + ")"
    else:
        test = f"({target.column} IS NOT NULL)"
    return test if node.value else f"(NOT {test})"


def _range(symbol: str) -> Translation:
    sql = (f"COALESCE(jsonb_typeof(metadata -> %s::text) = 'number' "
           f"AND metadata -> %s::text {symbol} %s::jsonb, false)")

    def translate(node: Cmp, params: list[Any], resolve: Resolver | None = None) -> str:
        value = _checked(node)
        target = resolve(node.key) if resolve is not None else None
        if target is None:
            params.extend((node.key, node.key, dump_json(value)))
            return sql
        if target is False:
            return "false"
        if isinstance(target, JsonKey):
            alts = []
            for path in target.paths:
                params.extend((list(path), list(path), dump_json(value)))
                alts.append(f"COALESCE(jsonb_typeof({target.column} #> %s::text[]) = 'number' "
                            f"AND {target.column} #> %s::text[] {symbol} %s::jsonb, false)")
            return "(" + " OR ".join(alts) + ")"
        bound = target.compare("range:" + target.kind, value)
        if bound is None:
            return "false"  # no number in this column (text, dates, lists): a range is false
        params.append(bound[0])
        return f"COALESCE({target.column} {symbol} %s::{bound[1]}, false)"

    return translate


#: Operator -> its translation (each a SQL boolean, never NULL; parameters appended in text order).
OPERATORS: dict[str, Translation] = {
    "$eq": _eq,
    "$ne": _ne,
    "$gt": _range(">"),
    "$gte": _range(">="),
    "$lt": _range("<"),
    "$lte": _range("<="),
    "$in": _in,
    "$nin": _nin,
    "$contains": _contains,
    "$exists": _exists,
}
_translate = operator_table(OPERATORS, "pgvector")


def compile_filter(node: Node, params: list[Any], resolve: Resolver | None = None) -> str:
    """SQL boolean for the whole tree; its parameters are appended to ``params`` in text order.
    ``resolve`` says where each key lives in a native table (``None``: vecbridge's layout)."""
    return to_sql(node, lambda cmp: _translate(cmp, params, resolve))
