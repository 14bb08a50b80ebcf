"""Filters on the columns of a native table (:mod:`.native`): where a dotted key can live in a
jsonb column, and what a filter value is as a value of a column's type.

A nested object in a jsonb reads as dotted keys (``mapping.to_metadata``), so a filter key
``a.b`` may be the key ``a.b`` or ``b`` inside ``a``: :func:`splits` gives every such path (a
key with more than :data:`MAX_KEY_DOTS` dots is refused: the paths double with each dot).
:func:`compare` binds a filter value as the column's type, or says that no value of the
column can equal it (a string id for an integer column), so that the test is false instead
of an error from the server.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from decimal import Decimal
from typing import Any

from ...errors import UnsupportedFilterError

__all__ = ["MAX_KEY_DOTS", "compare", "splits"]

#: A dotted filter key names 2**dots jsonb paths; past this many dots a filter is refused.
MAX_KEY_DOTS = 6


def splits(key: str) -> tuple[tuple[str, ...], ...]:
    """Every jsonb path a flattened key can stand for: ``a.b`` is ``("a.b",)`` or ``("a", "b")``."""
    parts = key.split(".")
    if len(parts) - 1 > MAX_KEY_DOTS:
        raise UnsupportedFilterError(f"the filter key {key!r} has more than {MAX_KEY_DOTS} dots; the pgvector backend "
                                     "tries every nesting of a dotted key in a jsonb column and stops there")
    out = []
    for mask in range(1 << (len(parts) - 1)):
        path, cur = [], parts[0]
        for i, part in enumerate(parts[1:]):
            if mask >> i & 1:
                path.append(cur)
                cur = part
            else:
                cur = f"{cur}.{part}"
        out.append((*path, cur))
    return tuple(out)


def compare(kind: str, value: Any) -> tuple[Any, str] | None:
    """A filter value as a column of ``kind`` compares with it (``range:KIND`` for $gt …)."""
    if kind.startswith("range:"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if kind == "range:int":
            return Decimal(value), "numeric"  # exact for ints and floats alike
        if kind == "range:float":
            return _as_float(value), "float8"
        return None
    if isinstance(value, bool):
        return (value, "bool") if kind == "bool" else None
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return (value, "int8") if isinstance(value, int) and -2**63 <= value < 2**63 else None
    if kind == "float":
        return (_as_float(value), "float8") if isinstance(value, (int, float)) else None
    if not isinstance(value, str):
        return None
    if kind == "string":
        return value, "text"
    try:
        if kind == "uuid":
            parsed: Any = uuid.UUID(value)
            cast = "uuid"
        elif kind == "date":
            parsed, cast = _dt.date.fromisoformat(value), "date"
        elif kind in ("datetime", "datetimetz"):
            parsed = _dt.datetime.fromisoformat(value)
            aware = parsed.utcoffset() is not None
            if aware != (kind == "datetimetz") or (aware and parsed.utcoffset() != _dt.timedelta(0)):
                return None  # read back as UTC (or naive): no stored value has this text
            cast = "timestamptz" if aware else "timestamp"
        else:
            return None
    except ValueError:
        return None
    # only the text a stored value reads back as (mapping.to_metadata) can equal it
    return (parsed, cast) if (str(parsed) if kind == "uuid" else parsed.isoformat()) == value else None


def _as_float(value: float) -> float:
    if isinstance(value, int) and abs(value) > 2**53:
        raise UnsupportedFilterError(f"the pgvector backend compares a float column with integers exactly only up to "
                                     f"2**53; the filter has {value}")
    return float(value)
