"""Compile a filter tree to SQLite over the ``meta`` table (one row per scalar or list item).

Every key and value is a bound parameter; nothing from the filter is spliced into
the SQL text.  Each comparison is ``rid IN (rows of meta that match)``, so a missing
key is simply "no row": false for a positive test, true under ``NOT``, which is
exactly the contract's rule for ``$ne`` and ``$nin``.

The comparisons are a table keyed by operator (:data:`OPERATORS`, dispatched by
:func:`vecbridge.filters.operator_table`): an operator added to the language later is
refused with ``UnsupportedFilterError`` until it has its own row here, instead of
falling into another operator's translation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...filters import Cmp, Node, operator_table, to_sql

__all__ = ["OPERATORS", "compile_filter", "encode_scalar", "meta_rows"]

KIND_STR, KIND_NUM, KIND_BOOL = 0, 1, 2


def encode_scalar(value: Any) -> tuple[int, Any, Any]:
    """(kind, num, txt) for one metadata scalar."""
    if isinstance(value, bool):
        return KIND_BOOL, int(value), None
    if isinstance(value, str):
        return KIND_STR, None, value
    return KIND_NUM, value, None


def meta_rows(rid: int, metadata: dict[str, Any]) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for key, value in metadata.items():
        if isinstance(value, list):
            for item in value:
                rows.append((rid, key, 1, *encode_scalar(item)))
        else:
            rows.append((rid, key, 0, *encode_scalar(value)))
    return rows


def _values_match(values: tuple[Any, ...], params: list[Any]) -> str:
    """SQL true when the row's value equals one of ``values`` under the contract's rules."""
    groups: dict[int, list[Any]] = {}
    for v in values:
        kind, num, txt = encode_scalar(v)
        groups.setdefault(kind, []).append(txt if kind == KIND_STR else num)
    parts = []
    for kind, vals in sorted(groups.items()):
        col = "m.txt" if kind == KIND_STR else "m.num"
        marks = ",".join("?" * len(vals))
        parts.append(f"(m.kind = {kind} AND {col} IN ({marks}))")
        params.extend(vals)
    return "(" + " OR ".join(parts) + ")"


def _subquery(key: str, is_list: int, cond: str, cond_params: list[Any], params: list[Any]) -> str:
    params.append(key)
    params.extend(cond_params)
    # an uncorrelated subquery: SQLite runs it once per query (by the (key, value) indexes)
    # instead of once per record
    return f"r.rid IN (SELECT m.rid FROM meta m WHERE m.key = ? AND m.is_list = {is_list} AND {cond})"


def _equal_to_any(node: Cmp, values: tuple[Any, ...], is_list: int, params: list[Any]) -> str:
    cond_params: list[Any] = []
    cond = _values_match(values, cond_params)
    return _subquery(node.key, is_list, cond, cond_params, params)


def _range(sql_op: str) -> Callable[[Cmp, list[Any]], str]:
    def translate(node: Cmp, params: list[Any]) -> str:
        # only numbers: a bool is stored with kind KIND_BOOL and never matches a range
        return _subquery(node.key, 0, f"m.kind = {KIND_NUM} AND m.num {sql_op} ?", [node.value], params)
    return translate


def _exists(node: Cmp, params: list[Any]) -> str:
    # a key whose value is an empty list has no meta row: the record's own JSON tells, and
    # only records whose JSON holds an empty list ("[]") are parsed for it
    params.extend([node.key, node.key])
    present = ("(r.rid IN (SELECT m.rid FROM meta m WHERE m.key = ?) OR (r.metadata LIKE '%[]%' AND "
               "EXISTS (SELECT 1 FROM json_each(r.metadata) j WHERE j.key = ?)))")
    return present if node.value is True else f"(NOT {present})"


#: Operator -> its SQL: each takes the comparison and the parameter list it appends to.
OPERATORS: dict[str, Callable[[Cmp, list[Any]], str]] = {
    "$eq": lambda node, params: _equal_to_any(node, (node.value,), 0, params),
    "$ne": lambda node, params: f"(NOT {_equal_to_any(node, (node.value,), 0, params)})",
    "$in": lambda node, params: _equal_to_any(node, tuple(node.value), 0, params),
    "$nin": lambda node, params: f"(NOT {_equal_to_any(node, tuple(node.value), 0, params)})",
    "$contains": lambda node, params: _equal_to_any(node, (node.value,), 1, params),
    "$gt": _range(">"),
    "$gte": _range(">="),
    "$lt": _range("<"),
    "$lte": _range("<="),
    "$exists": _exists,
}

_compare = operator_table(OPERATORS, "faiss")


def compile_filter(node: Node, params: list[Any]) -> str:
    """SQL boolean for the whole tree; its parameters are appended to ``params`` in text order."""
    return to_sql(node, lambda cmp: _compare(cmp, params))
