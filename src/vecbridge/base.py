"""Shared implementation of the protocols: a backend subclasses these and translates.

:class:`BaseCollection` does what the contract decides once for every backend:
validation of the whole batch before any write, ``include`` handling, ordering of
``get`` by the ids given, score conversion, ``add``'s duplicate check and
``update``'s read-merge-write (both overridable where a backend can do better).
A backend implements the ``_``-prefixed hooks.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

import numpy as np

from . import filters
from .errors import (
    BackendError,
    CollectionExistsError,
    CollectionNotFoundError,
    DimensionMismatchError,
    DuplicateIdError,
    RecordNotFoundError,
    UnsupportedFeatureError,
    VecbridgeError,
)
from .scores import convert
from .types import INCLUDE_ALL, Hit, Record
from .url import URL, redact
from .validation import (
    PORTABLE_NAME,
    PORTABLE_RULE,
    Batch,
    validate_batch,
    validate_dimension,
    validate_ids,
    validate_include,
    validate_index,
    validate_metric,
    validate_name,
    validate_query_vectors,
)

__all__ = ["ALL", "BaseClient", "BaseCollection", "RawHit", "native_errors"]

ALL = frozenset(INCLUDE_ALL)


class RawHit(NamedTuple):
    """A query result as a backend returns it: the native score, not yet converted."""

    id: str
    value: float
    metadata: dict[str, Any] | None = None
    document: str | None = None
    vector: np.ndarray | None = None


@contextlib.contextmanager
def native_errors(backend: str, action: str) -> Iterator[None]:
    """Turn a native exception into :class:`BackendError`, keeping it as ``__cause__``."""
    try:
        yield
    except VecbridgeError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError):
        raise
    except Exception as exc:
        msg = redact(str(exc)).strip().splitlines()
        first = msg[0][:500] if msg else type(exc).__name__
        raise BackendError(f"{backend}: {action} failed: {type(exc).__name__}: {first}") from exc


def _check_count(value: Any, name: str, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class BaseCollection:
    """The shared half of every backend's collection."""

    #: Per metric, the kind of number the backend's search returns (see vecbridge.scores).
    native_scores: ClassVar[Mapping[str, str]] = {"cosine": "distance", "l2": "distance", "ip": "distance"}

    def __init__(self, client: BaseClient, name: str, dimension: int, metric: str, index: Mapping[str, Any] | None = None):
        self._client = client
        self.name = name
        self.dimension = int(dimension)
        self.metric = metric
        self.index = dict(index or {"type": "default"})
        self._owns_client = False

    @property
    def backend(self) -> str:
        return self._client.backend_name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} dimension={self.dimension} metric={self.metric!r} on {self._client.url}>"

    # -- writes ------------------------------------------------------------------
    def _batch(self, ids: Any, vectors: Any, metadatas: Any, documents: Any, require_vectors: bool = True) -> Batch:
        return validate_batch(ids, vectors, metadatas, documents, dimension=self.dimension, metric=self.metric,
                              require_vectors=require_vectors)

    @staticmethod
    def _complete(b: Batch) -> Batch:
        """Fill absent metadata/documents so that upsert replaces the whole record."""
        n = len(b.ids)
        return Batch(b.ids, b.vectors, b.metadatas if b.metadatas is not None else [{} for _ in range(n)],
                     b.documents if b.documents is not None else [None] * n)

    def add(self, ids: Sequence[str], vectors: Any, metadatas: Any = None, documents: Any = None) -> None:
        b = self._batch(ids, vectors, metadatas, documents)
        if b.ids:
            self._add(self._complete(b))

    def upsert(self, ids: Sequence[str], vectors: Any, metadatas: Any = None, documents: Any = None) -> None:
        b = self._batch(ids, vectors, metadatas, documents)
        if b.ids:
            self._upsert(self._complete(b))

    def update(self, ids: Sequence[str], vectors: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        b = self._batch(ids, vectors, metadatas, documents, require_vectors=False)
        if b.ids:
            self._update(b)

    # -- reads -------------------------------------------------------------------
    def get(self, ids: Sequence[str] | None = None, where: Any = None, limit: int | None = None,
            offset: int | None = None, include: Sequence[str] | None = None) -> list[Record]:
        node = filters.parse(where)
        inc = validate_include(include)
        limit = _check_count(limit, "limit", 0)
        offset = _check_count(offset, "offset", 0) or 0
        if ids is None:
            if limit == 0:
                return []
            return self._get_page(node, limit, offset, inc)
        wanted = validate_ids(ids, unique=False)
        if not wanted:
            return []
        unique = list(dict.fromkeys(wanted))
        found = {r.id: r for r in self._get_ids(unique, node, inc)}
        ordered = [found[i] for i in unique if i in found]
        end = None if limit is None else offset + limit
        return ordered[offset:end]

    def query(self, vectors: Any, k: int = 10, where: Any = None,
              include: Sequence[str] | None = None) -> list[Hit] | list[list[Hit]]:
        arr, single = validate_query_vectors(vectors, self.dimension, self.metric)
        k = _check_count(k, "k", 1)  # type: ignore[assignment]
        node = filters.parse(where)
        inc = validate_include(include)
        raw = self._query(arr, k, node, inc) if arr.shape[0] else []
        metric, kind = self.metric, self.native_scores[self.metric]
        out: list[list[Hit]] = []
        for row in raw:
            hits = []
            for h in row:
                score, distance = convert(metric, kind, h.value)
                hits.append(Hit(h.id, score, distance,
                                h.metadata if "metadata" in inc else None,
                                h.document if "document" in inc else None,
                                h.vector if "vector" in inc else None))
            hits.sort(key=lambda x: x.distance)
            out.append(hits)
        return out[0] if single else out

    def delete(self, ids: Sequence[str] | None = None, where: Any = None) -> None:
        if ids is None and where is None:
            raise ValueError("delete needs ids, where, or both; to delete everything use delete(where={}) "
                             "or client.delete_collection()")
        id_list = None if ids is None else list(dict.fromkeys(validate_ids(ids, unique=False)))
        node = filters.parse(where)
        if id_list is not None and not id_list:
            return
        self._delete(id_list, node)

    def count(self, where: Any = None) -> int:
        return int(self._count(filters.parse(where)))

    def scan(self, batch_size: int = 1000, include: Sequence[str] | None = None) -> Iterator[list[Record]]:
        size = _check_count(batch_size, "batch_size", 1)
        assert size is not None
        return self._scan(size, validate_include(include, default=INCLUDE_ALL))

    def peek(self, n: int = 10) -> list[Record]:
        return self.get(limit=n, include=INCLUDE_ALL)

    def __len__(self) -> int:
        return self.count()

    def close(self) -> None:
        """Close the client this collection was opened with by ``open_collection``."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> BaseCollection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- defaults a backend may override ---------------------------------------------
    def _existing_ids(self, ids: list[str]) -> list[str]:
        return [r.id for r in self._get_ids(ids, None, frozenset())]

    def _add(self, b: Batch) -> None:
        existing = self._existing_ids(b.ids)
        if existing:
            raise DuplicateIdError(self._duplicate_message(existing))
        self._upsert(b)

    def _duplicate_message(self, existing: Sequence[str]) -> str:
        shown = ", ".join(repr(i) for i in list(existing)[:5]) + (" …" if len(existing) > 5 else "")
        return (f"{len(existing)} id(s) exist already in {self.name!r}: {shown}; nothing was written "
                "(use upsert to replace records)")

    def _update(self, b: Batch) -> None:
        need = {"vector", "metadata", "document"}
        current = {r.id: r for r in self._get_ids(b.ids, None, frozenset(need))}
        missing = [i for i in b.ids if i not in current]
        if missing:
            shown = ", ".join(repr(i) for i in missing[:5])
            raise RecordNotFoundError(f"{len(missing)} id(s) do not exist in {self.name!r}: {shown}; nothing was written")
        recs = [current[i] for i in b.ids]
        vectors = b.vectors if b.vectors is not None else np.stack([np.asarray(r.vector) for r in recs]).astype(np.float32)
        metas = b.metadatas if b.metadatas is not None else [dict(r.metadata or {}) for r in recs]
        docs = b.documents if b.documents is not None else [r.document for r in recs]
        self._upsert(Batch(b.ids, np.ascontiguousarray(vectors), metas, docs))

    # -- hooks every backend implements -------------------------------------------------
    def _upsert(self, b: Batch) -> None:
        raise NotImplementedError

    def _get_ids(self, ids: list[str], where: filters.Node | None, include: frozenset[str]) -> list[Record]:
        """Records for ``ids`` (any order, unknown ones left out) that match ``where``."""
        raise NotImplementedError

    def _get_page(self, where: filters.Node | None, limit: int | None, offset: int, include: frozenset[str]) -> list[Record]:
        """Records matching ``where`` in a stable order, ``offset``/``limit`` applied."""
        raise NotImplementedError

    def _query(self, vectors: np.ndarray, k: int, where: filters.Node | None, include: frozenset[str]) -> list[list[RawHit]]:
        raise NotImplementedError

    def _delete(self, ids: list[str] | None, where: filters.Node | None) -> None:
        raise NotImplementedError

    def _count(self, where: filters.Node | None) -> int:
        raise NotImplementedError

    def _scan(self, batch_size: int, include: frozenset[str]) -> Iterator[list[Record]]:
        raise NotImplementedError


class BaseClient:
    """The shared half of every backend's client."""

    backend_name: ClassVar[str] = "backend"
    name_pattern: ClassVar[re.Pattern[str]] = PORTABLE_NAME
    name_rule: ClassVar[str] = PORTABLE_RULE
    #: Index types besides the default that ``create_collection`` accepts.
    index_types: ClassVar[tuple[str, ...]] = ("flat", "hnsw")

    def __init__(self, url: URL | str, **options: Any):
        self.url = URL.parse(url)
        self.options = options
        self._closed = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"

    def __enter__(self) -> BaseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close()

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError(f"{self.backend_name}: the client is closed")

    # -- public API ------------------------------------------------------------------
    def create_collection(self, name: str, dimension: int, metric: str = "cosine",
                          index: Mapping[str, Any] | None = None) -> BaseCollection:
        self._check_open()
        validate_name(name, self.name_pattern, self.name_rule, self.backend_name)
        dimension = validate_dimension(dimension)
        metric = validate_metric(metric)
        spec = validate_index(index, self.index_types, self.backend_name)
        if self._has_collection(name):
            raise CollectionExistsError(f"collection {name!r} exists already on {self.backend_name}")
        return self._create_collection(name, dimension, metric, spec)

    def get_collection(self, name: str) -> BaseCollection:
        self._check_open()
        if not isinstance(name, str) or not name:
            raise CollectionNotFoundError(f"no collection named {name!r} on {self.backend_name}")
        coll = self._get_collection(name)
        if coll is None:
            raise CollectionNotFoundError(f"no collection named {name!r} on {self.backend_name} ({self.url})")
        return coll

    def get_or_create_collection(self, name: str, dimension: int, metric: str = "cosine",
                                 index: Mapping[str, Any] | None = None) -> BaseCollection:
        try:
            coll = self.get_collection(name)
        except CollectionNotFoundError:
            try:
                return self.create_collection(name, dimension, metric, index)
            except CollectionExistsError:
                coll = self.get_collection(name)
        if coll.dimension != dimension:
            raise DimensionMismatchError(
                f"collection {name!r} exists with dimension {coll.dimension}, not {dimension}")
        if coll.metric != metric:
            raise UnsupportedFeatureError(f"collection {name!r} exists with metric {coll.metric!r}, not {metric!r}")
        return coll

    def list_collections(self) -> list[str]:
        self._check_open()
        return sorted(self._list_collections())

    def delete_collection(self, name: str) -> None:
        self._check_open()
        if not self._has_collection(name):
            raise CollectionNotFoundError(f"no collection named {name!r} on {self.backend_name}")
        self._delete_collection(name)

    def _has_collection(self, name: str) -> bool:
        return name in self._list_collections()

    # -- hooks -----------------------------------------------------------------------
    def _create_collection(self, name: str, dimension: int, metric: str, index: dict[str, Any]) -> BaseCollection:
        raise NotImplementedError

    def _get_collection(self, name: str) -> BaseCollection | None:
        raise NotImplementedError

    def _list_collections(self) -> list[str]:
        raise NotImplementedError

    def _delete_collection(self, name: str) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        pass


