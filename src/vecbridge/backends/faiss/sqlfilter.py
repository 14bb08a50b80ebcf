"""Compile a filter tree to SQLite over the ``meta`` table (one row per scalar or list item).

Every key and value is a bound parameter; nothing from the filter is spliced into
the SQL text.  Each comparison is ``rid IN (rows of meta that match)``, so a missing
key is simply "no row": false for a positive test, true under ``NOT``, which is
exactly the contract's rule for ``$ne`` and ``$nin``.
"""

from __future__ import annotations

from typing import Any

from ...filters import Cmp, Node, to_sql

KIND_STR, KIND_NUM, KIND_BOOL = 0, 1, 2

_RANGE_SQL = {"$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}


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


def _exists(key: str, is_list: int, cond: str, params: list[Any], cond_params: list[Any]) -> str:
    params.append(key)
    params.extend(cond_params)
    # an uncorrelated subquery: SQLite runs it once per query (by the (key, value) indexes)
    # instead of once per record
    return f"r.rid IN (SELECT m.rid FROM meta m WHERE m.key = ? AND m.is_list = {is_list} AND {cond})"


def _compare(node: Cmp, params: list[Any]) -> str:
    """SQL boolean expression over ``records r``; appends its parameters to ``params``."""
    op = node.op
    cond_params: list[Any] = []
    if op in _RANGE_SQL:
        cond = f"m.kind = {KIND_NUM} AND m.num {_RANGE_SQL[op]} ?"
        cond_params.append(node.value)
        return _exists(node.key, 0, cond, params, cond_params)
    values = node.value if op in ("$in", "$nin") else (node.value,)
    cond = _values_match(values, cond_params)
    expr = _exists(node.key, 1 if op == "$contains" else 0, cond, params, cond_params)
    return f"(NOT {expr})" if op in ("$ne", "$nin") else expr


def compile_filter(node: Node, params: list[Any]) -> str:
    """SQL boolean for the whole tree; its parameters are appended to ``params`` in text order."""
    return to_sql(node, lambda cmp: _compare(cmp, params))
