"""``chroma://`` URLs: a Chroma server, or chromadb's embedded engine.

=================================  ===================================================
``chroma://host:8000``             a Chroma server over HTTP (port 8000 if none given)
``chroma+https://host``            over HTTPS (port 443 if none given)
``chroma:///rel/path``             embedded, persistent, in that folder
``chroma:////abs/path``            (``chroma:///`` + an absolute path)
``chroma://``                      embedded, in memory, private to the client
=================================  ===================================================

Options (query parameters or keyword arguments): ``tenant``, ``database``; for a
server also ``token`` (sent as ``Authorization: Bearer …``, or in the header named by
``token_header``, e.g. ``X-Chroma-Token``), ``api_key`` (Chroma Cloud: sent as
``X-Chroma-Token``), ``headers`` (a dict of extra HTTP headers) and ``ssl_verify``; a
``user:password@`` in the URL is sent as HTTP basic auth.
Secrets never appear in a repr, a log line or an error message.

chromadb keeps one in-memory engine per process, shared by every ``EphemeralClient``:
each ``chroma://`` client therefore works in a database of its own (``vb_mem_…``) in
that engine, created on connect and dropped on ``close()``, so that two ``chroma://``
clients never see each other's collections.  (A ``database=`` option picks a named,
shared database instead, which is kept.)

Concurrency (see :mod:`.locks`).  Chroma has no atomic insert-if-absent, so ``add``
checks then writes, under the core's write lock of the collection (:mod:`vecbridge.locks`,
keyed by :attr:`ChromaClient.location`), shared by every client of the database in the
process: threads and clients of one process always get one success and one
``DuplicateIdError`` per id.  What cannot be guaranteed (``atomic_add`` is false): two
*processes* adding the same id to one Chroma server at the same moment can both be told
it worked; Chroma keeps the first record written (the same holds for two processes
updating or upserting one record: the last write wins, and a merge of the two upserts'
metadata is possible).  A folder is written by one process at a time
(``shared_between_processes`` is false for a folder): chromadb's embedded engine never
shows a process the writes another process makes, so a process writing a folder that
another one has open, or opening a folder another process writes, gets
``BackendLockedError``; serve a folder shared by processes with a Chroma server.

Collections are created without an embedding function (vecbridge always passes
vectors; Chroma's default one would download a model), with the HNSW index Chroma
offers -- it has no exact index, so ``{"type": "flat"}`` is refused -- and with their
configuration document (dimension, metric, format, layout, embedding …) as JSON under
the collection metadata key ``vecbridge_config`` (see :mod:`.collection`; collections of
earlier versions carry ``vecbridge_format``/``vecbridge_dimension``/``vecbridge_metric``
instead, and still open).  A collection made by another tool opens too: its metric comes
from its configuration, its dimension from its data.

Errors go through one table (:data:`ERRORS`): a dropped or refused connection is
``BackendUnavailableError``, including chromadb's ``ValueError("Could not connect to a
Chroma server…")``, which it raises while handling an ``httpx.ConnectError`` (so it is
told by the transport error it carries, not by its words).
"""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from typing import Any, ClassVar

import chromadb
from chromadb.config import Settings

from ...base import BaseClient, ErrorRule
from ...capabilities import Capabilities
from ...errors import CollectionNotFoundError, InvalidURLError, UnsupportedFeatureError
from ...options import Option
from ...url import URL
from .collection import CONFIG_KEY, FORMAT, ChromaCollection, stored_config
from .failures import ERRORS
from .locks import FolderLock, close_folder, open_folder
from .native import MAPPING_DECLARED, NATIVE_LAYOUTS, creation_metadata, decide_mapping, detect_layout

#: Chroma's own rule for collection names: any name outside it cannot exist there.
CHROMA_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9._-]{1,510}[a-zA-Z0-9]")
_HNSW_NAMES = {"m": "max_neighbors", "ef_construction": "ef_construction", "ef_search": "ef_search"}
OPTIONS = (
    Option("tenant", doc="the Chroma tenant (default: chromadb's default tenant)"),
    Option("database", doc="the Chroma database (default: chromadb's default; in memory: a private one)"),
    Option("token", where="server", secret=True, doc="sent as 'Authorization: Bearer …' or in token_header"),
    Option("token_header", where="server", doc="the header that carries token, e.g. X-Chroma-Token"),
    Option("api_key", where="server", secret=True, doc="Chroma Cloud's key, sent as X-Chroma-Token"),
    Option("headers", "dict", where="server", doc="extra HTTP headers (keyword argument only)"),
    Option("ssl_verify", where="server", doc="true, false, or the path of a CA bundle"),
    *MAPPING_DECLARED,
)


def _settings() -> Settings:
    # no telemetry: nothing leaves the machine, and nothing waits on a network here
    return Settings(anonymized_telemetry=False)


def _engine_settings(path: str | None) -> tuple[str | None, Settings]:
    """The path string and settings for a client of the folder ``path`` (``None``: the
    in-memory engine) that chromadb accepts next to clients the application opened itself.

    chromadb keeps one engine per folder (and one in-memory engine) per process, keyed by the
    path *string* it was given, and refuses a second client of it with other settings ("An
    instance of Chroma already exists for … with different settings").  So when the
    application has the folder open already (under any spelling of its path), vecbridge
    uses that engine's own path string and settings; otherwise its own (no telemetry)."""
    from chromadb.api.shared_system_client import SharedSystemClient

    for ident, system in list(SharedSystemClient._identifier_to_system.items()):
        theirs = system.settings
        if theirs.chroma_api_impl not in ("chromadb.api.rust.RustBindingsAPI", "chromadb.api.segment.SegmentAPI"):
            continue  # an HTTP client's engine: not a folder
        if path is None and not theirs.is_persistent:
            return None, theirs.model_copy()
        if (path is not None and theirs.is_persistent and theirs.persist_directory
                and os.path.realpath(theirs.persist_directory) == os.path.realpath(path)):
            return ident, theirs.model_copy()
    return path, _settings()


_admin: Any = None


def _memory_admin() -> Any:
    """One admin client of the process's in-memory engine (it holds the engine open)."""
    global _admin
    if _admin is None:
        _, settings = _engine_settings(None)
        settings.is_persistent = False
        _admin = chromadb.AdminClient(settings)
    return _admin


class ChromaClient(BaseClient):
    """A vecbridge client for Chroma (server, embedded on disk, or in memory).

    Parameters
    ----------
    url : URL or str
        ``chroma://host:port``, ``chroma+https://host``, ``chroma:///path`` or ``chroma://``
        (see the module docstring).
    **options
        ``tenant``, ``database``; for a server also ``token``, ``token_header``,
        ``api_key``, ``headers`` and ``ssl_verify``.
    """

    backend_name = "chroma"
    declared_options = OPTIONS
    # the portable names: Chroma's own rule (CHROMA_NAME) takes more, but the contract's
    # suite refuses names such as "1abc" everywhere
    capabilities_declared = Capabilities(index_types=("hnsw",), atomic_add=False)
    error_map: ClassVar[tuple[ErrorRule, ...]] = ERRORS

    def __init__(self, url: URL | str, **options: Any):
        super().__init__(url, **options)
        u = self.url
        self.mode = "server" if u.host else ("persistent" if u.path else "memory")
        options = self.options
        if u.driver not in (None, "http", "https"):
            raise InvalidURLError(f"{u}: chroma speaks http or https, not {u.driver!r}")
        if self.mode != "server" and (u.driver or u.port):
            raise InvalidURLError(f"{u}: a port or a driver needs a host (chroma://host:8000)")
        tenant = str(options.get("tenant") or chromadb.DEFAULT_TENANT)
        database = options.get("database")
        self._private_db: str | None = None
        self._admin: Any = None
        self._folder: FolderLock | None = None
        #: a server's connection arguments (None for the other forms)
        self.server_kwargs: dict[str, Any] | None = None
        with self._mapped_errors(f"connect to {u}"):
            if self.mode == "server":
                database = str(database or chromadb.DEFAULT_DATABASE)
                self._native = self._connect_server(tenant, database)
                where: tuple[Any, ...] = ("server", u.driver or "http", str(u.host), u.port, tenant, database)
            elif self.mode == "persistent":
                assert u.path is not None
                database = str(database or chromadb.DEFAULT_DATABASE)
                # before chromadb reads the folder: a process writing it must not be read (see .locks)
                self._folder = open_folder(os.path.abspath(u.path))
                try:
                    path, settings = _engine_settings(self._folder.path)
                    self._native = chromadb.PersistentClient(path=path or self._folder.path, settings=settings,
                                                             tenant=tenant, database=database)
                except BaseException:
                    close_folder(self._folder)
                    raise
                where = ("persistent", self._folder.path, tenant, database)
            else:
                if database is None:
                    database = self._private_db = f"vb_mem_{uuid.uuid4().hex}"
                    self._admin = _memory_admin()
                    self._admin.create_database(database, tenant=tenant)
                self._native = chromadb.EphemeralClient(settings=_engine_settings(None)[1], tenant=tenant,
                                                        database=str(database))
                where = ("memory", tenant, str(database))
        self._tenant = tenant
        #: where the database lives: the key of its collections' in-process write locks (vecbridge.locks)
        self.location = where
        self._max_batch: int | None = None

    def _connect_server(self, tenant: str, database: str) -> Any:
        self.server_kwargs = self._server_kwargs(tenant, database)
        return chromadb.HttpClient(**self.server_kwargs)

    def _server_kwargs(self, tenant: str, database: str) -> dict[str, Any]:
        """``chromadb.HttpClient``'s arguments, which ``chromadb.AsyncHttpClient`` takes too (.aio)."""
        u, o = self.url, self.options
        https = u.driver == "https"
        if not isinstance(o.get("headers") or {}, dict):
            raise InvalidURLError(f"{u}: the headers option is a dict of HTTP headers (give it as a keyword argument)")
        headers = {str(k): str(v) for k, v in (o.get("headers") or {}).items()}
        if u.username is not None or u.password is not None:  # chroma's basic auth
            pair = f"{u.username or ''}:{u.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        if o.get("token") is not None:
            header = str(o.get("token_header") or "Authorization")
            headers[header] = f"Bearer {o['token']}" if header.lower() == "authorization" else str(o["token"])
        if o.get("api_key") is not None:
            headers["X-Chroma-Token"] = str(o["api_key"])
        settings = _settings()
        if o.get("ssl_verify") is not None:
            verify = str(o["ssl_verify"])
            settings.chroma_server_ssl_verify = {"true": True, "false": False}.get(verify.lower(), verify)
        port = u.port or (443 if https else 8000)
        return {"host": str(u.host), "port": port, "ssl": https, "headers": headers or None,
                "settings": settings, "tenant": tenant, "database": database}

    @property
    def native(self) -> Any:
        """The chromadb client underneath (``chromadb.api.ClientAPI``)."""
        return self._native

    def _capabilities(self) -> Capabilities:
        from dataclasses import replace

        # JSON floats on the wire to a server; a folder is written by one process (see .locks),
        # and an in-memory database lives in its process
        return replace(self.capabilities_declared, max_batch_rows=self.max_batch_size(),
                       native_async=self.mode == "server",  # chromadb.AsyncHttpClient (.aio)
                       wire_bytes_per_float=20 if self.mode == "server" else 4,
                       persistent=self.mode != "memory", shared_between_processes=self.mode == "server")

    def for_writing(self) -> None:
        """Before a write: a folder becomes this process's to write, or BackendLockedError."""
        if self._folder is not None:
            self._folder.for_writing()

    def max_batch_size(self) -> int:
        """The largest write batch the engine takes (asked once)."""
        if self._max_batch is None:
            with self._mapped_errors("get_max_batch_size"):
                size = int(self._native.get_max_batch_size())
            self._max_batch = size if size > 0 else 5000
        return self._max_batch

    # -- hooks -----------------------------------------------------------------------
    def _native_collection(self, name: str) -> Any | None:
        if not isinstance(name, str) or not CHROMA_NAME.fullmatch(name):
            return None
        try:
            with self._mapped_errors(f"get_collection {name!r}"):
                # embedding_function=None: never build Chroma's default one (it downloads a model)
                return self._native.get_collection(name, embedding_function=None)
        except CollectionNotFoundError:
            return None

    def _has_collection(self, name: str) -> bool:
        return self._native_collection(name) is not None

    def _list_collections(self) -> list[str]:
        with self._mapped_errors("list_collections"):
            return [c.name for c in self._native.list_collections()]

    def _create_collection(self, name: str, dimension: int, metric: str, index: dict[str, Any]) -> ChromaCollection:
        hnsw: dict[str, Any] = {"space": metric}
        hnsw.update({_HNSW_NAMES[k]: v for k, v in index.items() if k in _HNSW_NAMES})
        layout = str(self.options.get("layout") or "vecbridge")
        if layout == "vecbridge":
            doc = {"format": FORMAT, "dimension": dimension, "metric": metric}
            meta = {CONFIG_KEY: json.dumps(doc, sort_keys=True)}
            mapping = None
        elif layout in NATIVE_LAYOUTS:  # Chroma's own layout, as its users (and LangChain, LlamaIndex) make it
            meta = creation_metadata(dimension, metric, layout)
            mapping = decide_mapping(name, dimension, metric, self.options, layout)
        else:
            raise UnsupportedFeatureError(f"chroma: no layout {layout!r}; the layouts are vecbridge, "
                                          f"{', '.join(NATIVE_LAYOUTS)}")
        self.for_writing()
        # a name taken meanwhile: CollectionExistsError through the error table
        with self._mapped_errors(f"create_collection {name!r}"):
            native = self._native.create_collection(name, configuration={"hnsw": hnsw}, metadata=meta,
                                                    embedding_function=None)
        return ChromaCollection(self, native, dimension, metric, _index_of(native.configuration_json.get("hnsw") or hnsw),
                                vecbridge_format=mapping is None, mapping=mapping)

    def _get_collection(self, name: str) -> ChromaCollection | None:
        native = self._native_collection(name)
        if native is None:
            return None
        meta = native.metadata or {}
        hnsw = dict((native.configuration_json or {}).get("hnsw") or {})
        metric = hnsw.get("space") or meta.get("hnsw:space") or "l2"  # l2: Chroma's default space
        if metric not in ("cosine", "l2", "ip"):
            raise UnsupportedFeatureError(f"chroma collection {name!r} uses the space {metric!r}, "
                                          "which vecbridge does not know")
        doc = stored_config(meta)
        dimension = doc.get("dimension")
        if not isinstance(dimension, int) or isinstance(dimension, bool):
            dimension = self._dimension_from_data(native)
        ours = doc.get("format") == FORMAT
        asked = self.options.get("layout")
        if ours and asked not in (None, "", "vecbridge"):
            raise UnsupportedFeatureError(f"chroma collection {name!r} is in vecbridge's layout, not {asked!r}; "
                                          "open it without ?layout= (or with layout=vecbridge)")
        mapping = None
        if not ours:
            if asked == "vecbridge":
                raise UnsupportedFeatureError(f"chroma collection {name!r} was not created in vecbridge's layout; open "
                                              f"it without ?layout= or with one of {', '.join(NATIVE_LAYOUTS)}")
            with self._mapped_errors(f"read the layout of {name!r}"):
                layout = detect_layout(native, doc, self.options)
            mapping = decide_mapping(name, dimension, metric, self.options, layout)
        return ChromaCollection(self, native, dimension, metric, _index_of(hnsw), vecbridge_format=ours,
                                mapping=mapping)

    def _dimension_from_data(self, native: Any) -> int:
        with self._mapped_errors(f"read the dimension of {native.name!r}"):
            got = native.get(limit=1, include=["embeddings"])
        embeddings = got.get("embeddings")
        if embeddings is None or len(embeddings) == 0:
            raise UnsupportedFeatureError(
                f"chroma collection {native.name!r} was not created by vecbridge and holds no vector yet, so its "
                "dimension is unknown; add a record with chromadb first")
        return len(embeddings[0])

    def _delete_collection(self, name: str) -> None:
        native = self._native_collection(name)
        if native is None:
            return
        self.for_writing()
        with self._mapped_errors(f"delete_collection {name!r}"):
            # Chroma 1.5 leaves list-valued metadata of a deleted collection behind, and the
            # next records written anywhere in the database can inherit it (chroma-core/chroma
            # issue 7594); deleting the records first removes it properly.
            if native.count():
                native.delete(where=ChromaCollection.EVERY_RECORD)
            self._native.delete_collection(name)

    def _close(self) -> None:
        try:
            if self._private_db is not None:
                with self._mapped_errors("drop the in-memory database"):
                    for name in self._list_collections():
                        self._delete_collection(name)
                    self._admin.delete_database(self._private_db, tenant=self._tenant)
        finally:
            try:
                close = getattr(self._native, "close", None)
                if close is not None:
                    close()  # the last one stops chromadb's engine of the folder: a reopening reads it afresh
            finally:
                if self._folder is not None:
                    close_folder(self._folder)


def _index_of(hnsw: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "hnsw"}
    for ours, theirs in _HNSW_NAMES.items():
        if hnsw.get(theirs) is not None:
            spec[ours] = hnsw[theirs]
    return spec


