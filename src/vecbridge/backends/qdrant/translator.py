"""Translate a parsed ``where`` (vecbridge.filters) into a Qdrant :class:`Filter`.

How each rule of the contract is kept (the payload layout is in ``payload.py``):

* ``$eq``/``$in`` on a string or a bool: ``MatchValue``/``MatchAny``.  Qdrant keeps
  bool, int and float apart in a match, so ``True`` never equals ``1``.
* ``$eq``/``$in`` on a number: ``Range(gte=v, lte=v)``.  A match on ``1`` would miss a
  stored ``1.0``; a range compares numbers by value and never matches a bool.
* Lists live under ``_vb_l``, so a comparison on the scalar key never sees them, and
  ``$contains`` is the same equality on the list key (Qdrant tests each element).
* ``$ne``/``$nin``/``$not``: ``must_not``, which is true where the key is missing.
* Range operators: ``Range``, which matches numbers only.
* ``$exists``: the scalar key or the list key is not empty (Qdrant's ``IsEmpty`` is true
  for a missing field and for ``[]``), or the key is named in ``_vb_e``, the payload's
  list of keys holding an empty list; ``false`` is the ``must_not`` of that.
* Keys are quoted paths (``"a.b"``), so dots are not nesting.

Where a key lives is a :class:`Paths` object: :data:`VECBRIDGE` for vecbridge's payload
layout (above), another for a collection vecbridge did not create (``native.py``: plain
payload keys, nested objects as dotted keys, lists under their own key).

Each operator has its function in :data:`OPERATORS`, dispatched through
:func:`vecbridge.filters.operator_table`.

The Qdrant server compares payload numbers as float64.  A filter number that is a
whole number of magnitude 2**53 or more could equal several stored integers there, so
it is refused with :class:`UnsupportedFilterError` rather than answered differently
(integers by the core, through the client's ``filter_int_range``; whole floats here).
A float beyond 2**63 in magnitude is let through: every int64 (the contract's integers)
becomes a float64 of at most 2**63, so none can compare wrongly with it, and a float
already is the float64 the server compares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from qdrant_client import models

from ...errors import UnsupportedFilterError
from ...filters import And, Cmp, Node, Not, Or, operator_table
from .payload import EMPTY_KEY, list_path, scalar_path, storage_key

_EXACT_LIMIT = 2**53
_INT64_FLOAT_LIMIT = 2.0**63
_RANGE_FIELD = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}


class Paths(Protocol):
    """Where a metadata key's values are in a point's payload."""

    def scalar(self, key: str) -> str:
        """The key path compared by ``$eq``, ``$in``, the ranges and their negations."""

    def elements(self, key: str) -> str:
        """The key path whose elements ``$contains`` tests."""

    def exists(self, key: str) -> list[Any]:
        """Conditions any of which makes ``key`` present (``$exists``)."""


def _not_empty(path: str) -> Any:
    return models.Filter(must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key=path))])


class VecbridgePaths:
    """vecbridge's payload layout (``payload.py``): scalars at the top, lists under ``_vb_l``."""

    def scalar(self, key: str) -> str:
        return scalar_path(key)

    def elements(self, key: str) -> str:
        return list_path(key)

    def exists(self, key: str) -> list[Any]:
        return [_not_empty(scalar_path(key)), _not_empty(list_path(key)),
                models.FieldCondition(key=EMPTY_KEY, match=models.MatchValue(value=storage_key(key)))]


VECBRIDGE = VecbridgePaths()


def to_filter(node: Node | None, paths: Paths = VECBRIDGE) -> models.Filter | None:
    """The Qdrant filter of a parsed tree (``None`` for no filter)."""
    if node is None:
        return None
    cond = _condition(node, paths)
    return cond if isinstance(cond, models.Filter) else models.Filter(must=[cond])


def _condition(node: Node, paths: Paths) -> Any:
    if isinstance(node, Cmp):
        return _compare(node, paths)
    if isinstance(node, And):
        return models.Filter(must=[_condition(n, paths) for n in node.items])
    if isinstance(node, Or):
        return models.Filter(should=[_condition(n, paths) for n in node.items])
    if isinstance(node, Not):
        return models.Filter(must_not=[_condition(node.item, paths)])
    raise TypeError(f"unknown filter node {node!r}")


def _check_number(key: str, op: str, value: Any) -> float:
    """``value`` as the float64 Qdrant compares; a whole float it cannot compare exactly is refused.

    Integers outside +-(2**53 - 1) are refused before this, by the core's rule for the
    client's ``filter_int_range``; this is the same rule for floats that are whole numbers.
    """
    v = float(value)
    if not isinstance(value, int) and v.is_integer() and _EXACT_LIMIT <= abs(v) <= _INT64_FLOAT_LIMIT:
        limit = _EXACT_LIMIT - 1
        raise UnsupportedFilterError(
            f"qdrant: {op} {value!r} on key {key!r}: the Qdrant server compares payload numbers as 64-bit "
            f"floats, which hold whole numbers exactly only from -{limit} to {limit} (2**53 - 1), and stored "
            f"integers near {value!r} could compare wrongly with it. Use a bound inside that range or beyond "
            "2**63 in magnitude, or store such values as strings")
    return v


def _one_of(key: str, path: str, values: tuple[Any, ...], op: str) -> Any:
    """A condition true when the value at ``path`` equals any of ``values`` (contract equality)."""
    strings: list[str] = []
    conds: list[Any] = []
    seen: set[Any] = set()
    for v in values:
        tag = (type(v) is bool, v)  # 1 and 1.0 are one number; True is not
        if tag in seen:
            continue
        seen.add(tag)
        if isinstance(v, str):
            strings.append(v)
        elif isinstance(v, bool):
            conds.append(models.FieldCondition(key=path, match=models.MatchValue(value=v)))
        else:
            n = _check_number(key, op, v)
            conds.append(models.FieldCondition(key=path, range=models.Range(gte=n, lte=n)))
    if len(strings) == 1:
        conds.append(models.FieldCondition(key=path, match=models.MatchValue(value=strings[0])))
    elif strings:
        conds.append(models.FieldCondition(key=path, match=models.MatchAny(any=strings)))
    return conds[0] if len(conds) == 1 else models.Filter(should=conds)


def _eq(c: Cmp, paths: Paths) -> Any:
    return _one_of(c.key, paths.scalar(c.key), (c.value,), c.op)


def _ne(c: Cmp, paths: Paths) -> Any:
    return models.Filter(must_not=[_one_of(c.key, paths.scalar(c.key), (c.value,), c.op)])


def _in(c: Cmp, paths: Paths) -> Any:
    return _one_of(c.key, paths.scalar(c.key), c.value, c.op)


def _nin(c: Cmp, paths: Paths) -> Any:
    return models.Filter(must_not=[_one_of(c.key, paths.scalar(c.key), c.value, c.op)])


def _contains(c: Cmp, paths: Paths) -> Any:
    return _one_of(c.key, paths.elements(c.key), (c.value,), c.op)


def _range(c: Cmp, paths: Paths) -> Any:
    bound = _check_number(c.key, c.op, c.value)
    return models.FieldCondition(key=paths.scalar(c.key), range=models.Range(**{_RANGE_FIELD[c.op]: bound}))


def _exists(c: Cmp, paths: Paths) -> Any:
    present = models.Filter(should=paths.exists(c.key))
    return present if c.value is True else models.Filter(must_not=[present])


#: The translation of each comparison operator of the filter language.
OPERATORS: dict[str, Callable[[Cmp, Paths], Any]] = {
    "$eq": _eq, "$ne": _ne, "$in": _in, "$nin": _nin, "$contains": _contains,
    "$gt": _range, "$gte": _range, "$lt": _range, "$lte": _range, "$exists": _exists,
}
# An operator missing here (one added to the language later) is refused, never translated
# by another operator's branch.
_compare = operator_table(OPERATORS, "qdrant")
