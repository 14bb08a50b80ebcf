"""The suite's own table of what each backend lacks, with the reason.

The conformance tests decide what to expect from this table and from the
``notimpl``/``never`` markers on the tests, never from what a backend declares about
itself (``client.capabilities``): a backend whose declaration is wrong is then caught.
A refusal (``UnsupportedFeatureError``, ``UnsupportedFilterError``) that no entry here
allows fails the test.  The docs' capability matrix lists these entries next to the
markers (``docs/hooks/capabilities.py`` imports this module).

Each entry names backends by family (``chroma``: every form) or by form
(``milvus-lite``); names the plugin does not know are an error, as in a marker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from vecbridge.validation import plain_scalar

__all__ = ["FILTER_GAPS", "INDEX_GAPS", "TableGap", "add_gap", "all_gaps", "filter_gap", "has_index", "names_in_tables"]

KINDS = ("notimpl", "never")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class TableGap:
    """One thing some backends lack: what (``feature``), whether it can be closed
    (``kind``), why (``reason``), and which suite tests act on it (``tests``)."""

    kind: str
    backends: tuple[str, ...]
    feature: str
    reason: str
    tests: tuple[str, ...]
    #: For a filter gap: does it cover this number of a filter?  (``None``: not a filter gap.)
    number: Callable[[Any], bool] | None = None
    #: For a filter gap: the operators it covers (a filter using one of them may be refused).
    operators: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"{self.feature}: kind {self.kind!r} is not one of {KINDS}")
        if not self.reason.strip():
            raise ValueError(f"{self.feature}: a gap needs a reason")

    def applies_to(self, name: str) -> bool:
        """Does this gap cover the backend form ``name`` (``family-form``)?"""
        return name in self.backends or name.split("-", 1)[0] in self.backends


# -- index types ------------------------------------------------------------------------
#: Every backend accepts ``{"type": T}`` for each T below unless an entry says otherwise.
INDEX_GAPS: dict[str, tuple[TableGap, ...]] = {
    "flat": (
        TableGap("never", ("chroma",), "index flat (exact search)",
                 "Chroma builds an HNSW index for every collection and offers no exact (brute-force) index",
                 ("test_collections.py::test_index_choices",)),
    ),
    "hnsw": (),
}


def has_index(backend: str, index_type: str) -> bool:
    """What the suite expects: does ``backend`` (a form name) accept ``index_type``?"""
    return not any(g.applies_to(backend) for g in INDEX_GAPS[index_type])


# -- numbers in filters -------------------------------------------------------------------
def _beyond_int64(x: Any) -> bool:
    return isinstance(x, int) and not INT64_MIN <= x <= INT64_MAX


def _beyond_float53(x: Any) -> bool:
    # an int beyond 2**53 - 1, or a whole float that an int64 could round to (2**53 .. 2**63)
    if isinstance(x, int):
        return abs(x) >= 2**53
    return x.is_integer() and 2.0**53 <= abs(x) <= 2.0**63


def _near_2_63(x: Any) -> bool:
    return abs(float(x)) >= 2.0**63


FILTER_GAPS: tuple[TableGap, ...] = (
    TableGap("never", ("qdrant", "milvus-server"),
             "filter integers of magnitude 2**53 or more (and whole floats up to 2**63)",
             "Qdrant and the Milvus server compare payload/JSON numbers as 64-bit floats, which hold whole "
             "numbers exactly only below 2**53; such a filter is refused rather than answered approximately "
             "(Milvus Lite compares them exactly)",
             ("test_reliability.py::test_large_numbers_in_filters",), _beyond_float53),
    TableGap("never", ("chroma", "faiss", "milvus-lite"), "filter integers outside int64",
             "the engine stores and compares integers as int64, so an integer beyond int64 in a filter "
             "is refused (the core's filter_int_range rule)",
             ("test_reliability.py::test_large_numbers_in_filters",), _beyond_int64),
    TableGap("notimpl", ("chroma",), "the $exists operator",
             "Chroma has no test that holds for a key whatever its value; vecbridge would need a per-record "
             "list of every key in its stored format (it keeps one only for numeric keys)",
             ("test_filters.py::test_filter_matches_reference", "test_filters.py::test_generated_filters_match_reference"),
             operators=("$exists",)),
    TableGap("never", ("chroma",), "filter numbers that round to 2.0**63",
             "Chroma compares an int field with a float operand saturated to int64 and a float field with "
             "an int operand as its nearest float; at 2.0**63 no correcting term can tell them apart",
             ("test_reliability.py::test_large_numbers_in_filters",), _near_2_63),
)


def _numbers(where: Any) -> Iterator[Any]:
    """Every number (bools excluded) that ``where`` compares with; walked here rather than
    taken from the core, so that the suite's table does not depend on the code under test."""
    stack = [where]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        else:
            value = plain_scalar(item)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                yield value


def filter_gap(backend: str, where: Any) -> TableGap | None:
    """The gap that allows ``backend`` to refuse ``where`` (``None``: a refusal fails the test)."""
    values = list(_numbers(where))
    ops = set(_operators(where))
    for gap in FILTER_GAPS:
        if not gap.applies_to(backend):
            continue
        if gap.number is not None and any(gap.number(x) for x in values):
            return gap
        if ops & set(gap.operators):
            return gap
    return None


def _operators(where: Any) -> Iterator[str]:
    """Every comparison operator ``where`` uses (walked here, not taken from the core)."""
    stack = [where]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if isinstance(key, str) and key.startswith("$") and key not in ("$and", "$or", "$not"):
                    yield key
                stack.append(value)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def add_gap(gap: TableGap, index_type: str | None = None) -> None:
    """Add an entry (a third-party backend's, from its conftest): an index type it lacks
    (``index_type``), or numbers in filters it may refuse (``gap.number``)."""
    global FILTER_GAPS
    if index_type is not None:
        INDEX_GAPS[index_type] = (*INDEX_GAPS.get(index_type, ()), gap)
    elif gap.number is not None:
        FILTER_GAPS = (*FILTER_GAPS, gap)
    else:
        raise ValueError(f"{gap.feature}: give index_type=, or a number= predicate for a filter gap")


def all_gaps() -> list[TableGap]:
    """Every entry of the tables, for the docs."""
    return [g for gaps in INDEX_GAPS.values() for g in gaps] + list(FILTER_GAPS)


def names_in_tables() -> set[str]:
    """Every backend name the tables use (checked by the plugin against the known names)."""
    return {b for g in all_gaps() for b in g.backends}
