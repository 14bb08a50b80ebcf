"""Shared implementation of the protocols: a backend subclasses these and translates.

:class:`BaseCollection` does what the contract decides once for every backend:
validation of the whole batch before any write, ``include`` handling, ordering of
``get`` by the ids given, score conversion, the exact top-k rule, the filter number
rule, ``add``'s duplicate check and ``update``'s read-merge-write (both overridable
where a backend can do better).  :class:`BaseClient` parses the backend's declared
options and holds its :class:`~vecbridge.capabilities.Capabilities`.

A backend implements the ``_``-prefixed hooks.  Required: ``_upsert``, ``_get_ids``,
``_get_page``, ``_query``, ``_delete``, ``_count``, ``_scan`` (collection) and
``_create_collection``, ``_get_collection``, ``_list_collections``,
``_delete_collection`` (client).  Optional, with a default here: ``_add``, ``_update``,
``_existing_ids``, ``_exact_query`` (default: brute force over the filter's matches),
``_read_config``/``_write_config`` (the collection's configuration document),
``_capabilities``, ``_close``.

Native exceptions become vecbridge errors through one table per backend
(``BaseClient.error_map``, see :func:`native_errors`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import socket
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple, Union

import numpy as np

from . import filters
from .capabilities import Capabilities
from .errors import (
    BackendError,
    BackendUnavailableError,
    CollectionExistsError,
    CollectionNotFoundError,
    DimensionMismatchError,
    DuplicateIdError,
    EmbeddingMismatchError,
    InvalidRecordError,
    RecordNotFoundError,
    UnsupportedFeatureError,
    UnsupportedFilterError,
    VecbridgeError,
)
from .options import Option, parse_options
from .scores import converter, exact_top_k
from .types import INCLUDE_ALL, Hit, Record
from .url import URL, redact
from .validation import (
    MAX_ID_BYTES,
    Batch,
    size_violations,
    validate_batch,
    validate_dimension,
    validate_ids,
    validate_include,
    validate_index,
    validate_metric,
    validate_name,
    validate_query_vectors,
)

__all__ = ["ALL", "CONFIG_KEYS", "BaseClient", "BaseCollection", "ErrorRule", "RawHit", "native_errors"]

ALL = frozenset(INCLUDE_ALL)


class RawHit(NamedTuple):
    """A query result as a backend returns it: the native score, not yet converted."""

    id: str
    value: float
    metadata: dict[str, Any] | None = None
    document: str | None = None
    vector: np.ndarray | None = None


#: One row of a backend's error table: a native exception type, and the vecbridge error
#: class it becomes, or a function of the exception giving that class (``None``: no match,
#: try the next row).
ErrorRule = tuple[type[BaseException], Union[type[VecbridgeError], Callable[[BaseException], Any]]]

_UNAVAILABLE_ERRNOS = frozenset({errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE,
                                 errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH})


def _os_error(exc: BaseException) -> type[VecbridgeError] | None:
    return BackendUnavailableError if getattr(exc, "errno", None) in _UNAVAILABLE_ERRNOS else None


#: Rows every backend's table ends with: the standard library's transport errors.
COMMON_ERRORS: tuple[ErrorRule, ...] = (
    (ConnectionError, BackendUnavailableError),
    (TimeoutError, BackendUnavailableError),
    (socket.timeout, BackendUnavailableError),
    (OSError, _os_error),
)


def classify(exc: BaseException, table: Sequence[ErrorRule] = ()) -> type[VecbridgeError]:
    """The vecbridge error class for a native exception: the first matching row of
    ``table`` then of :data:`COMMON_ERRORS`; :class:`BackendError` when none matches."""
    for etype, target in (*table, *COMMON_ERRORS):
        if isinstance(exc, etype):
            cls = target if isinstance(target, type) else target(exc)
            if cls is not None:
                return cls  # type: ignore[no-any-return]
    return BackendError


@contextlib.contextmanager
def native_errors(backend: str, action: str, table: Sequence[ErrorRule] = ()) -> Iterator[None]:
    """Turn a native exception into a vecbridge error through ``table`` (see :func:`classify`),
    keeping it as ``__cause__``; the message names the backend and the action, never a secret."""
    try:
        yield
    except VecbridgeError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit, MemoryError):
        raise
    except Exception as exc:
        msg = redact(str(exc)).strip().splitlines()
        first = msg[0][:500] if msg else type(exc).__name__
        cls = classify(exc, table)
        raise cls(f"{backend}: {action} failed: {type(exc).__name__}: {first}") from exc


#: Keys of a collection's configuration document that the core owns.
CONFIG_KEYS = ("dimension", "metric", "index", "layout")


def _check_count(value: Any, name: str, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _by_distance(hit: Hit) -> float:
    return hit.distance


class BaseCollection:
    """The shared half of every backend's collection."""

    #: Per metric, the kind of number the backend's search returns (see vecbridge.scores).
    native_scores: ClassVar[Mapping[str, str]] = {"cosine": "distance", "l2": "distance", "ip": "distance"}
    #: The kind of number ``_exact_query`` returns: the contract's distance for the default
    #: brute force; a backend that answers exactly inside the database sets its own.
    exact_scores: ClassVar[Mapping[str, str]] = {"cosine": "distance", "l2": "distance", "ip": "distance"}

    def __init__(self, client: BaseClient, name: str, dimension: int, metric: str, index: Mapping[str, Any] | None = None):
        self._client = client
        self.name = name
        self.dimension = int(dimension)
        self.metric = metric
        self.index = dict(index or {"type": "default"})
        self._owns_client = False
        self._config: dict[str, Any] | None = None
        self._embedder: Any = None

    @property
    def capabilities(self) -> Capabilities:
        return self._client.capabilities

    def _mapped_errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        """:func:`native_errors` with this backend's error table."""
        return self._client._mapped_errors(action)

    @property
    def backend(self) -> str:
        return self._client.backend_name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} dimension={self.dimension} metric={self.metric!r} on {self._client.url}>"

    # -- writes ------------------------------------------------------------------
    def _batch(self, ids: Any, vectors: Any, metadatas: Any, documents: Any, require_vectors: bool = True) -> Batch:
        b = validate_batch(ids, vectors, metadatas, documents, dimension=self.dimension, metric=self.metric,
                           require_vectors=require_vectors)
        caps = self.capabilities
        if caps.max_document_bytes is not None or caps.max_metadata_bytes is not None or \
                caps.max_id_bytes < MAX_ID_BYTES:
            for i, part, n, limit in size_violations(b.ids, b.metadatas, b.documents, max_id_bytes=caps.max_id_bytes,
                                                     max_document_bytes=caps.max_document_bytes,
                                                     max_metadata_bytes=caps.max_metadata_bytes):
                field = {"id": "ids", "document": "documents", "metadata": "metadatas"}[part]
                raise InvalidRecordError(f"{field}[{i}] (id {b.ids[i]!r}) is {n:,} bytes; the {self.backend} backend "
                                         f"holds a record's {part} of at most {limit:,} bytes; nothing was written")
        return b

    @staticmethod
    def _complete(b: Batch) -> Batch:
        """Fill absent metadata/documents so that upsert replaces the whole record."""
        n = len(b.ids)
        return Batch(b.ids, b.vectors, b.metadatas if b.metadatas is not None else [{} for _ in range(n)],
                     b.documents if b.documents is not None else [None] * n)

    def _embedded(self, ids: Any, metadatas: Any, documents: Any, update: bool = False) -> Batch:
        """Validate a batch given without vectors, then embed its documents (before any write)."""
        b = self._batch(ids, None, metadatas, documents, require_vectors=False)
        if b.documents is None:
            if update:
                return b
            raise InvalidRecordError("vectors are required (or documents, in a collection with an embedder)")
        missing = [i for i, d in enumerate(b.documents) if d is None]
        if missing:
            raise InvalidRecordError(f"documents[{missing[0]}] is None; without vectors every record needs a "
                                     "document to embed")
        vectors = self.embedder.embed_documents(b.documents) if b.ids else None
        return self._batch(b.ids, vectors, b.metadatas, b.documents, require_vectors=not update)

    def add(self, ids: Sequence[str], vectors: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        b = self._embedded(ids, metadatas, documents) if vectors is None else \
            self._batch(ids, vectors, metadatas, documents)
        if b.ids:
            self._add(self._complete(b))

    def upsert(self, ids: Sequence[str], vectors: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        b = self._embedded(ids, metadatas, documents) if vectors is None else \
            self._batch(ids, vectors, metadatas, documents)
        if b.ids:
            self._upsert(self._complete(b))

    def update(self, ids: Sequence[str], vectors: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        if vectors is None and documents is not None and self.has_embedder:
            b = self._embedded(ids, metadatas, documents, update=True)  # new documents, new vectors
        else:
            b = self._batch(ids, vectors, metadatas, documents, require_vectors=False)
        if b.ids:
            self._update(b)

    # -- the embedder ---------------------------------------------------------------------
    @property
    def has_embedder(self) -> bool:
        return self._embedder is not None or "embedding" in self.config

    @property
    def embedder(self) -> Any:
        """The collection's :class:`~vecbridge.embeddings.Embedder`, rebuilt from its stored spec on
        first use; a collection without one raises an error that says how to attach one."""
        if self._embedder is None:
            kept = self.config.get("embedding")
            if not kept:
                raise UnsupportedFeatureError(
                    f"collection {self.name!r} has no embedder, so it takes vectors, not texts; attach one with "
                    f"client.get_collection({self.name!r}, embedding='PROVIDER:MODEL') (it is stored with the "
                    "collection), or pass vectors")
            from .embeddings import check_same, get_embedder

            emb = get_embedder(str(kept["spec"]))
            check_same(kept, emb, self.name)
            self._embedder = emb
        return self._embedder

    def _attach_embedder(self, embedding: Any) -> None:
        """Use ``embedding`` (a spec or an Embedder) for this collection: the same model as the one
        stored, or stored now if the collection has none."""
        from .embeddings import check_same, get_embedder, stored

        emb = get_embedder(embedding)
        kept = self.config.get("embedding")
        if kept:
            check_same(kept, emb, self.name)
        else:
            if int(emb.dimension) != self.dimension:
                raise EmbeddingMismatchError(
                    f"collection {self.name!r} holds vectors of {self.dimension} dimensions; the embedder "
                    f"{emb.spec!r} makes {emb.dimension}")
            self.set_config(embedding=stored(emb))
        self._embedder = emb

    # -- reads -------------------------------------------------------------------
    def get(self, ids: Sequence[str] | None = None, where: Any = None, limit: int | None = None,
            offset: int | None = None, include: Sequence[str] | None = None) -> list[Record]:
        node = self._parse_where(where)
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

    def query(self, vectors: Any = None, k: int = 10, where: Any = None,
              include: Sequence[str] | None = None, *, text: str | Sequence[str] | None = None
              ) -> list[Hit] | list[list[Hit]]:
        if text is not None:
            if vectors is not None:
                raise ValueError("query takes vectors or text=, not both")
            texts = [text] if isinstance(text, str) else list(text)
            if not all(isinstance(t, str) for t in texts):
                raise ValueError("text= takes a string or a list of strings")
            emb = self.embedder
            vectors = emb.embed_query(texts[0]) if isinstance(text, str) else emb.embed_documents(texts)
        elif vectors is None:
            raise ValueError("query needs vectors, or text= in a collection with an embedder")
        arr, single = validate_query_vectors(vectors, self.dimension, self.metric)
        k = _check_count(k, "k", 1)  # type: ignore[assignment]
        node = self._parse_where(where)
        inc = validate_include(include)
        raw = self._query(arr, k, node, inc) if arr.shape[0] else []
        kinds = [self.native_scores] * len(raw)
        self._complete_short_rows(arr, k, node, inc, raw, kinds)
        metric = self.metric
        want_meta, want_doc, want_vec = "metadata" in inc, "document" in inc, "vector" in inc
        out: list[list[Hit]] = []
        for row, kind_map in zip(raw, kinds):
            conv = converter(metric, kind_map[metric])
            hits = []
            for h in row:
                score, distance = conv(float(h.value))
                hits.append(Hit(h.id, score, distance, h.metadata if want_meta else None,
                                h.document if want_doc else None, h.vector if want_vec else None))
            hits.sort(key=_by_distance)
            out.append(hits)
        return out[0] if single else out

    # -- the exact top-k rule ---------------------------------------------------------
    def _complete_short_rows(self, arr: np.ndarray, k: int, node: filters.Node | None, inc: frozenset[str],
                             raw: list[list[RawHit]], kinds: list[Mapping[str, str]]) -> None:
        """Never fewer than ``k`` hits because the search was approximate: a row that came back
        with fewer hits than there are matching records (at most ``k``) is answered again by
        ``_exact_query``.  The count is asked only when some row is short."""
        short = [i for i, row in enumerate(raw) if len(row) < k]
        if not short:
            return
        need = min(k, self._count(node))
        redo = [i for i in short if len(raw[i]) < need]
        if not redo:
            return
        for i, row in zip(redo, self._exact_query(arr[redo], k, node, inc)):
            raw[i] = row
            kinds[i] = self.exact_scores

    def _exact_query(self, vectors: np.ndarray, k: int, where: filters.Node | None,
                     include: frozenset[str]) -> list[list[RawHit]]:
        """Exact top-``k`` over the records matching ``where``, values as ``exact_scores`` says.

        The default reads the matches in pages (the filter runs in the database) and ranks
        them with :func:`vecbridge.scores.exact_top_k`; a backend that can search exactly
        inside the database overrides this and sets ``exact_scores``."""
        page = max(256, min(8192, (64 << 20) // (4 * self.dimension + 64)))
        fields = include | {"vector"}
        best: list[list[tuple[float, Record]]] = [[] for _ in range(len(vectors))]
        offset = 0
        while True:
            recs = self._get_page(where, page, offset, frozenset(fields))
            if not recs:
                break
            mat = np.stack([np.asarray(r.vector, dtype=np.float32) for r in recs])
            dist, idx = exact_top_k(self.metric, vectors, mat, k)
            for qi in range(len(vectors)):
                merged = best[qi] + [(float(d), recs[j]) for d, j in zip(dist[qi], idx[qi])]
                merged.sort(key=lambda t: t[0])
                best[qi] = merged[:k]
            if len(recs) < page:
                break
            offset += len(recs)
        want_vec = "vector" in include
        return [[RawHit(r.id, d, r.metadata, r.document, r.vector if want_vec else None) for d, r in row]
                for row in best]

    # -- filters ----------------------------------------------------------------------
    def _parse_where(self, where: Any) -> filters.Node | None:
        """Parse ``where`` and apply the core's rule for numbers the backend cannot compare
        exactly: an integer outside the backend's ``filter_int_range`` is refused."""
        node = filters.parse(where)
        bounds = self.capabilities.filter_int_range
        if node is not None and bounds is not None:
            lo, hi = bounds
            for value in filters.numbers(node):
                if isinstance(value, int) and not lo <= value <= hi:
                    raise UnsupportedFilterError(
                        f"the {self.backend} backend compares integers in filters exactly only from {lo} to {hi}; "
                        f"the filter has {value}")
        return node

    # -- configuration ----------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """The collection's configuration document: ``dimension``, ``metric``, ``index``,
        ``layout`` and what else was stored with it (``set_config``), e.g. an embedding spec."""
        if self._config is None:
            stored = self._read_config() or {}
            self._config = {**stored, "dimension": self.dimension, "metric": self.metric,
                            "index": dict(self.index), "layout": stored.get("layout", "vecbridge")}
        return json.loads(json.dumps(self._config))

    def set_config(self, **entries: Any) -> None:
        """Store ``entries`` (JSON values; ``None`` removes a key) in the configuration document.
        ``dimension``, ``metric`` and ``index`` describe the collection and cannot be set."""
        fixed = sorted(set(entries) & {"dimension", "metric", "index"})
        if fixed:
            raise ValueError(f"{', '.join(fixed)} describe the collection and cannot be set in its configuration")
        doc = {k: v for k, v in (self._read_config() or {}).items() if k not in ("dimension", "metric", "index")}
        for key, value in entries.items():
            if value is None:
                doc.pop(key, None)
            else:
                doc[key] = value
        try:
            text = json.dumps(doc, sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"the configuration of {self.name!r} must be JSON: {exc}") from None
        self._write_config(json.loads(text))
        self._config = None

    def _read_config(self) -> dict[str, Any] | None:
        """The stored configuration document, or ``None`` where nothing is stored."""
        return None

    def _write_config(self, doc: dict[str, Any]) -> None:
        """Store ``doc`` (a JSON object, at most a few kB) with the collection, replacing any."""
        raise UnsupportedFeatureError(f"the {self.backend} backend cannot store a collection configuration yet")

    def delete(self, ids: Sequence[str] | None = None, where: Any = None) -> None:
        if ids is None and where is None:
            raise ValueError("delete needs ids, where, or both; to delete everything use delete(where={}) "
                             "or client.delete_collection()")
        id_list = None if ids is None else list(dict.fromkeys(validate_ids(ids, unique=False)))
        node = self._parse_where(where)
        if id_list is not None and not id_list:
            return
        self._delete(id_list, node)

    def count(self, where: Any = None) -> int:
        return int(self._count(self._parse_where(where)))

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
    #: What the backend can do (see :mod:`vecbridge.capabilities`); refine per instance in
    #: ``_capabilities`` where it depends on the server reached.
    capabilities_declared: ClassVar[Capabilities] = Capabilities()
    #: The options the backend takes (see :mod:`vecbridge.options`).
    declared_options: ClassVar[tuple[Option, ...]] = ()
    #: Whether an undeclared option goes to the driver unchanged (pgvector: libpq's parameters).
    passthrough_option: ClassVar[Callable[[str], bool] | None] = None
    #: Native exception type -> vecbridge error class (see :func:`classify`).
    error_map: ClassVar[tuple[ErrorRule, ...]] = ()

    def __init__(self, url: URL | str, **options: Any):
        self.url = URL.parse(url)
        self.options = parse_options(self.declared_options, options, backend=self.backend_name,
                                     local=self.url.is_local, passthrough=type(self).passthrough_option,
                                     url=str(self.url))
        self._closed = False
        self._caps: Capabilities | None = None
        self._caps_lock = threading.Lock()


    @property
    def capabilities(self) -> Capabilities:
        if self._caps is None:
            with self._caps_lock:
                if self._caps is None:
                    self._caps = self._capabilities()
        return self._caps

    def _capabilities(self) -> Capabilities:
        return self.capabilities_declared

    def _mapped_errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        """:func:`native_errors` with this backend's error table."""
        return native_errors(self.backend_name, action, self.error_map)

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
    def create_collection(self, name: str, dimension: int | None = None, metric: str = "cosine",
                          index: Mapping[str, Any] | None = None, *, embedding: Any = None) -> BaseCollection:
        self._check_open()
        caps = self.capabilities
        validate_name(name, caps.name_pattern, caps.name_rule, self.backend_name)
        emb = None
        if embedding is not None:
            from .embeddings import get_embedder

            emb = get_embedder(embedding)
            if dimension is None:
                dimension = int(emb.dimension)
            elif int(dimension) != int(emb.dimension):
                raise DimensionMismatchError(f"dimension {dimension} was given, but the embedder {emb.spec!r} "
                                             f"makes vectors of {emb.dimension}")
        elif dimension is None:
            raise InvalidRecordError("create_collection needs a dimension, or embedding= (the embedder's dimension)")
        dimension = validate_dimension(dimension)
        if caps.max_dimension is not None and dimension > caps.max_dimension:
            raise UnsupportedFeatureError(f"the {self.backend_name} backend holds vectors of at most "
                                          f"{caps.max_dimension} dimensions, not {dimension}")
        metric = validate_metric(metric)
        if metric not in caps.metrics:
            raise UnsupportedFeatureError(f"the {self.backend_name} backend has no {metric!r} metric; "
                                          f"it offers {', '.join(caps.metrics)}")
        spec = validate_index(index, caps.index_types, self.backend_name)
        if self._has_collection(name):
            raise CollectionExistsError(f"collection {name!r} exists already on {self.backend_name}")
        coll = self._create_collection(name, dimension, metric, spec)
        if emb is not None:
            try:
                coll._attach_embedder(emb)
            except BaseException:
                self._delete_collection(name)  # no collection whose vectors' model is unknown
                raise
        return coll

    def get_collection(self, name: str, *, embedding: Any = None) -> BaseCollection:
        """Open a collection; ``embedding=`` must name the model that made its vectors (or, on a
        collection without an embedder, is stored with it)."""
        self._check_open()
        if not isinstance(name, str) or not name:
            raise CollectionNotFoundError(f"no collection named {name!r} on {self.backend_name}")
        coll = self._get_collection(name)
        if coll is None:
            raise CollectionNotFoundError(f"no collection named {name!r} on {self.backend_name} ({self.url})")
        if embedding is not None:
            coll._attach_embedder(embedding)
        return coll

    def get_or_create_collection(self, name: str, dimension: int | None = None, metric: str = "cosine",
                                 index: Mapping[str, Any] | None = None, *, embedding: Any = None) -> BaseCollection:
        try:
            coll = self.get_collection(name, embedding=embedding)
        except CollectionNotFoundError:
            try:
                return self.create_collection(name, dimension, metric, index, embedding=embedding)
            except CollectionExistsError:
                coll = self.get_collection(name, embedding=embedding)
        if dimension is not None and coll.dimension != dimension:
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


