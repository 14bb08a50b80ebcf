"""Translate a parsed vecbridge filter into a Chroma ``where`` dict.

Every comparison goes through one table keyed by operator (:data:`OPERATORS`, dispatched
by :func:`vecbridge.filters.operator_table`): an operator added to the language later
is refused with ``UnsupportedFilterError`` until it has a row here.

What Chroma 1.5 does, checked against a server and the embedded client:

* ``$eq``/``$ne``/``$in``/``$nin`` compare scalar fields only; a bool never equals a
  number; a list field equals nothing.  ``$ne``/``$nin`` are the exact complements of
  ``$eq``/``$in``: true on a missing key and on a list field.  That is the contract.
* Numbers: Chroma keeps ints and floats apart and compares an int value with a float
  operand truncated toward zero and saturated to int64 (``$eq: 2.5`` matches the int
  2, ``$gt: -0.5`` misses the int 0), and a float value with an int operand converted
  to the nearest float (``$eq: 2**62 + 1`` matches the float ``2.0**62``).  Exactly one
  number is misjudged per operand -- the truncated int, or the nearest float -- so
  :func:`_numeric` adds one ``$eq``/``$ne`` term on that number where Chroma's verdict
  on it differs from the exact one.  An operand whose correction would itself be
  ambiguous (the float ``2.0**63``, an int that rounds to it) is refused.
* Chroma reads JSON numbers with ``serde_json``'s inexact float parser, so a float
  operand written with many significant digits may be compared as its neighbour; such
  operands are refused (:func:`~.codec.chroma_keeps` tells them apart).  Stored floats
  of that kind come back exactly (see :mod:`.codec`), but Chroma compares its
  neighbour: an operand equal to that neighbour can still be answered differently.
* An int operand beyond int64 is saturated (``{"n": 2**64}`` matches a stored
  ``2**63 - 1``): the core refuses such operands (``filter_int_range``, int64 here).
* ``$in``/``$nin`` take a list of one Python type: a mixed list is split into groups.
* Range operators match int and float fields, never bools, strings or lists.
* ``$contains`` holds on a list field only, and compares int and float *strictly*
  (``$contains: 1`` misses ``[1.0]``): a number is asked for in both spellings.
  ``$not_contains`` is its exact complement (true on missing keys and scalars).
* There is no ``$not``: it is pushed down with De Morgan onto the negated operators.
  The negation of a range operator must also hold where the key is missing or holds no
  number, which no Chroma operator can express; vecbridge therefore lists the keys
  holding a number under ``_vbnum`` in each record (see :mod:`.codec`), and
  ``NOT (a > v)`` becomes ``a <= v OR _vbnum $not_contains "a"``.  On a collection not
  written by vecbridge that list is absent and such a filter is refused.
* ``$and``/``$or`` need two items or more; one item is unwrapped.
* ``$exists`` has no Chroma counterpart (no operator holds for a key whatever its value),
  so it is refused with ``UnsupportedFilterError``.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

from ...errors import UnsupportedFilterError
from ...filters import And, Cmp, Node, Not, Or, operator_table, values_equal
from ...validation import INT64_MAX, INT64_MIN
from .codec import NUMERIC_KEYS, chroma_keeps, stored_key

__all__ = ["OPERATORS", "to_where"]

_NEGATE = {"$eq": "$ne", "$ne": "$eq", "$in": "$nin", "$nin": "$in",
           "$gt": "$lte", "$gte": "$lt", "$lt": "$gte", "$lte": "$gt"}
_EXACT: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": operator.eq, "$ne": operator.ne, "$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt,
    "$lte": operator.le}
#: Chroma's verdict on the one number it compares wrongly, which it takes for the operand itself.
_ON_ITSELF = {"$eq": True, "$ne": False, "$gt": False, "$gte": True, "$lt": False, "$lte": True}
_TWO_63 = 2.0 ** 63


def to_where(node: Node | None, numeric_index: bool = True) -> dict[str, Any] | None:
    """The Chroma ``where`` for ``node`` (``None`` for no filter).

    ``numeric_index`` says whether the collection's records carry the ``_vbnum`` list
    (collections created by vecbridge); without it a negated range is refused.
    """
    if node is None:
        return None
    return _tr(node, False, numeric_index)


def _join(op: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    flat: list[dict[str, Any]] = []
    for item in items:  # {"$and": [{"$and": [a, b]}, c]} -> {"$and": [a, b, c]}
        flat.extend(item[op] if len(item) == 1 and op in item else [item])
    return flat[0] if len(flat) == 1 else {op: flat}


def _tr(node: Node, neg: bool, numeric_index: bool) -> dict[str, Any]:
    if isinstance(node, Not):
        return _tr(node.item, not neg, numeric_index)
    if isinstance(node, (And, Or)):
        is_and = isinstance(node, And) != neg  # De Morgan
        return _join("$and" if is_and else "$or", [_tr(n, neg, numeric_index) for n in node.items])
    return _cmp(node, neg, numeric_index)


def _kind(v: Any) -> type:
    return bool if isinstance(v, bool) else type(v)


def _normal(key: str, v: Any) -> Any:
    """The operand ``v`` as sent: an integral float that fits int64 as that int (Chroma
    compares ints exactly), a float only if Chroma reads it exactly."""
    if isinstance(v, float):
        if v.is_integer() and INT64_MIN <= v < _TWO_63:
            return int(v)
        _check_float(key, v)
    return v


def _check_float(key: str, f: float) -> None:
    if not chroma_keeps(f):
        raise UnsupportedFilterError(
            f"chroma: a comparison of {key!r} with {f!r} cannot be run exactly: Chroma reads that many "
            "significant digits as a neighbouring float; round the operand")


def _misjudged(key: str, v: Any) -> int | None:
    """The one number Chroma compares wrongly with the operand ``v`` (``None``: none)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    if isinstance(v, float):  # non-integral, or beyond int64: ints see it truncated, saturated
        if v == _TWO_63:  # ... to INT64_MAX, whose own float is 2**63 again: no term can tell them apart
            raise UnsupportedFilterError(f"chroma: a comparison of {key!r} with {v!r} cannot be run exactly "
                                         "(Chroma compares int values with it as 2**63 - 1)")
        return max(INT64_MIN, min(INT64_MAX, math.trunc(v)))
    f = float(v)
    if f == v:
        return None
    if f >= _TWO_63:
        raise UnsupportedFilterError(f"chroma: a comparison of {key!r} with {v!r} cannot be run exactly "
                                     "(Chroma compares float values with it as 2.0**63)")
    # floats see the int as its nearest float f; the correcting term is written as the int
    # equal to f, which Chroma compares with floats as f exactly (and never with the int v)
    return int(f)


def _numeric(key: str, op: str, v: Any) -> dict[str, Any]:
    """``key op v`` for $eq/$ne/$gt/$gte/$lt/$lte, corrected where Chroma's numbers are inexact."""
    v = _normal(key, v)
    expr = {key: {op: v}}
    wrong = _misjudged(key, v)
    if wrong is None:
        return expr
    exact = _EXACT[op](wrong, v)
    if exact == _ON_ITSELF[op]:
        return expr
    # one more term on that number alone; its own other-type side agrees with `expr` (see
    # the module docstring), so it changes nothing else
    return {"$or": [expr, {key: {"$eq": wrong}}]} if exact else {"$and": [expr, {key: {"$ne": wrong}}]}


def _groups(values: list[Any]) -> list[list[Any]]:
    groups: dict[type, list[Any]] = {}
    for v in values:  # Chroma wants one Python type per list
        group = groups.setdefault(_kind(v), [])
        if v not in group:
            group.append(v)
    return list(groups.values())


def _membership(key: str, op: str, values: tuple[Any, ...]) -> dict[str, Any]:
    """``key $in values`` / ``$nin``, corrected like :func:`_numeric`."""
    vals = [_normal(key, v) for v in values]
    # numbers Chroma takes for members though none is: each value's misjudged number,
    # unless it equals a member in its own right
    wrong = [w for w in (_misjudged(key, v) for v in vals) if w is not None]
    wrong = [w for w in wrong if not any(values_equal(w, v) for v in vals)]
    member = op == "$in"
    parts = [{key: {op: g}} for g in _groups(vals)]
    expr = _join("$or" if member else "$and", parts)  # NOT (x in A or x in B) == x nin A and x nin B
    if not wrong:
        return expr
    fix = [{key: {"$nin" if member else "$in": g}} for g in _groups(wrong)]
    return _join("$and", [expr, *fix]) if member else _join("$or", [expr, *fix])


def _number_spellings(key: str, v: Any) -> list[Any]:
    """``v`` as int and as float where both denote exactly the same number."""
    if isinstance(v, bool):
        return [v]
    if isinstance(v, int):
        f = float(v)
        if f != v:
            return [v]  # huge ints have no exact float
        _check_float(key, f)
        return [v, f]
    _check_float(key, v)
    if v.is_integer() and INT64_MIN <= v < _TWO_63:
        return [v, int(v)]
    return [v]


def _contains(node: Cmp, neg: bool, numeric_index: bool) -> dict[str, Any]:
    key, value = stored_key(node.key), node.value
    spellings = [value] if isinstance(value, str) else _number_spellings(node.key, value)
    native = "$not_contains" if neg else "$contains"
    return _join("$and" if neg else "$or", [{key: {native: v}} for v in spellings])


def _member(node: Cmp, neg: bool, numeric_index: bool) -> dict[str, Any]:
    return _membership(stored_key(node.key), _NEGATE[node.op] if neg else node.op, node.value)


def _equality(node: Cmp, neg: bool, numeric_index: bool) -> dict[str, Any]:
    key, value = stored_key(node.key), node.value
    op = _NEGATE[node.op] if neg else node.op
    return _numeric(key, op, value) if not isinstance(value, (str, bool)) else {key: {op: value}}


def _range(node: Cmp, neg: bool, numeric_index: bool) -> dict[str, Any]:
    key, op, value = stored_key(node.key), node.op, node.value
    if not neg:
        return _numeric(key, op, value)
    # a negated range: also true where the key is missing or holds something else than a number
    if not numeric_index:
        raise UnsupportedFilterError(
            f"chroma: $not over {op} on {node.key!r} needs the per-record list of numeric keys that vecbridge "
            "writes, and this collection was not created by vecbridge; rewrite the filter without $not "
            "around a range operator")
    return {"$or": [_numeric(key, _NEGATE[op], value), {NUMERIC_KEYS: {"$not_contains": key}}]}


def _exists(node: Cmp, neg: bool, numeric_index: bool) -> dict[str, Any]:
    # Chroma has no operator true for a key whatever its value (nor for a missing key), and
    # the records carry the list of their numeric keys only (_vbnum): refused, never guessed
    raise UnsupportedFilterError(
        f"chroma: $exists on {node.key!r} cannot be run: Chroma has no operator that tests whether a key is "
        "present; compare the key with a value instead (e.g. $in with the values it may hold)")


#: The translation of each comparison operator: ``fn(node, negated, numeric_index)``.
OPERATORS: dict[str, Callable[[Cmp, bool, bool], dict[str, Any]]] = {
    "$eq": _equality, "$ne": _equality,
    "$gt": _range, "$gte": _range, "$lt": _range, "$lte": _range,
    "$in": _member, "$nin": _member,
    "$contains": _contains,
    "$exists": _exists,
}
_cmp = operator_table(OPERATORS, "chroma")
