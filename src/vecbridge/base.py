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
import os
import socket
import threading
import zlib
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from . import filters
from .capabilities import Capabilities
from .errors import (
    BackendError,
    BackendUnavailableError,
    CollectionExistsError,
    CollectionNotFoundError,
    DimensionMismatchError,
    EmbeddingMismatchError,
    InvalidRecordError,
    UnsupportedFeatureError,
    VecbridgeError,
)
from .flows import CollectionFlows, RawHit, check_count, run
from .locks import SharedExclusiveLock, collection_lock
from .options import Option, parse_options
from .types import INCLUDE_ALL, Hit, Partition, Record
from .url import URL, redact
from .validation import (
    Batch,
    validate_dimension,
    validate_index,
    validate_metric,
    validate_name,
)

__all__ = ["ALL", "CONFIG_KEYS", "BaseClient", "BaseCollection", "ErrorRule", "RawHit", "native_errors"]

ALL = frozenset(INCLUDE_ALL)


#: One row of a backend's error table: a native exception type, and the vecbridge error
#: class it becomes, or a function of the exception giving that class (``None``: no match,
#: try the next row).
ErrorRule = tuple[type[BaseException], type[VecbridgeError] | Callable[[BaseException], Any]]

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


_WRITE_HOOKS = frozenset({"_add", "_update", "_upsert", "_delete"})


def id_hash(id_: str) -> int:
    """A hash of an id that is the same in every process and on every machine (``hash`` is not)."""
    return zlib.crc32(id_.encode("utf-8"))


class BaseCollection(CollectionFlows):
    """The shared half of every backend's collection."""

    #: Per metric, the kind of number the backend's search returns (see vecbridge.scores).
    native_scores: ClassVar[Mapping[str, str]] = {"cosine": "distance", "l2": "distance", "ip": "distance"}
    #: The kind of number ``_exact_query`` returns: the contract's distance for the default
    #: brute force; a backend that answers exactly inside the database sets its own.
    exact_scores: ClassVar[Mapping[str, str]] = {"cosine": "distance", "l2": "distance", "ip": "distance"}
    #: Write hooks that hold the collection's in-process lock exclusively (vecbridge.locks);
    #: ``_upsert`` and ``_delete`` hold it shared unless named here.
    exclusive_writes: ClassVar[frozenset[str]] = frozenset({"_add", "_update"})

    def __init__(self, client: BaseClient, name: str, dimension: int, metric: str, index: Mapping[str, Any] | None = None):
        self._client = client
        self.name = name
        self.dimension = int(dimension)
        self.metric = metric
        self.index = dict(index or {"type": "default"})
        self._owns_client = False
        self._config: dict[str, Any] | None = None
        self._embedder: Any = None
        self._vb_write_lock: SharedExclusiveLock | None = None

    def _run_hook(self, name: str, args: tuple[Any, ...]) -> Any:
        """Run one hook of a flow; a write hook under the collection's in-process lock."""
        if self._client._closed:
            self._client._check_open()
        if name not in _WRITE_HOOKS:
            return getattr(self, name)(*args)
        lock = self._vb_write_lock
        if lock is None:
            lock = self._vb_write_lock = collection_lock(self._client.location, self.name)
        with lock.exclusive() if name in self.exclusive_writes else lock.shared():
            return getattr(self, name)(*args)

    @property
    def capabilities(self) -> Capabilities:
        return self._client.capabilities

    @property
    def query_is_exact(self) -> bool:
        """Whether ``_query`` is already an exact search (a flat index), so that a short row means
        fewer matches than ``k`` and the exact top-k rule needs no count."""
        return self.index.get("type") == "flat"

    def _mapped_errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        """:func:`native_errors` with this backend's error table."""
        return self._client._mapped_errors(action)

    @property
    def backend(self) -> str:
        return self._client.backend_name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} dimension={self.dimension} metric={self.metric!r} on {self._client.url}>"

    # -- the public API: each call drives its flow (vecbridge.flows) with the sync hooks --
    def add(self, ids: Sequence[str], vectors: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        run(self, self._flow_add(ids, vectors, metadatas, documents))

    def upsert(self, ids: Sequence[str], vectors: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        run(self, self._flow_upsert(ids, vectors, metadatas, documents))

    def update(self, ids: Sequence[str], vectors: Any = None, metadatas: Any = None, documents: Any = None) -> None:
        run(self, self._flow_update(ids, vectors, metadatas, documents))

    def get(self, ids: Sequence[str] | None = None, where: Any = None, limit: int | None = None,
            offset: int | None = None, include: Sequence[str] | None = None) -> list[Record]:
        return run(self, self._flow_get(ids, where, limit, offset, include))  # type: ignore[no-any-return]

    def query(self, vectors: Any = None, k: int = 10, where: Any = None,
              include: Sequence[str] | None = None, *, text: str | Sequence[str] | None = None
              ) -> list[Hit] | list[list[Hit]]:
        return run(self, self._flow_query(vectors, k, where, include, text))  # type: ignore[no-any-return]

    def delete(self, ids: Sequence[str] | None = None, where: Any = None) -> None:
        run(self, self._flow_delete(ids, where))

    def count(self, where: Any = None) -> int:
        return run(self, self._flow_count(where))  # type: ignore[no-any-return]

    def scan(self, batch_size: int = 1000, include: Sequence[str] | None = None, *,
             partition: Partition | None = None) -> Iterator[list[Record]]:
        size, inc = self._scan_args(batch_size, include)
        self._client._check_open()
        if partition is None:
            return self._scan(size, inc)
        return self._scan_partition(size, inc, self._check_partition(partition))

    def partitions(self, n: int) -> list[Partition]:
        """At most ``n`` partitions that together hold every record exactly once (fewer when the
        collection is small); each is read with ``scan(partition=p)``."""
        count = check_count(n, "n", 1)
        if count is None:
            raise ValueError("partitions(n) needs n, a whole number >= 1")
        self._client._check_open()
        return self._partitions(count)

    def _check_partition(self, partition: Partition) -> Partition:
        if isinstance(partition, str):
            partition = Partition.from_json(partition)
        if not isinstance(partition, Partition):
            raise TypeError(f"partition must be a Partition (from collection.partitions(n)), not "
                            f"{type(partition).__name__}")
        if partition.collection != self.name:
            raise ValueError(f"the partition belongs to the collection {partition.collection!r}, not {self.name!r}")
        return partition

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

    # -- configuration ----------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """The collection's configuration document: ``dimension``, ``metric``, ``index``,
        ``layout`` and what else was stored with it (``set_config``), e.g. an embedding spec."""
        if self._config is None:
            self._client._check_open()
            stored = self._read_config() or {}
            self._config = {**stored, "dimension": self.dimension, "metric": self.metric,
                            "index": dict(self.index), "layout": stored.get("layout", "vecbridge")}
        return json.loads(json.dumps(self._config))

    def set_config(self, **entries: Any) -> None:
        """Store ``entries`` (JSON values; ``None`` removes a key) in the configuration document.
        ``dimension``, ``metric`` and ``index`` describe the collection and cannot be set."""
        self._client._check_open()
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

    # -- defaults a backend may override (each the sync run of its flow) --------------
    def _existing_ids(self, ids: list[str]) -> list[str]:
        return run(self, self._flow_default_existing_ids(ids))  # type: ignore[no-any-return]

    def _add(self, b: Batch) -> None:
        run(self, self._flow_default_add(b))

    def _update(self, b: Batch) -> None:
        run(self, self._flow_default_update(b))

    def _vb_check_batch(self, batch: Batch) -> None:
        """Refuse ``batch`` (validated by the core, as the write hooks get it) exactly as a write
        would, writing nothing: :class:`InvalidRecordError` / :class:`InvalidMetadataError`
        naming the record and what.  A migration's plan calls it on every record before its first
        write, so that a value a native or framework layout cannot take stops the copy before it
        starts.  Default: the core's validation is all there is to refuse."""

    def _vb_written_elsewhere(self) -> None:
        """Other processes wrote to this collection (the tasks of a Ray copy): this handle's
        reads from now on must see their writes.  Default: nothing to do (a backend whose reads
        see every committed write); a backend that reads at a per-process session timestamp
        (Milvus) makes its next read Strong."""

    def _exact_query(self, vectors: np.ndarray, k: int, where: filters.Node | None,
                     include: frozenset[str]) -> list[list[RawHit]]:
        """Exact top-``k`` over the records matching ``where``, values as ``exact_scores`` says.
        The default ranks the filter's matches with :func:`vecbridge.scores.exact_top_k`; a
        backend that can search exactly inside the database overrides this and sets
        ``exact_scores``."""
        return run(self, self._flow_default_exact_query(vectors, k, where, include))  # type: ignore[no-any-return]

    def _partitions(self, n: int) -> list[Partition]:
        """The default split: by a stable hash of the id (every partition's scan reads the whole
        collection and keeps its share).  A backend with keys splits by key ranges instead."""
        return [Partition(self.name, i, n, "hash") for i in range(n)]

    def _scan_partition(self, batch_size: int, include: frozenset[str], partition: Partition
                        ) -> Iterator[list[Record]]:
        """One partition's records in batches; the default serves ``hash`` partitions."""
        if partition.kind != "hash":
            raise ValueError(f"the {self.backend} backend did not make this {partition.kind!r} partition")
        # ids only over the whole collection; the partition's own records are fetched whole, so
        # n partitions read every vector once in total, not n times
        mine: list[str] = []
        for batch in self._scan(max(batch_size, 1000), frozenset()):
            mine += [r.id for r in batch if id_hash(r.id) % partition.count == partition.index]
            while len(mine) >= batch_size:
                chunk, mine = mine[:batch_size], mine[batch_size:]
                yield self._vb_by_ids(chunk, include)
        if mine:
            yield self._vb_by_ids(mine, include)

    def _vb_by_ids(self, ids: list[str], include: frozenset[str]) -> list[Record]:
        found = {r.id: r for r in self._get_ids(ids, None, include)}
        return [found[i] for i in ids if i in found]

    def _embed_documents(self, texts: list[str]) -> np.ndarray:
        return self.embedder.embed_documents(texts)  # type: ignore[no-any-return]

    def _embed_query(self, text: str) -> np.ndarray:
        return self.embedder.embed_query(text)  # type: ignore[no-any-return]

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
    passthrough_option: ClassVar[Callable[..., bool] | None] = None
    #: Native exception type -> vecbridge error class (see :func:`classify`).
    error_map: ClassVar[tuple[ErrorRule, ...]] = ()

    def __init__(self, url: URL | str, **options: Any):
        self.url = URL.parse(url)
        self.options = parse_options(self.declared_options, options, backend=self.backend_name,
                                     local=self.url.is_local, passthrough=type(self).passthrough_option,
                                     url=str(self.url))
        self._closed = False
        #: Where the database is (the same for every client of it in this process): the key of
        #: the collections' in-process write locks.  A backend sets a better one where it can.
        self.location: Hashable = self._default_location()
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

    def _default_location(self) -> Hashable:
        u = self.url
        if u.host:
            return f"{u.scheme}://{u.host}:{u.port or ''}"
        if u.path:
            return os.path.realpath(u.path)
        return ("memory", id(self))  # an in-memory database is private to its client

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
            raise BackendError(f"{self.backend_name}: the client of {self.url} is closed; open a new one with "
                               "vecbridge.connect()")

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

    def describe_collections(self) -> list[dict[str, Any]]:
        """Every collection: ``name``, ``layout`` and ``error`` (why it cannot be opened, ``None``
        when it can); one collection that cannot be opened never fails the listing.  A backend
        that lists collections of other layouts describes them itself."""
        out: list[dict[str, Any]] = []
        for name in self.list_collections():
            try:
                layout = self.get_collection(name).config.get("layout", "vecbridge")
                out.append({"name": name, "layout": layout, "error": None})
            except VecbridgeError as exc:
                out.append({"name": name, "layout": None, "error": str(exc)})
        return out

    @property
    def default_collection(self) -> str | None:
        """The collection a URL means when it names none (a FAISS index file: its one
        collection); ``None``: the URL must name one with ``?collection=``."""
        return None

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


