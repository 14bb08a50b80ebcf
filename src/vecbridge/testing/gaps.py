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

import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from vecbridge.validation import plain_scalar

__all__ = [
    "FILTER_GAPS",
    "INDEX_GAPS",
    "NATIVE_GAPS",
    "TableGap",
    "add_gap",
    "all_gaps",
    "differing_gap",
    "filter_gap",
    "has_index",
    "names_in_tables",
    "native_gaps",
    "native_written",
]

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
    #: For a native-collection gap: which of its tests' parameters it covers (``None``: all), as a
    #: predicate over the test's parameters (``metric``, ``where`` …) -- a strict xfail there.
    params: Callable[[Mapping[str, Any]], bool] | None = None
    #: For a native-collection filter gap: the filters it covers (a predicate over a whole filter),
    #: and whether such a filter is answered differently (``differs``: a strict xfail where a test
    #: is given it, not drawn by the property test) or refused (allowed, as a filter gap above).
    covers: Callable[[Any], bool] | None = None
    differs: bool = False
    #: For a native-collection gap of the data itself: what the native schema holds of the
    #: standard dataset (the dataset written -> the dataset expected back; the metric given).
    written: Callable[[Any, str], Any] | None = None

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


def filter_gap(backend: str, where: Any, layout: str = "vecbridge") -> TableGap | None:
    """The gap that allows ``backend`` to refuse ``where`` (``None``: a refusal fails the test);
    on a native collection (``layout``) its entries of :data:`NATIVE_GAPS` too."""
    if layout == "native":
        for gap in native_gaps(backend):
            if gap.covers is not None and not gap.differs and gap.covers(where):
                return gap
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


# -- native collections ---------------------------------------------------------------------
# The read tests run again on a collection of the standard dataset written by each database's
# own client (:mod:`.native`).  What such a schema holds differently from vecbridge's own
# layout is listed here: an entry with ``written`` says how the data held differs from the data
# given (the tests then expect what is held, from numpy and the reference evaluator as ever); an
# entry with ``covers`` is about filters: refused (allowed, as a filter gap) or, with ``differs``,
# answered otherwise (a strict xfail of the fixed cases it covers; the property test draws other
# filters); any other entry is a strict xfail of its ``tests`` (narrowed by ``params``) on that
# family's native collection.  A test that reads parts a family's native collection does not hold
# (:attr:`.native.NativeFamily.holds`) is not generated for it; its entry here says so.
def _without_empty_lists(ds: Any, metric: str) -> Any:
    from dataclasses import replace

    return replace(ds, metadatas=[{k: v for k, v in m.items() if v != []} for m in ds.metadatas])


def _no_metadata(ds: Any, metric: str) -> Any:
    from dataclasses import replace

    return replace(ds, metadatas=[{} for _ in ds.ids], documents=[None for _ in ds.ids])


def _normalised_for_cosine(ds: Any, metric: str) -> Any:
    from dataclasses import replace

    import numpy as np

    if metric != "cosine":
        return ds
    v = np.asarray(ds.vectors, dtype=np.float32)
    return replace(ds, vectors=(v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32))


_METADATA_TESTS = ("test_query.py::test_filtered_query_returns_k_best_matches", "test_query.py::test_query_include",
                   "test_filters.py::test_filter_matches_reference", "test_filters.py::test_get_by_ids_and_where",
                   "test_filters.py::test_generated_filters_match_reference")
#: Tests that compare the vectors of the cosine collection bit for bit (test_partitions.py is
#: vecbridge's own, in tests/conformance/).
_COSINE_VECTOR_TESTS = ("test_query.py::test_query_include", "test_partitions.py::test_partitions_hold_every_record_once")
_FILTER_TESTS = ("test_filters.py::test_filter_matches_reference", "test_filters.py::test_generated_filters_match_reference",
                 "test_query.py::test_filtered_query_returns_k_best_matches")
_RANGE = ("$gt", "$gte", "$lt", "$lte")
_EQUALITY = ("$eq", "$ne", "$in", "$nin")


def _leaves(where: Any, negated: bool = False) -> Iterator[tuple[str, str, Any, bool]]:
    """Every comparison of ``where``: (key, operator, operand, under an odd number of ``$not``)."""
    if not isinstance(where, dict):
        return
    for key, value in where.items():
        if key in ("$and", "$or"):
            for item in value if isinstance(value, list) else []:
                yield from _leaves(item, negated)
        elif key == "$not":
            yield from _leaves(value, not negated)
        elif isinstance(value, dict) and all(isinstance(k, str) and k.startswith("$") for k in value):
            for op, operand in value.items():
                yield key, op, operand, negated
        else:
            yield key, "$eq", value, negated


@functools.cache
def _stored(key: str) -> list[Any]:
    """The values the standard dataset holds under ``key`` (what the native collections hold)."""
    from vecbridge.testing.data import make_dataset

    return [m[key] for m in make_dataset().metadatas if key in m]


def _same(a: Any, b: Any) -> bool:
    """Equal as the contract compares: numbers by value (1 == 1.0), a bool only with a bool."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    return type(a) is type(b) and a == b or (isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == b)


def _element_matched(where: Any) -> bool:
    # an equality whose operand is an element of a list held under the key, $contains whose
    # operand a scalar under the key equals, a range over a key holding lists of numbers: Qdrant
    # answers each by the elements
    for key, op, operand, _ in _leaves(where):
        values = _stored(key)
        lists = [x for v in values if isinstance(v, list) for x in v]
        scalars = [v for v in values if not isinstance(v, list)]
        operands = operand if op in ("$in", "$nin") and isinstance(operand, list) else [operand]
        if op in _EQUALITY and any(_same(o, x) for o in operands for x in lists):
            return True
        if op == "$contains" and any(_same(operand, x) for x in scalars):
            return True
        if op in _RANGE and any(type(x) in (int, float) for x in lists):
            return True
    return False


def _dotted_key(where: Any) -> bool:
    return any("." in key and _stored(key) for key, _, _, _ in _leaves(where))


def _exists_on_empty_list(where: Any) -> bool:
    return any(op == "$exists" and [] in _stored(key) for key, op, _, _ in _leaves(where))


def _negative(op: str, negated: bool) -> bool:
    """Does the comparison hold where the key is missing (a negation, or one under ``$not``)?"""
    return op != "$exists" and ((op in ("$ne", "$nin")) != negated)


def _negated_range_on_other_types(where: Any) -> bool:
    return any(op in _RANGE and negated and any(isinstance(v, (str, list)) for v in _stored(key))
               for key, op, _, negated in _leaves(where))


def _bool_against_number(where: Any) -> bool:
    # a bool compared where the key holds numbers, or a number where it holds bools
    for key, op, operand, _ in _leaves(where):
        if op == "$exists":
            continue
        values = _stored(key)
        operands = operand if isinstance(operand, list) else [operand]
        holds_bool = any(type(v) is bool for v in values)
        holds_number = any(type(v) in (int, float) for v in values)
        if any(type(o) is bool for o in operands) and holds_number:
            return True
        if any(type(o) in (int, float) for o in operands) and holds_bool:
            return True
    return False


def _contains_on_odd_name(where: Any) -> bool:
    return any(op == "$contains" and not key.isidentifier() for key, op, _, _ in _leaves(where))


def _negated_range(where: Any) -> bool:
    return any(op in _RANGE and negated for _, op, _, negated in _leaves(where))


NATIVE_GAPS: tuple[TableGap, ...] = (
    TableGap("never", ("chroma",), "native collection: an empty list in metadata",
             "chromadb refuses a metadata list that is empty (\"Expected metadata list value … to be non-empty\"), so "
             "an application's own write leaves such a key out: the native collection holds the records without it",
             ("test_records.py::test_scan_yields_every_record_once",), written=_without_empty_lists),
    TableGap("never", ("chroma",), "native collection: bit-exact vectors of a cosine space",
             "Chroma gives the vectors of a cosine collection back to within an ulp of those written (vecbridge's "
             "own layout keeps an exact copy, which a collection of the application's has not)",
             _COSINE_VECTOR_TESTS),
    TableGap("notimpl", ("chroma",), "native collection: $not over a range operator",
             "Chroma has no $not: vecbridge writes it as the complement of each comparison, and the complement of a "
             "range must also match the records that lack the key or hold another type, which vecbridge finds "
             "through the per-record list of numeric keys its own layout writes; a native collection has none, so "
             "such a filter is refused (rewrite it without $not around the range)",
             _FILTER_TESTS, covers=_negated_range),
    TableGap("never", ("qdrant",), "native collection: equality on a key that holds arrays",
             "Qdrant matches a value (and a range) against every element of an array payload, and $contains "
             "against a scalar one, so on plain payload keys {'tags': 'live'} matches ['live', 'rare'] and {'genre': {'$contains': "
             "'jazz'}} matches 'jazz'; vecbridge's layout keeps the type apart, a native payload has nothing that can",
             (*_FILTER_TESTS, "test_filters.py::test_get_by_ids_and_where"), covers=_element_matched, differs=True),
    TableGap("notimpl", ("qdrant", "milvus"), "native collection: a key with a dot in its name",
             "vecbridge reads a dotted key of a native payload or dynamic field as the nested path (nested objects "
             "map to dotted keys), so a top-level key named 'a.b' is not found by a filter on 'a.b'; a filter "
             "matching either would close it",
             _FILTER_TESTS, covers=_dotted_key, differs=True),
    TableGap("never", ("qdrant",), "native collection: $exists on an empty array",
             "Qdrant's IsEmpty condition holds for a missing key and for an empty array alike, so a point whose "
             "payload holds [] does not pass {'$exists': True}; vecbridge's layout keeps its own list of keys",
             _FILTER_TESTS, covers=_exists_on_empty_list, differs=True),
    TableGap("never", ("qdrant",), "native collection: bit-exact vectors of a cosine collection",
             "Qdrant normalises the vectors of a cosine collection when they are written; vecbridge's layout keeps "
             "an exact copy in the payload, a native collection has only the normalised ones",
             _COSINE_VECTOR_TESTS),
    TableGap("notimpl", ("milvus",), "native collection: $not over a range on a key of other types",
             "Milvus evaluates a range on a JSON value of another type (genre > 0 on a string) as unknown and "
             "not (unknown) as false, so such records are left out where the contract matches them; vecbridge's "
             "layout has type-tagged keys, a native dynamic field would need a type test per value",
             _FILTER_TESTS, covers=_negated_range_on_other_types, differs=True),
    TableGap("never", ("milvus-lite",), "native collection: true and 1 under one key",
             "Milvus Lite compares JSON booleans as numbers (true == 1, true > 0), so on a dynamic key holding "
             "bools in some rows and numbers in others {'live': True} also matches 1 (and {'rating': True} a rating "
             "of 1); vecbridge's layout keeps the "
             "types apart, a native dynamic field holds only the JSON value",
             _FILTER_TESTS,
             covers=_bool_against_number, differs=True),
    TableGap("notimpl", ("milvus-lite",), "native collection: $contains on a dynamic key that is no identifier",
             "Milvus Lite's parser refuses json_contains on a dynamic key such as 'with space' (\"expected field "
             "name\"), where $meta['with space'] == ... works; vecbridge refuses the filter (its own layout keeps "
             "metadata under one JSON field)",
             _FILTER_TESTS, covers=_contains_on_odd_name),
    TableGap("never", ("faiss",), "native collection: metadata and documents",
             "a FAISS index file (faiss.write_index) holds vectors and int64 ids only; the read tests that need "
             "metadata or documents are not generated for it, the others expect none",
             _METADATA_TESTS, written=_no_metadata),
    TableGap("never", ("faiss",), "native collection: cosine",
             "nothing in a FAISS index file says cosine: a cosine index is an inner-product index of vectors "
             "normalised before writing, opened with ?metric=cosine, so its vectors are the normalised ones",
             ("test_records.py::test_scan_yields_every_record_once",), written=_normalised_for_cosine),
)


def differing_gap(backend: str, layout: str, where: Any) -> TableGap | None:
    """The native gap under which ``backend`` answers ``where`` differently from the contract
    (``None``: it must answer it exactly)."""
    if layout != "native":
        return None
    return next((g for g in native_gaps(backend) if g.differs and g.covers is not None and g.covers(where)), None)


def native_gaps(name: str) -> list[TableGap]:
    """The native-collection entries that apply to the backend form ``name``."""
    return [g for g in NATIVE_GAPS if g.applies_to(name)]


def native_written(name: str, ds: Any, metric: str = "l2") -> Any:
    """What the native collection of ``name``'s family holds of the dataset ``ds`` (each
    ``written`` entry applied in turn)."""
    for gap in native_gaps(name):
        if gap.written is not None:
            ds = gap.written(ds, metric)
    return ds


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
    return [g for gaps in INDEX_GAPS.values() for g in gaps] + list(FILTER_GAPS) + list(NATIVE_GAPS)


def names_in_tables() -> set[str]:
    """Every backend name the tables use (checked by the plugin against the known names)."""
    return {b for g in all_gaps() for b in g.backends}
