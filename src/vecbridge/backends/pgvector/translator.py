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

Numbers are bound at their exact values (:func:`.codec.dump_json`, :func:`.codec.filter_value`),
so jsonb's exact decimal comparison is Python's.  Text that PostgreSQL cannot hold (a NUL
character, a lone surrogate) is refused with :class:`InvalidFilterError` before anything
is sent: PostgreSQL would fail the statement, and libpq would cut a key at the NUL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import InvalidFilterError
from ...filters import Cmp, Node, operator_table, to_sql
from ...validation import _check_text
from .codec import dump_json, filter_value

__all__ = ["OPERATORS", "compile_filter"]

_CONTAINS = "metadata @> %s::jsonb"

#: One comparison's translation: the node and the parameter list, giving a SQL boolean.
Translation = Callable[[Cmp, list[Any]], str]


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


def _any_of(key: str, values: tuple[Any, ...], params: list[Any]) -> str:
    if len(values) == 1:
        params.append(dump_json({key: values[0]}))
        return _CONTAINS
    params.append([dump_json({key: v}) for v in values])
    return "metadata @> ANY(%s::jsonb[])"


def _eq(node: Cmp, params: list[Any]) -> str:
    return _any_of(node.key, (_checked(node),), params)


def _ne(node: Cmp, params: list[Any]) -> str:
    return f"(NOT {_eq(node, params)})"


def _in(node: Cmp, params: list[Any]) -> str:
    return _any_of(node.key, _checked(node), params)


def _nin(node: Cmp, params: list[Any]) -> str:
    return f"(NOT {_in(node, params)})"


def _contains(node: Cmp, params: list[Any]) -> str:
    params.append(dump_json({node.key: [_checked(node)]}))
    return _CONTAINS


def _exists(node: Cmp, params: list[Any]) -> str:
    _checked(node)
    params.append(node.key)
    # jsonb's ? tests a top-level key, whatever its value (psycopg's placeholders are %s, not ?)
    return "(metadata ? %s::text)" if node.value else "(NOT (metadata ? %s::text))"


def _range(symbol: str) -> Translation:
    sql = (f"COALESCE(jsonb_typeof(metadata -> %s::text) = 'number' "
           f"AND metadata -> %s::text {symbol} %s::jsonb, false)")

    def translate(node: Cmp, params: list[Any]) -> str:
        value = _checked(node)
        params.extend((node.key, node.key, dump_json(value)))
        return sql

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


def compile_filter(node: Node, params: list[Any]) -> str:
    """SQL boolean for the whole tree; its parameters are appended to ``params`` in text order."""
    return to_sql(node, lambda cmp: _translate(cmp, params))
