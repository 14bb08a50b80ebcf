"""What the LlamaIndex and Haystack bridges share: the collection behind a store, and
filter pieces that give vecbridge's language Python's comparison rules.

Why the second part exists: both frameworks define their filters by what Python's ``==``
and ``<`` do on the stored values (LlamaIndex's ``build_metadata_filter_fn``, Haystack's
``document_matches_filter``), and Python says ``True == 1`` and ``True > 0``, where
vecbridge's language keeps bools and numbers apart. Each helper here writes the Python
rule out in vecbridge's terms (``{"$or": [{"k": 1}, {"k": True}]}``), so that every backend
answers as the framework's own reference evaluator, inside the database.

A filter under construction is a vecbridge ``where`` dict, or ``True`` / ``False`` for a
condition that holds for every record / for none (an empty ``IN`` list, a range against
``None``); :func:`and_`, :func:`or_` and :func:`not_` fold those constants away, so that
no backend is ever asked a constant.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any, Union

import vecbridge
from vecbridge.errors import CollectionNotFoundError, InvalidURLError
from vecbridge.url import URL

Where = Union[dict[str, Any], bool]

_PY_RANGE = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}


def and_(parts: Iterable[Where]) -> Where:
    items: list[dict[str, Any]] = []
    for p in parts:
        if p is False:
            return False
        if p is not True:
            items.append(p)  # type: ignore[arg-type]
    if not items:
        return True
    return items[0] if len(items) == 1 else {"$and": items}


def or_(parts: Iterable[Where]) -> Where:
    items: list[dict[str, Any]] = []
    for p in parts:
        if p is True:
            return True
        if p is not False:
            items.append(p)  # type: ignore[arg-type]
    if not items:
        return False
    return items[0] if len(items) == 1 else {"$or": items}


def not_(part: Where) -> Where:
    if isinstance(part, bool):
        return not part
    return {"$not": part}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def py_eq(key: str, value: Any) -> Where:
    """Records whose ``key`` holds a scalar ``== value`` by Python's rule (``True == 1 == 1.0``).

    ``value`` is a str, an int, a float or a bool. A stored list equals no scalar, in Python as
    in vecbridge.
    """
    if isinstance(value, bool):
        return or_([{key: {"$eq": value}}, {key: {"$eq": int(value)}}])
    if _is_number(value):
        return or_([{key: {"$eq": value}}] + [{key: {"$eq": b}} for b in (False, True) if b == value])
    return {key: {"$eq": value}}


def py_in(key: str, values: Iterable[Any]) -> Where:
    """Records whose scalar under ``key`` is ``in values`` by Python's rule (an empty list: none)."""
    values = list(values)
    if not values:
        return False
    bools = [b for b in (False, True) if any(b == v for v in values)]
    parts: list[Where] = [{key: {"$in": values}}]
    if bools:
        parts.append({key: {"$in": bools}})
    return or_(parts)


def py_contains(key: str, value: Any) -> Where:
    """Records whose list under ``key`` holds an element ``== value`` by Python's rule."""
    if isinstance(value, bool):
        return or_([{key: {"$contains": value}}, {key: {"$contains": int(value)}}])
    if _is_number(value):
        return or_([{key: {"$contains": value}}] + [{key: {"$contains": b}} for b in (False, True) if b == value])
    return {key: {"$contains": value}}


def py_range(key: str, op: str, value: Any) -> Where:
    """Records whose scalar under ``key`` compares so with the number (or bool) ``value`` by
    Python's rule, where a bool is the number 0 or 1 (``True > 0``)."""
    if isinstance(value, bool):
        value = int(value)
    cmp = _PY_RANGE[op]
    return or_([{key: {op: value}}] + [{key: {"$eq": b}} for b in (False, True) if cmp(int(b), value)])


class CollectionHandle:
    """The collection behind a framework store.

    Given a URL, it connects once and opens the collection named by ``?collection=``; a
    collection that does not exist yet reads as empty and is created by the first write,
    with the dimension of that write's vectors (or the one given). Given a ``Collection``, it
    uses it as it is.
    """

    def __init__(self, target: str | URL | Any, *, dimension: int | None = None, metric: str = "cosine",
                 index: dict[str, Any] | None = None) -> None:
        self.dimension = dimension
        self.metric = metric
        self.index = index
        self._client: Any = None
        self._coll: Any = None
        self.url: URL | None = None
        if isinstance(target, (str, URL)):
            self.url = URL.parse(target)
            name = self.url.query.get("collection")
            if not name:
                raise InvalidURLError(f"{self.url} names no collection: add '?collection=NAME' to the URL")
            self.name = str(name)
        elif isinstance(target, vecbridge.Collection):
            self._coll = target
            self.name = target.name
        else:
            raise TypeError(f"expected a vecbridge URL or Collection, got {type(target).__name__}")

    def _connected(self) -> Any:
        if self._client is None:
            assert self.url is not None
            self._client = vecbridge.connect(self.url)
        return self._client

    def get(self) -> Any:
        """The collection, or ``None`` while it does not exist."""
        if self._coll is None:
            try:
                self._coll = self._connected().get_collection(self.name)
            except CollectionNotFoundError:
                return None
        return self._coll

    def for_write(self, dimension: int | None) -> Any:
        """The collection, created first (with ``dimension``, or the one given) if it is missing."""
        coll = self.get()
        if coll is not None:
            return coll
        dim = self.dimension or dimension
        if dim is None:
            raise ValueError(f"collection {self.name!r} does not exist yet and nothing gives its dimension: "
                             "write records with embeddings first, or give the store a dimension")
        self._coll = self._connected().get_or_create_collection(self.name, dim, self.metric, self.index)
        return self._coll

    def all_ids(self) -> list[str]:
        coll = self.get()
        if coll is None:
            return []
        return [r.id for batch in coll.scan(batch_size=1000, include=()) for r in batch]

    def clear(self) -> None:
        """Delete every record (the collection and its configuration stay)."""
        coll = self.get()
        ids = self.all_ids()
        for i in range(0, len(ids), 1000):
            coll.delete(ids=ids[i:i + 1000])

    def drop(self) -> None:
        """Delete the collection itself (only through a URL: a Collection given is the caller's)."""
        if self.url is None:
            raise ValueError("this store was given a Collection object; delete it through its client")
        if self.get() is not None:
            self._connected().delete_collection(self.name)
        self._coll = None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
            self._coll = None
