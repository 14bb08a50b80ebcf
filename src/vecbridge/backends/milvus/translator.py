"""Filters and stored metadata as Milvus boolean expressions over one JSON field.

Layout of the ``metadata`` JSON field
-------------------------------------
Each metadata entry is stored under a key that carries its type, so that a
comparison only ever meets values of the type it compares with:

======  ========================  ======  ===============================
tag     value                     tag     value
======  ========================  ======  ===============================
``s``   str                       ``ls``  list of str (and empty lists)
``n``   int or float              ``li``  list of int
``b``   bool                      ``lf``  list of float
\\                                 ``lb``  list of bool
======  ========================  ======  ===============================

The stored key is ``<tag>:<key>``, or ``<tag>#<hex of the UTF-8 key>`` for a key that
holds ``[``, ``]``, ``"``, ``\\`` or an unprintable character (the Milvus 2.3 parser
splits JSON paths on ``][``).  Keys starting with ``_vb`` are vecbridge's own.

Why: Milvus Lite evaluates JSON comparisons with Python's rules (``true == 1``,
``1 in [True]``, ``"ab"`` compared with a number is *unknown*), while Milvus 2.3 is
type-strict; with one type per key both give the contract's answers.  A list never
shares a key with a scalar, so a list field equals no scalar and ``$contains`` never
matches a string.  Integers and floats share ``n`` because Milvus compares an integer
literal with a stored float (and the reverse) by value.

Missing keys
------------
Milvus 2.3 evaluates a comparison on a missing key to false, so ``not (...)`` is true
there.  Milvus Lite uses three-valued logic: the comparison is *unknown* and so is its
negation.  For a three-valued engine a comparison under an odd number of negations is
guarded with ``(exists P) and ...``, which makes it two-valued.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ... import filters
from ...errors import UnsupportedFilterError
from ...filters import And, Cmp, Node, Not

__all__ = ["META_FIELD", "OPERATORS", "Compiler", "MetaCodec", "ids_expr", "string_literal"]

META_FIELD = "metadata"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_UNSAFE_KEY_CHARS = frozenset('[]"\\')
_NO_DOC = "_vb_nodoc"  # present (true) when the document is None; "" is a real document


def string_literal(text: str) -> str:
    """``text`` as a double-quoted literal both Milvus parsers read back unchanged.

    Milvus 2.3 (ANTLR + Go) and Milvus Lite (its own tokenizer) share the escapes
    ``\\\\ \\" \\n \\r \\t``; any other character may appear raw.
    """
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    if "\n" in out or "\r" in out or "\t" in out:
        out = out.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{out}"'


def _is_safe_key(key: str) -> bool:
    return key.isprintable() and not (_UNSAFE_KEY_CHARS & set(key))


def stored_key(tag: str, key: str) -> str:
    """The JSON key that holds user key ``key`` with type tag ``tag``."""
    return f"{tag}:{key}" if _is_safe_key(key) else f"{tag}#{key.encode('utf-8').hex()}"


@functools.lru_cache(maxsize=4096)  # a collection has few distinct keys; decoding runs per hit
def _user_key(stored: str) -> str | None:
    """Inverse of :func:`stored_key`; ``None`` for vecbridge's own keys."""
    for i, ch in enumerate(stored):
        if ch == ":":
            return stored[i + 1:] if i else None
        if ch == "#":
            return bytes.fromhex(stored[i + 1:]).decode("utf-8") if i else None
        if not ch.isalpha():
            return None
    return None


def _tag(value: Any) -> str:
    if isinstance(value, bool):
        return "b"
    if isinstance(value, (int, float)):
        return "n"
    if isinstance(value, str):
        return "s"
    # a list: validation guarantees one element type
    if not value:
        return "ls"
    first = value[0]
    if isinstance(first, bool):
        return "lb"
    if isinstance(first, int):
        return "li"
    if isinstance(first, float):
        return "lf"
    return "ls"


class MetaCodec:
    """Metadata dict + document-is-None flag <-> the JSON object stored in Milvus."""

    @staticmethod
    def encode(metadata: dict[str, Any], document: str | None) -> dict[str, Any]:
        out = {stored_key(_tag(v), k): v for k, v in metadata.items()}
        if document is None:
            out[_NO_DOC] = True
        return out

    @staticmethod
    def decode(stored: dict[str, Any] | None) -> tuple[dict[str, Any], bool]:
        """Return (metadata, document_is_none)."""
        meta: dict[str, Any] = {}
        if not stored:
            return meta, False
        for k, v in stored.items():
            key = _user_key(k)
            if key is not None:
                meta[key] = v
        return meta, bool(stored.get(_NO_DOC, False))


def _path(tag: str, key: str) -> str:
    # stored keys are printable and free of quotes and backslashes: no escaping needed
    return f'{META_FIELD}["{stored_key(tag, key)}"]'


def number_literal(value: float) -> str | None:
    """An integral value as an integer literal (exact against stored integers), else a float.

    ``None`` for an integer outside int64: Milvus reads integer literals as int64 (a
    float would round near the int64 limits and answer differently).
    """
    if isinstance(value, float):
        if value.is_integer() and INT64_MIN <= value <= INT64_MAX:
            return str(int(value))
        return repr(value)
    return str(value) if INT64_MIN <= value <= INT64_MAX else None


def _float_literal(value: float) -> str:
    text = repr(float(value))
    return text if any(c in text for c in ".e") else text + ".0"


class Compiler:
    """Compile a parsed ``where`` tree into one Milvus expression.

    Parameters
    ----------
    three_valued
        The engine evaluates comparisons on missing keys to *unknown* (Milvus Lite):
        guard comparisons under negation with ``exists``.
    """

    def __init__(self, three_valued: bool, doubles: bool = False):
        self.three_valued = three_valued
        # A Milvus server compares a JSON number with a literal as doubles (checked with 2.3.5:
        # a stored 2.0**53 matches == 2**53 + 1); whole numbers are exact only below 2**53.
        self.doubles = doubles

    def compile(self, node: Node | None) -> str:
        return "" if node is None else self._node(node, False)

    def _node(self, node: Node, negated: bool) -> str:
        if isinstance(node, Cmp):
            return self._cmp(node, negated)
        if isinstance(node, Not):
            return f"not ({self._node(node.item, not negated)})"
        parts = [self._node(n, negated) for n in node.items]
        if len(parts) == 1:
            return parts[0]
        joiner = " and " if isinstance(node, And) else " or "
        return "(" + joiner.join(f"({p})" for p in parts) + ")"

    def _cmp(self, c: Cmp, negated: bool) -> str:
        return _translate(c, self, negated)

    def number(self, value: float) -> str:
        # the core refuses integers beyond int64 (Capabilities.filter_int_range), the range
        # Milvus reads integer literals in
        if self.doubles and float(value).is_integer() and 2.0**53 <= abs(value) <= 2.0**63:
            raise UnsupportedFilterError(
                f"the milvus server compares filter numbers as doubles, which hold whole numbers exactly only "
                f"below 2**53; the filter has {value!r} (Milvus Lite compares it exactly)")
        literal = number_literal(value)
        assert literal is not None, value
        return literal

    def guard(self, path: str, test: str, negated: bool) -> str:
        """``path test``, made two-valued under negation on a three-valued engine."""
        if negated and self.three_valued:
            return f"((exists {path}) and {path} {test})"
        return f"{path} {test}"


# -- the operator table: one function per comparison, (node, compiler, negated) -> expression --
def _eq(c: Cmp, comp: Compiler, negated: bool) -> str:
    value, tag = c.value, _tag(c.value)
    literal = ("true" if value else "false") if tag == "b" else \
        string_literal(value) if tag == "s" else comp.number(value)
    return comp.guard(_path(tag, c.key), f"== {literal}", negated)


def _ne(c: Cmp, comp: Compiler, negated: bool) -> str:
    return f"not ({_eq(Cmp(c.key, '$eq', c.value), comp, not negated)})"


def _in(c: Cmp, comp: Compiler, negated: bool) -> str:
    # dedupe by (type tag, value): True == 1 in Python, but not in the filter language
    unique = {(_tag(v), v): v for v in c.value}.values()
    parts = [_eq(Cmp(c.key, "$eq", v), comp, negated) for v in unique]
    return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"


def _nin(c: Cmp, comp: Compiler, negated: bool) -> str:
    return f"not ({_in(Cmp(c.key, '$in', c.value), comp, not negated)})"


def _range(symbol: str) -> Callable[[Cmp, Compiler, bool], str]:
    def translate(c: Cmp, comp: Compiler, negated: bool) -> str:
        return comp.guard(_path("n", c.key), f"{symbol} {comp.number(c.value)}", negated)
    return translate


def _contains(c: Cmp, comp: Compiler, negated: bool) -> str:
    # json_contains_any(P, [v]): unlike json_contains, Milvus Lite accepts negative numbers there
    key, value = c.key, c.value
    if isinstance(value, bool):
        return f"json_contains_any({_path('lb', key)}, [{'true' if value else 'false'}])"
    if isinstance(value, str):
        return f"json_contains_any({_path('ls', key)}, [{string_literal(value)}])"
    # Milvus 2.3 matches an integer literal only against integer elements and a float
    # literal against either; so ask each list kind in its own terms.  (Integers beyond
    # int64 never get here: the core refuses them, see Capabilities.filter_int_range.)
    parts = []
    integral = isinstance(value, int) or (math.isfinite(value) and float(value).is_integer())
    if integral and INT64_MIN <= value <= INT64_MAX:
        parts.append(f"json_contains_any({_path('li', key)}, [{int(value)}])")
    if float(value) == value:
        parts.append(f"json_contains_any({_path('lf', key)}, [{_float_literal(float(value))}])")
    return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"


#: Every type tag a stored key may carry (see the layout above).
_TAGS = ("s", "n", "b", "ls", "li", "lf", "lb")


def _exists(c: Cmp, comp: Compiler, negated: bool) -> str:
    # the key is present under whichever tag its value has; ``exists`` is two-valued on both
    # engines, so no guard is needed under negation
    present = " or ".join(f"(exists {_path(tag, c.key)})" for tag in _TAGS)  # Milvus 2.3 binds `exists` loosely
    return f"({present})" if c.value else f"not ({present})"


#: Every comparison of the filter language and its translation; an operator missing here
#: is refused with UnsupportedFilterError (filters.operator_table), never translated as another.
OPERATORS: dict[str, Callable[[Cmp, Compiler, bool], str]] = {
    "$eq": _eq, "$ne": _ne, "$in": _in, "$nin": _nin, "$contains": _contains,
    "$gt": _range(">"), "$gte": _range(">="), "$lt": _range("<"), "$lte": _range("<="), "$exists": _exists,
}
_translate = filters.operator_table(OPERATORS, "milvus")


def ids_expr(ids: Iterable[str], field: str = "id") -> str:
    """``id in [...]`` with every id escaped."""
    return f"{field} in [{', '.join(string_literal(i) for i in ids)}]"


def conjunction(parts: Sequence[str]) -> str:
    """AND of the non-empty expressions in ``parts``."""
    kept = [p for p in parts if p]
    if len(kept) <= 1:
        return kept[0] if kept else ""
    return " and ".join(f"({p})" for p in kept)
