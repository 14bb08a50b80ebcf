"""``qdrant://`` URLs: a Qdrant server, or qdrant-client's local mode.

==============================  ==================================================
``qdrant://host:6333``          server over HTTP (REST)
``qdrant+https://host``         server over HTTPS; ``?api_key=…`` (or ``api_key=``)
``qdrant+grpc://host:6334``     server, gRPC preferred (``qdrant+grpcs://`` with TLS)
``qdrant:///rel/path``          local mode on disk (``qdrant:////abs/path`` absolute)
``qdrant://``                   local mode in memory, private to the client
==============================  ==================================================

Options: ``api_key``, ``timeout``, ``prefix``, ``grpc_port`` (server); ``batch_size``
(points per upload request, 256) and ``parallel`` (upload processes, 1).  The api key
(or a URL password, taken as the api key) never appears in a repr, a log line or an
error message.

Local mode on disk admits one native client per folder (it holds an exclusive lock on
``<folder>/.lock``): the vecbridge clients of one folder in one process share one, closed
with the last of them, and every call into it is serialised (local mode is not
thread-safe).  Another process, or a native ``qdrant_client.QdrantClient`` of this process,
that opens the folder meanwhile gets :class:`BackendLockedError` (a row of the error
table, ``errortable.py``, which says how each native failure is classified).

``add`` checks for existing ids and then writes: two calls, which the core's in-process
lock per collection (``vecbridge.locks``, keyed by :attr:`QdrantClient.location`: the
folder, or the server's host and prefix) holds together against the other threads of this
process.  Nothing holds them together against another process writing to the same server
(``Capabilities.atomic_add`` is false): there an ``add`` racing another ``add`` of the same
id may replace it without an error.

How records look to Qdrant: a point whose id is the UUIDv5 of the vecbridge id, with the
payload ``_vb_id`` (the id), ``_vb_doc`` (the document), scalar metadata under its own
keys, list metadata under ``_vb_l``, and in cosine collections ``_vb_vec``, the float32
bytes of the vector as given (base64), since Qdrant stores cosine vectors normalised.
The collection's configuration document (index spec, layout, what ``set_config`` stored)
is kept in the collection's metadata under :data:`META_KEY`; ``flat`` is an exact search
over an HNSW config of ``m=0`` (no graph), which tells it apart where no metadata was
kept.  Collections made by other Qdrant clients open too, with the layout ``native``,
through the core's mapping (``native.py``; the URL options ``vector_field``,
``document_field``, ``metadata_field`` …); :meth:`QdrantClient.describe_collections` lists
every collection, with the reason for one that cannot be opened.

Filter numbers that are whole must be below 2**53 in magnitude, or beyond 2**63 (the
server compares payload numbers as float64; ``translator.py``); others raise
UnsupportedFilterError.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from qdrant_client import QdrantClient as NativeClient
from qdrant_client import models

from ...base import BaseClient, classify, native_errors
from ...capabilities import Capabilities
from ...errors import (
    BackendLockedError,
    CollectionExistsError,
    InvalidURLError,
    UnsupportedFeatureError,
    VecbridgeError,
)
from ...layouts import FRAMEWORKS, detect, framework_layout
from ...mapping import LAYOUTS, MAPPING_OPTIONS
from ...options import Option
from ...types import METRICS
from ...url import URL, redact
from .collection import FORMAT, META_KEY, QdrantCollection, stored_config
from .errortable import ERROR_MAP, detail
from .layouts import FrameworkQdrantCollection, create_framework, framework_mapping
from .native import SAMPLE, NativeQdrantCollection, mapping_of
from .payload import ID_KEY

OPTIONS = (
    Option("api_key", where="server", secret=True, doc="the server's API key (or :password@ in the URL)"),
    Option("timeout", "int", where="server", minimum=1, doc="seconds per request"),
    Option("prefix", where="server", doc="a path prefix of the REST API"),
    Option("grpc_port", "int", where="server", minimum=1, doc="the gRPC port (default 6334)"),
    Option("batch_size", "int", default=256, minimum=1, doc="points per upload request"),
    Option("parallel", "int", default=1, minimum=1, doc="parallel upload workers"),
    # the mapping of collections vecbridge did not create (vecbridge.mapping, native.py)
    Option("vector_field", doc="the named vector to read, where a collection has several"),
    Option("document_field", doc="the payload key holding the document"),
    Option("metadata_field", doc="a payload key whose object holds the metadata"),
    Option("metadata_fields", doc="payload keys kept at the top level (a comma list)"),
    Option("metric", choices=METRICS, doc="the metric (must agree with the collection's distance)"),
    Option("layout", choices=LAYOUTS, doc="the layout to create or expect: vecbridge, native, langchain, llamaindex"),
    Option("id_field", doc="not for Qdrant: ids are the point ids"),
)
_DRIVERS = {None: (False, False), "http": (False, False), "https": (True, False), "grpc": (False, True),
            "grpcs": (True, True)}
_DISTANCE = {"cosine": models.Distance.COSINE, "l2": models.Distance.EUCLID, "ip": models.Distance.DOT}
_METRIC = {v: k for k, v in _DISTANCE.items()}
#: The server's default ``service.max_request_size_mb`` (32), for REST and gRPC alike.
SERVER_REQUEST_BYTES = 32 * 1024 * 1024

# Local mode on disk: one native client per folder in this process, shared and counted,
# with the lock that serialises calls into it (local mode is not thread-safe).
_shared: dict[str, list[Any]] = {}
_shared_lock = threading.Lock()


def _open_local(path: str) -> tuple[NativeClient, str, threading.RLock]:
    key = os.path.realpath(path)
    with _shared_lock:
        entry = _shared.get(key)
        if entry is None:
            try:
                native = NativeClient(path=path)
            except Exception as exc:
                if classify(exc, ERROR_MAP) is not BackendLockedError:
                    raise
                # the table's class, with a message that names the folder and what to do
                raise BackendLockedError(
                    f"qdrant: the local folder {os.path.abspath(path)} is in use by another process (or by a "
                    "Qdrant client of this process that vecbridge did not open); Qdrant's local mode admits "
                    "one client per folder. Close the other process, or for concurrent access run a Qdrant "
                    "server and connect with qdrant://HOST:6333") from exc
            entry = _shared[key] = [native, 0, threading.RLock()]
        entry[1] += 1
        return entry[0], key, entry[2]


def _release_local(key: str) -> None:
    with _shared_lock:
        entry = _shared.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] <= 0:
            del _shared[key]
            entry[0].close()


class QdrantClient(BaseClient):
    """vecbridge client of a Qdrant server or of qdrant-client's local mode."""

    backend_name = "qdrant"
    declared_options = OPTIONS
    error_map = ERROR_MAP
    # Integers in filters: the server compares them as doubles, so only |n| < 2**53 is exact.
    # add's check and write are two calls: nothing holds them together across processes.
    capabilities_declared = Capabilities(index_types=("flat", "hnsw"), filter_int_range=(-(2**53) + 1, 2**53 - 1),
                                         atomic_add=False)

    def __init__(self, url: URL | str, **options: Any):
        super().__init__(url, **options)
        u = self.url
        options = self.options
        if u.driver not in _DRIVERS:
            raise InvalidURLError(f"{u}: unknown qdrant driver {u.driver!r}; use qdrant://, qdrant+https://, "
                                  "qdrant+grpc:// or qdrant+grpcs://")
        secret = options.get("api_key") or u.password
        self._secret: str | None = None if secret is None else str(secret)
        self.batch_size = int(options["batch_size"])
        self.parallel = int(options["parallel"])
        self._shared_key: str | None = None
        self.local = u.host is None
        self._lock: Any = threading.RLock() if self.local else contextlib.nullcontext()
        if not self.local:
            # One server, whichever driver and port reach it: the REST and gRPC ports differ,
            # so the host and the path prefix name it (two servers on one host share the
            # lock, which only serialises their adds).
            self.location = ("qdrant", (u.host or "").lower(), options.get("prefix") or "")
        with self._mapped_errors("connect"):
            if self.local:
                if u.driver or u.username or u.password:
                    raise InvalidURLError(f"{u}: a local-mode URL (no host) takes no driver or credentials")
                if u.path:
                    self._native, self._shared_key, self._lock = _open_local(u.path)
                    self.location = self._shared_key  # the folder's real path, as _open_local shares it
                else:
                    self._native = NativeClient(location=":memory:")
            else:
                https, grpc = _DRIVERS[u.driver]
                port = u.port or (6334 if grpc else 6333)
                #: How to reach the server: the same for the async client (aio.py).
                self._server_args: dict[str, Any] = {
                    "host": u.host, "https": https, "prefer_grpc": grpc, "api_key": self._secret,
                    "port": 6333 if grpc else port, "grpc_port": int(options["grpc_port"] or (port if grpc else 6334)),
                    "timeout": options["timeout"], "prefix": options["prefix"]}
                self._native = NativeClient(**self._server_args)

    def _capabilities(self) -> Capabilities:
        from dataclasses import replace

        grpc = self.url.driver in ("grpc", "grpcs")
        return replace(self.capabilities_declared, wire_bytes_per_float=4 if self.local or grpc else 20,
                       max_request_bytes=None if self.local else SERVER_REQUEST_BYTES,
                       persistent=not self.local or self.url.path is not None,
                       shared_between_processes=not self.local,  # a local folder is locked by one process
                       native_async=not self.local)  # AsyncQdrantClient for a server; local mode: see aio.py

    @contextlib.contextmanager
    def _mapped_errors(self, action: str) -> Iterator[None]:
        """The error table's mapping (:func:`native_errors`), with the api key scrubbed from any
        message and the native detail qdrant-client hides (gRPC details, Qdrant's JSON status)
        shown; every call into local mode is serialised."""
        if self._closed:
            # The core checks before every flow; this covers the calls outside flows (config,
            # set_config, a scan already started), which on a folder another vecbridge client
            # still holds open would otherwise go on working.
            self._check_open()
        try:
            with self._lock, native_errors(self.backend_name, action, self.error_map):
                yield
        except VecbridgeError as exc:
            cause = exc.__cause__
            if cause is None or isinstance(cause, VecbridgeError) or exc.__class__ is BackendLockedError:
                raise  # not a native error mapped here (or already worded, like the folder lock)
            msg = str(exc)
            better = detail(cause)
            if better:
                msg = redact(f"qdrant: {action} failed: {type(cause).__name__}: {better}")
            if self._secret:
                msg = msg.replace(self._secret, "***")
            if msg != str(exc):
                raise type(exc)(msg) from cause  # the table's class, a better message
            raise

    def _close(self) -> None:
        if self._shared_key is not None:
            _release_local(self._shared_key)
            self._shared_key = None
        else:
            with contextlib.suppress(Exception):
                self._native.close()

    # -- collections -----------------------------------------------------------------
    def _has_collection(self, name: str) -> bool:
        with self._mapped_errors("collection_exists"):
            return bool(self._native.collection_exists(name))

    def _list_collections(self) -> list[str]:
        with self._mapped_errors("list collections"):
            return [c.name for c in self._native.get_collections().collections]

    def describe_collections(self) -> list[dict[str, Any]]:
        """Every collection with its layout (``vecbridge`` or ``native``); one that cannot be opened
        has its reason under ``error`` (listing never fails because of one collection)."""
        self._check_open()
        rows: list[dict[str, Any]] = []
        for name in sorted(self._list_collections()):
            row: dict[str, Any] = {"name": name, "layout": "native"}
            try:
                with self._mapped_errors("get_collection"):
                    config = self._native.get_collection(name).config
                row["layout"] = stored_config(config.metadata).get("layout", "native")
                row["layout"] = self._open(name, config)._layout  # a framework's, where its keys show it
            except VecbridgeError as exc:
                row["error"] = str(exc)
            rows.append(row)
        return rows

    def _create_collection(self, name: str, dimension: int, metric: str, index: dict[str, Any]) -> QdrantCollection:
        layout = self.options.get("layout") or "vecbridge"
        framework = framework_layout(layout, "qdrant") if layout in FRAMEWORKS else None
        spec = {"type": "hnsw"} if index["type"] == "default" else dict(index)
        if spec["type"] == "flat":
            hnsw = models.HnswConfigDiff(m=0)  # no graph to build: every search scans, exactly
        else:
            hnsw = models.HnswConfigDiff(m=spec.get("m"), ef_construct=spec.get("ef_construction"))  # type: ignore[arg-type]
        try:
            with self._mapped_errors("create_collection"):
                params = models.VectorParams(size=dimension, distance=_DISTANCE[metric])
                metadata = {META_KEY: {"format": FORMAT, "index": spec, "layout": layout}}
                if framework is not None:  # as the official package creates it (layouts.py)
                    create_framework(self, framework, name, params, hnsw, metadata)
                else:
                    named = self.options.get("vector_field") if layout == "native" else None
                    self._native.create_collection(  # native: the vector named by ?vector_field=, if any
                        name, vectors_config={named: params} if named else params, hnsw_config=hnsw,
                        metadata=metadata)
        except CollectionExistsError as exc:  # created by someone else since the core's check
            raise CollectionExistsError(f"collection {name!r} exists already on qdrant ({self.url}); open it with "
                                        "get_collection") from exc.__cause__
        if layout != "vecbridge":
            with self._mapped_errors("get_collection"):
                return self._open(name, self._native.get_collection(name).config)
        return QdrantCollection(self, name, dimension, metric, spec, managed=True, using=None)

    def _get_collection(self, name: str) -> QdrantCollection | None:
        if not self._has_collection(name):
            return None
        with self._mapped_errors("get_collection"):
            config = self._native.get_collection(name).config
        return self._open(name, config)

    def _open(self, name: str, config: Any) -> QdrantCollection:
        """The collection of ``config``: in vecbridge's layout, or a native one through its mapping."""
        doc = stored_config(config.metadata)
        layout = doc.get("layout", "native")
        kept = META_KEY in (config.metadata or {})
        points: list[Any] = []
        if layout != "vecbridge":
            with self._mapped_errors("scroll"):
                points, _ = self._native.scroll(name, limit=SAMPLE, with_payload=True, with_vectors=False)
            if not kept and points and all(ID_KEY in (p.payload or {}) for p in points):
                layout = "vecbridge"  # written by vecbridge on a server that keeps no collection metadata
        wanted = self.options.get("layout")
        if layout == "native" and not kept:
            # made by another client: the URL's framework layout (an empty collection shows none),
            # else the one its payload keys show (LangChain's, LlamaIndex's), else plain native
            found = detect("qdrant", {k for p in points for k in (p.payload or {})})
            layout = found or "native"
            if wanted == "native" or (wanted in FRAMEWORKS and found is None):
                layout = wanted  # read as plain payload keys; or a framework's store with no point yet
        if wanted and wanted != layout:
            raise UnsupportedFeatureError(f"qdrant collection {name!r} has the layout {layout!r}, not {wanted!r} "
                                          "(the URL's layout=)")
        spec = dict(doc.get("index") or {"type": "flat" if config.hnsw_config.m == 0 else "hnsw"})
        vectors = config.params.vectors
        if layout == "vecbridge":
            if isinstance(vectors, dict) or vectors is None or vectors.distance not in _METRIC:
                raise UnsupportedFeatureError(f"qdrant collection {name!r} is in vecbridge's layout, but its "
                                              "vectors are not one unnamed cosine, dot or euclid vector")
            return QdrantCollection(self, name, int(vectors.size), _METRIC[vectors.distance], spec, managed=True,
                                    using=None)
        options = {k: self.options.get(k) for k in MAPPING_OPTIONS}
        if layout in FRAMEWORKS:
            payloads = [p.payload or {} for p in points]
            mapping = framework_mapping(framework_layout(layout, "qdrant"), name, vectors, payloads, options)
            return FrameworkQdrantCollection(self, name, mapping, spec)
        if kept and not options.get("document_field"):
            options["document_field"] = "document"  # created native by vecbridge: where its documents go
        mapping = mapping_of(name, vectors, [p.payload or {} for p in points], options)
        return NativeQdrantCollection(self, name, mapping, spec)

    def _delete_collection(self, name: str) -> None:
        with self._mapped_errors("delete_collection"):
            self._native.delete_collection(name)
