"""The filter language: parsing, validation and the reference evaluator.

A ``where`` is Mongo-style::

    {"genre": "jazz"}                                  # $eq
    {"year": {"$gte": 1990, "$lt": 2000}}              # several operators: AND
    {"$or": [{"genre": "jazz"}, {"tags": {"$contains": "live"}}]}

:func:`parse` turns it into a small tree (:class:`Cmp`, :class:`And`, :class:`Or`,
:class:`Not`) that backends translate into their native filters.
:func:`evaluate` defines the semantics every backend must reproduce:

* a comparison on a missing key is false, except ``$ne`` and ``$nin``, which are true;
* numbers compare by value (``1 == 1.0``); a bool never equals a number, a string
  never equals a number;
* range operators take numbers only and match only numbers (never bools);
* ``$eq``/``$ne``/``$in``/``$nin`` compare a scalar field; a list field equals no
  scalar (use ``$contains``, which is true when a list field holds the value);
* ``$exists`` takes ``true`` (the key is present, whatever its value) or ``false`` (absent);
* ``$not`` negates its filter as a whole.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, Union

from .errors import InvalidFilterError, UnsupportedFilterError
from .validation import plain_scalar

T = TypeVar("T")

__all__ = [
    "COMPARISONS",
    "RANGE_OPS",
    "And",
    "Cmp",
    "Node",
    "Not",
    "Or",
    "evaluate",
    "matches",
    "numbers",
    "operator_table",
    "parse",
    "to_sql",
    "values_equal",
]

COMPARISONS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$contains", "$exists")
RANGE_OPS = ("$gt", "$gte", "$lt", "$lte")
LOGIC = ("$and", "$or", "$not")


@dataclass(frozen=True)
class Cmp:
    """``metadata[key] <op> value``; ``op`` is one of :data:`COMPARISONS`."""

    key: str
    op: str
    value: Any  # a scalar, or a tuple of scalars for $in / $nin


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Union[Cmp, And, Or, Not]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_scalar(v: Any, where: str) -> None:
    if isinstance(v, str):
        _check_text(v, f"{where}: the value")
        return
    if isinstance(v, bool):
        return
    if _is_number(v):
        if isinstance(v, float) and not math.isfinite(v):
            raise InvalidFilterError(f"{where}: {v} is not a finite number")
        return
    raise InvalidFilterError(f"{where}: {v!r} is {type(v).__name__}; filter values are str, int, float or bool")


def _check_text(text: str, what: str) -> None:
    """Refuse text no stored key or value can hold: a NUL, or a lone surrogate (not UTF-8)."""
    if "\x00" in text:
        raise InvalidFilterError(f"{what} holds a NUL character, which no stored text can hold")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidFilterError(f"{what} is not valid Unicode text (a lone surrogate), which no stored text "
                                 "can hold") from None


def _parse_ops(key: str, spec: Any, path: str) -> list[Node]:
    if not isinstance(spec, Mapping):
        spec = plain_scalar(spec)
        _check_scalar(spec, f"{path}[{key!r}]")
        return [Cmp(key, "$eq", spec)]
    if not spec:
        raise InvalidFilterError(f"{path}[{key!r}] is an empty operator dict")
    out: list[Node] = []
    for op, value in spec.items():
        where = f"{path}[{key!r}][{op!r}]"
        value = plain_scalar(value)
        if op not in COMPARISONS:
            raise InvalidFilterError(f"{where}: unknown operator {op!r}; operators are {' '.join(COMPARISONS)}")
        if op in RANGE_OPS:
            if not _is_number(value):
                raise InvalidFilterError(f"{where}: {op} takes a number, got {type(value).__name__} {value!r}")
            _check_scalar(value, where)
        elif op == "$exists":
            if not isinstance(value, bool):
                raise InvalidFilterError(f"{where}: $exists takes true or false, got {type(value).__name__} {value!r}")
        elif op in ("$in", "$nin"):
            if not isinstance(value, (list, tuple)) or not value:
                raise InvalidFilterError(f"{where}: {op} takes a non-empty list of values, got {value!r}")
            value = tuple(plain_scalar(v) for v in value)
            for i, v in enumerate(value):
                _check_scalar(v, f"{where}[{i}]")
        else:
            _check_scalar(value, where)
        out.append(Cmp(key, op, value))
    return out


def parse(where: Any, path: str = "where") -> Node | None:
    """Validate ``where`` and return its tree (``None`` for no filter)."""
    if where is None:
        return None
    if not isinstance(where, Mapping):
        raise InvalidFilterError(f"{path} must be a dict, got {type(where).__name__} {where!r}")
    if not where:
        return None if path == "where" else _empty(path)
    nodes: list[Node] = []
    for key, spec in where.items():
        if not isinstance(key, str) or not key:
            raise InvalidFilterError(f"{path} has the key {key!r}; keys are non-empty strings")
        _check_text(key, f"{path}: the key {key!r}")
        if key in ("$and", "$or"):
            if not isinstance(spec, (list, tuple)) or not spec:
                raise InvalidFilterError(f"{path}[{key!r}] takes a non-empty list of filters")
            subs = []
            for i, s in enumerate(spec):
                n = parse(s, f"{path}[{key!r}][{i}]")
                assert n is not None
                subs.append(n)
            nodes.append(And(tuple(subs)) if key == "$and" else Or(tuple(subs)))
        elif key == "$not":
            n = parse(spec, f"{path}['$not']")
            assert n is not None
            nodes.append(Not(n))
        elif key.startswith("$"):
            raise InvalidFilterError(f"{path}: unknown logical operator {key!r}; use $and, $or or $not")
        elif key.startswith("_vb"):
            raise InvalidFilterError(f"{path}: the key {key!r} is reserved (keys may not start with '_vb')")
        else:
            nodes.extend(_parse_ops(key, spec, path))
    return nodes[0] if len(nodes) == 1 else And(tuple(nodes))


def _empty(path: str) -> Node:
    raise InvalidFilterError(f"{path} is an empty filter inside a logical operator")


def values_equal(stored: Any, value: Any) -> bool:
    """Equality of a stored scalar and a filter value under the contract's rules."""
    if isinstance(stored, bool) or isinstance(value, bool):
        return isinstance(stored, bool) and isinstance(value, bool) and stored == value
    if isinstance(stored, str) or isinstance(value, str):
        return isinstance(stored, str) and isinstance(value, str) and stored == value
    if _is_number(stored) and _is_number(value):
        return stored == value
    return False


def _cmp(node: Cmp, metadata: Mapping[str, Any]) -> bool:
    op = node.op
    if op == "$exists":
        return (node.key in metadata) is node.value
    if node.key not in metadata:
        return op in ("$ne", "$nin")
    stored = metadata[node.key]
    if op == "$eq":
        return values_equal(stored, node.value)
    if op == "$ne":
        return not values_equal(stored, node.value)
    if op == "$in":
        return any(values_equal(stored, v) for v in node.value)
    if op == "$nin":
        return not any(values_equal(stored, v) for v in node.value)
    if op == "$contains":
        return isinstance(stored, list) and any(values_equal(x, node.value) for x in stored)
    if not _is_number(stored):
        return False
    if op == "$gt":
        return stored > node.value
    if op == "$gte":
        return stored >= node.value
    if op == "$lt":
        return stored < node.value
    return stored <= node.value  # $lte


def matches(node: Node | None, metadata: Mapping[str, Any]) -> bool:
    """Evaluate a parsed tree against one record's metadata."""
    if node is None:
        return True
    if isinstance(node, Cmp):
        return _cmp(node, metadata)
    if isinstance(node, And):
        return all(matches(n, metadata) for n in node.items)
    if isinstance(node, Or):
        return any(matches(n, metadata) for n in node.items)
    return not matches(node.item, metadata)


def evaluate(where: Any, metadata: Mapping[str, Any] | None) -> bool:
    """The reference evaluator: does ``metadata`` satisfy ``where``?"""
    return matches(parse(where), metadata or {})


def to_sql(node: Node, leaf: Callable[[Cmp], str]) -> str:
    """Render a tree as a SQL boolean: ``leaf`` renders each comparison (binding its
    parameters as it goes, in text order); AND, OR and NOT are the same in every dialect."""
    if isinstance(node, And):
        return "(" + " AND ".join(to_sql(n, leaf) for n in node.items) + ")"
    if isinstance(node, Or):
        return "(" + " OR ".join(to_sql(n, leaf) for n in node.items) + ")"
    if isinstance(node, Not):
        return "(NOT " + to_sql(node.item, leaf) + ")"
    return leaf(node)


def numbers(node: Node) -> Iterator[tuple[Cmp, Any]]:
    """Every number a tree compares with (bools excluded), with its comparison."""
    if isinstance(node, Cmp):
        values = node.value if isinstance(node.value, tuple) else (node.value,)
        yield from ((node, v) for v in values if _is_number(v))
    elif isinstance(node, Not):
        yield from numbers(node.item)
    else:
        for item in node.items:
            yield from numbers(item)


def operator_table(table: Mapping[str, Callable[..., T]], backend: str) -> Callable[..., T]:
    """A translator's dispatch: ``table`` maps each comparison operator to the function that
    translates it; an operator missing from the table (one added to the language later) is
    refused with :class:`UnsupportedFilterError`, never sent to another operator's branch.

    The returned function takes the :class:`Cmp` first, then whatever the backend passes on.
    """

    def translate(node: Cmp, *args: Any, **kwargs: Any) -> T:
        fn = table.get(node.op)
        if fn is None:
            raise UnsupportedFilterError(f"the {backend} backend cannot run the filter operator {node.op} "
                                         f"(on the key {node.key!r})")
        return fn(node, *args, **kwargs)

    translate.operators = frozenset(table)  # type: ignore[attr-defined]
    return translate
