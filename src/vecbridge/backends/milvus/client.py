"""``milvus://host:19530``, ``milvus+https://host`` (a server) and ``milvus:///path/file.db`` (Milvus Lite).

Options (URL query parameters or keyword arguments): ``token``, ``user`` and
``password`` (also given as ``milvus://user:password@host``), ``db`` (alias
``db_name``), ``timeout`` (seconds per call), ``consistency`` (``session``, the
default, or ``strong``).

Consistency: Milvus answers a read at a *guarantee timestamp*.  With ``session`` a
read waits for every write this process made to the collection through vecbridge
(the write's timestamp; after a delete, whose timestamp Milvus 2.3 does not return,
and on the first read of a collection this client did not create, the server's newest
timestamp, i.e. Strong).  Reads without writes in between then wait for nothing, where
Strong on every read costs a time tick (about 200 ms on Milvus 2.3, measured).
``strong`` makes every read Strong.

Concurrent writers: Milvus has no insert-if-absent and no unique key, so ``add``
checks for the ids and then writes.  Within one process the check and the write hold
the core's lock of that collection, shared by every client of the process
(:mod:`vecbridge.locks`, keyed by the server address or Milvus Lite folder, the database
and the collection), so ``add``'s ``DuplicateIdError`` holds between threads and clients.  Across processes
nothing can make it hold: two processes adding one id at the same moment may both
succeed, and the later write replaces the earlier record (``add`` writes with upsert,
so the collection never holds two rows for one id, which a Milvus server would keep
after two inserts).  Likewise an ``update`` racing another process's write or delete
may undo it.  Give each id one writing process, or one process the writes.

Milvus Lite lets one process open a ``.db`` (a folder, locked with ``flock`` on its
``LOCK`` file); a second process gets :class:`~vecbridge.errors.BackendLockedError`
saying so, where pymilvus says only "Open local milvus failed".
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

from pymilvus import DataType
from pymilvus import MilvusClient as NativeClient  # renamed: ours has the same name

from ...base import BaseClient
from ...capabilities import Capabilities
from ...errors import (
    BackendError,
    BackendLockedError,
    BackendUnavailableError,
    InvalidURLError,
    UnsupportedFeatureError,
    VecbridgeError,
)
from ...options import Option
from ...url import URL
from . import layouts
from .codec import (
    DOCUMENT,
    ID,
    MAX_DOCUMENT_BYTES,
    MAX_ID_BYTES,
    MAX_JSON_BYTES,
    METRIC_TYPES,
    VECTOR,
    stored_metadata_bytes,
)
from .collection import MilvusCollection, config_from, config_property
from .failures import ERRORS
from .session import READ_TIMESTAMPS, READ_TIMESTAMPS_LOCK, WRITE_COUNTS
from .translator import META_FIELD

__all__ = ["MilvusClient"]

#: What Milvus accepts as a collection name.
MILVUS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
DEFAULT_HNSW = {"m": 16, "ef_construction": 200, "ef_search": 100}
DEFAULT_IVF = {"nlist": 128, "nprobe": 16}
OPTIONS = (
    Option("token", where="server", secret=True, doc="an API key or 'user:password' (Zilliz Cloud, RBAC)"),
    Option("user", where="server", doc="user name (instead of user@ in the URL)"),
    Option("password", where="server", secret=True, doc="password (instead of :password@ in the URL)"),
    Option("db", doc="the Milvus database (default: 'default')"),
    Option("db_name", doc="the same as db"),
    Option("timeout", "float", minimum=0, doc="seconds per request"),
    Option("consistency", default="session", choices=("session", "strong"),
           doc="read your own writes (session) or everybody's (strong)"),
    # the mapping of a collection vecbridge did not create (vecbridge.mapping.decide; CONTRACT §7)
    Option("id_field", doc="a native collection's key field (default: its primary key)"),
    Option("vector_field", doc="a native collection's vector field (default: its only one)"),
    Option("document_field", doc="a native collection's document field (default: document, text, content, "
           "page_content)"),
    Option("metadata_field", doc="a native collection's JSON metadata field (default: metadata, meta, cmetadata)"),
    Option("metadata_fields", doc="a native collection's metadata fields, comma-separated (default: every other one)"),
    Option("metric", choices=("cosine", "l2", "ip"), doc="a native collection's metric (default: its index's)"),
    Option("layout", choices=("vecbridge", "native", "langchain", "llamaindex"),
           doc="the layout to create or expect: vecbridge, native, langchain or llamaindex (.layouts)"),
)
_MAPPING = ("id_field", "vector_field", "document_field", "metadata_field", "metadata_fields", "metric", "layout")
_STRONG = None  # read-state: the next read must be Strong


def _index_params(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    kind = spec["type"]
    if kind == "flat":
        return "FLAT", {}
    if kind == "ivf":
        return "IVF_FLAT", {"nlist": spec["nlist"]}
    return "HNSW", {"M": spec["m"], "efConstruction": spec["ef_construction"]}


def _served_here(data_dir: str) -> bool:
    """Whether this process's milvus-lite runs the server of ``data_dir`` (it then holds the
    folder's LOCK itself: a failed connection is no lock held by another process)."""
    try:
        from milvus_lite.server_manager import server_manager_instance
    except ImportError:
        return False
    mine = os.path.realpath(data_dir)
    return any(os.path.realpath(path) == mine for path in list(getattr(server_manager_instance, "_servers", {})))


def _held_elsewhere(data_dir: str) -> bool:
    """Whether another process holds Milvus Lite's lock on ``data_dir`` (``flock`` on its LOCK file).

    Asked only after this process failed to open it: a path this process has open
    already is reused by milvus-lite, never opened twice.
    """
    try:
        import fcntl
    except ImportError:  # Windows: milvus-lite locks with msvcrt there; not probed
        return False
    try:
        fd = os.open(os.path.join(data_dir, "LOCK"), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def _locked_error(path: str) -> BackendLockedError:
    return BackendLockedError(
        f"milvus: the Milvus Lite database {path} is in use by another process (Milvus Lite lets one "
        "process open a database at a time); close the other process, or serve the database to both: run "
        f"`milvus-lite server --data-dir {path} --host 127.0.0.1 --port 19530` (or use a Milvus server) and "
        "connect every process with milvus://127.0.0.1:19530")


def _is_vecbridge(desc: dict[str, Any], fields: dict[str, Any]) -> bool:
    """Whether a collection has vecbridge's fields (else it is a native one: .native)."""
    wanted = {ID: DataType.VARCHAR, VECTOR: DataType.FLOAT_VECTOR, DOCUMENT: DataType.VARCHAR, META_FIELD: DataType.JSON}
    return len(fields) == len(wanted) and all(n in fields and fields[n]["type"] == t for n, t in wanted.items()) and \
        bool(fields[ID].get("is_primary"))


def _full_spec(index: dict[str, Any]) -> dict[str, Any]:
    kind = "hnsw" if index["type"] == "default" else index["type"]
    defaults = {"hnsw": DEFAULT_HNSW, "ivf": DEFAULT_IVF}.get(kind, {})
    return {"type": kind, **defaults, **{k: v for k, v in index.items() if k != "type"}}


class MilvusClient(BaseClient):
    """A Milvus server (2.3 or later) or Milvus Lite, through pymilvus.

    Parameters
    ----------
    url
        ``milvus://host[:19530]``, ``milvus+https://host[:443]``, ``milvus://user:password@host``,
        or ``milvus:///relative/file.db`` / ``milvus:////absolute/file.db`` for Milvus Lite
        (embedded, in this process).
    **options
        ``token``, ``user``, ``password``, ``db``, ``timeout``, ``consistency`` (see the module).

    Notes
    -----
    Each collection has the fields ``id`` (VARCHAR primary key, 256 bytes),
    ``vector`` (FLOAT_VECTOR), ``document`` (VARCHAR, 65,535 bytes) and ``metadata``
    (JSON, 65,536 bytes; layout in :mod:`vecbridge.backends.milvus.translator`), and an HNSW
    (default), FLAT or IVF_FLAT index.  The collection's configuration document (the index
    spec, and what ``set_config`` stores) is the JSON of the collection property
    ``vecbridge.config``.
    """

    backend_name = "milvus"
    declared_options = OPTIONS
    error_map = ERRORS
    # A Milvus server; Milvus Lite differs in shared_between_processes (see _capabilities).
    # Milvus 2.3: 32,768 dimensions at most; a VARCHAR holds 65,535 bytes (documents), a JSON
    # value 65,536 (metadata, measured as stored: type-tagged keys, the no-document flag); the
    # proxy takes gRPC messages of 64 MiB, vectors as packed float32.  Collection names: the
    # portable rule, which Milvus's own ([A-Za-z_][A-Za-z0-9_]{0,254}) contains.  add's check
    # and write are one step only within a process (the core's lock): not atomic_add.
    capabilities_declared = Capabilities(
        index_types=("flat", "hnsw", "ivf"), max_dimension=32768, max_request_bytes=64 << 20,
        wire_bytes_per_float=4, max_id_bytes=MAX_ID_BYTES, max_document_bytes=MAX_DOCUMENT_BYTES,
        max_metadata_bytes=MAX_JSON_BYTES, metadata_bytes=stored_metadata_bytes, ordered_scan=True,
        native_async=False, atomic_add=False, shared_between_processes=True, persistent=True)

    def __init__(self, url: URL | str, **options: Any):
        super().__init__(url, **options)
        options = self.options
        u = self.url
        self._timeout = options["timeout"]
        self.mapping_options = {k: options[k] for k in _MAPPING}
        self._always_strong = options["consistency"] == "strong"
        kwargs: dict[str, Any] = {"db_name": str(options["db"] or options["db_name"] or "")}
        if u.host:
            scheme = u.driver or "http"
            if scheme not in ("http", "https", "grpc", "tcp"):
                raise InvalidURLError(f"{u}: milvus+{scheme} is not a transport; use milvus:// or milvus+https://")
            scheme = "http" if scheme in ("grpc", "tcp") else scheme
            port = u.port or (443 if scheme == "https" else 19530)
            host = f"[{u.host}]" if ":" in u.host else u.host
            uri = f"{scheme}://{host}:{port}"
            token = options.get("token")
            user = options["user"] if options["user"] is not None else u.username
            password = options["password"] if options["password"] is not None else u.password
            if token:
                kwargs["token"] = str(token)
            elif user is not None or password is not None:
                kwargs["token"] = f"{user or ''}:{password or ''}"
            self.mode = "server"
            where = uri
        elif u.path:
            if not u.path.endswith(".db"):
                raise InvalidURLError(f"{u}: a Milvus Lite URL names a file ending in .db, such as milvus:///data/milvus.db")
            path = Path(u.path)
            path.parent.mkdir(parents=True, exist_ok=True)
            uri = str(path)
            self.mode = "lite"
            where = os.path.realpath(uri)
        else:
            raise InvalidURLError(f"{u}: name a server (milvus://host:19530) or a Milvus Lite file (milvus:///path/file.db)")
        #: The server address or the Milvus Lite folder (resolved), and the database.
        self.where, self.database = where, kwargs["db_name"] or "default"
        #: Key of the core's per-collection write locks (vecbridge.locks): a database is a
        #: namespace of collections, so it is part of where a collection is.
        self.location = (where, self.database)
        if self.mode == "lite" and os.path.exists(uri) and not os.path.isdir(uri):
            # milvus-lite 3 keeps a .db *folder*; pymilvus would say only "Open local milvus failed"
            raise BackendError(f"milvus: {where} is a file, not a Milvus Lite database folder (Milvus Lite "
                               "3 keeps a folder named *.db; a file of that name may come from an older milvus-lite "
                               "or another program): name another path, or open it with the program that wrote it")
        try:
            with self._mapped_errors(f"connect to {u}"):
                #: What an AsyncMilvusClient of the same server is made with (.aio).
                self.connect_args = {"uri": uri, "timeout": self._timeout, **kwargs}
                self._native = NativeClient(uri=uri, timeout=self._timeout, **kwargs)
                self.version = str(self._native.get_server_version())
        except BackendError as exc:
            if self.mode == "lite" and _served_here(where):
                # this process's own Milvus Lite server holds the folder: what failed is pymilvus's
                # shared channel to it (an idle one gets gRPC's GOAWAY "too_many_pings"): a channel
                # of its own, once; the folder is not locked by anyone else
                self._native = self._reconnect(u, uri, kwargs, exc)
                self.version = str(self._native.get_server_version())
            # milvus-lite's DataDirLockedError does not reach us: its server manager logs it and
            # pymilvus raises ConnectionConfigException("Open local milvus failed"); so look
            elif self.mode == "lite" and _held_elsewhere(where):
                raise _locked_error(where) from exc.__cause__
            else:
                raise
        # Milvus Lite evaluates a comparison on a missing JSON key to "unknown" (three-valued
        # logic); Milvus 2.3/2.4 servers to false.  Unknown engines get the safe, guarded form.
        self.lite = self.version.startswith("milvus_lite") or self.mode == "lite"
        self.three_valued = self.lite or not re.match(r"v?2\.[34]\.", self.version)
        # read timestamps are per collection of the process, not per client: a write through
        # one client (add's check in another, above all) must be seen by the others' reads
        self._read_ts, self._ts_lock = READ_TIMESTAMPS, READ_TIMESTAMPS_LOCK

    def _reconnect(self, u: Any, uri: str, kwargs: dict[str, Any], first: BackendError) -> Any:
        try:
            with self._mapped_errors(f"connect to {u}"):
                return NativeClient(uri=uri, timeout=self._timeout, dedicated=True, **kwargs)
        except BackendError as exc:
            raise BackendUnavailableError(f"milvus: this process's Milvus Lite server of {self.where} did not answer "
                                          f"({first}; again on a channel of its own: {exc}); try again") from exc

    def __repr__(self) -> str:
        return f"<MilvusClient {self.url} ({self.engine})>"

    def _capabilities(self) -> Capabilities:
        caps = self.capabilities_declared
        if self.mode == "lite":  # one process opens a Milvus Lite folder at a time (its LOCK file)
            caps = dataclasses.replace(caps, shared_between_processes=False)
        else:  # AsyncMilvusClient (.aio); Milvus Lite runs on the core's thread pool
            caps = dataclasses.replace(caps, native_async=True)
        if not self.lite:  # the server compares filter numbers as doubles: integers exact below 2**53
            caps = dataclasses.replace(caps, filter_int_range=(-(2**53) + 1, 2**53 - 1))
        return caps

    @property
    def engine(self) -> str:
        """The engine and its version, for messages: ``Milvus v2.3.5`` or ``Milvus Lite 3.2.2``."""
        if self.version.startswith("milvus_lite-"):
            return "Milvus Lite " + self.version[len("milvus_lite-"):]
        return ("Milvus Lite " if self.lite else "Milvus ") + self.version

    @property
    def native(self) -> NativeClient:
        """The pymilvus client underneath."""
        return self._native

    def call_options(self) -> dict[str, Any]:
        """Keyword arguments for every pymilvus call (the per-call timeout)."""
        return {} if self._timeout is None else {"timeout": float(self._timeout)}

    # -- consistency -----------------------------------------------------------------
    def _key(self, name: str) -> tuple[str, str, str]:
        return self.where, self.database, name

    def read_consistency(self, name: str) -> tuple[dict[str, Any], int]:
        """Keyword arguments that make a read see this process's earlier writes, and a token for :meth:`read_done`."""
        key = self._key(name)
        with self._ts_lock:
            ts, token = self._read_ts.get(key, _STRONG), WRITE_COUNTS.get(key, 0)
        if self._always_strong or ts is _STRONG:
            return {"consistency_level": "Strong"}, token
        return {"consistency_level": "Customized", "guarantee_timestamp": ts}, token

    def read_done(self, name: str, token: int) -> None:
        """A read succeeded: what was written before it stays visible to later reads.

        Unless a write (by any thread or client of the process) came while it ran: that
        write may be newer than what the read saw, so the next read stays Strong.
        """
        key = self._key(name)
        with self._ts_lock:
            if self._read_ts.get(key, _STRONG) is _STRONG and WRITE_COUNTS.get(key, 0) == token:
                self._read_ts[key] = 1  # any timestamp at or after what that read saw

    def wrote(self, name: str, ts: int) -> None:
        """Record a write; ``ts == 0`` (deletes, Milvus Lite) means "read Strong next"."""
        key = self._key(name)
        with self._ts_lock:
            WRITE_COUNTS[key] = WRITE_COUNTS.get(key, 0) + 1
            prev = self._read_ts.get(key, _STRONG)
            self._read_ts[key] = _STRONG if not ts or prev is _STRONG else max(prev, ts)

    # -- collections -----------------------------------------------------------------
    def _has_collection(self, name: str) -> bool:
        self._check_open()
        if not isinstance(name, str) or not MILVUS_NAME.fullmatch(name):
            return False
        with self._mapped_errors("has_collection"):
            return bool(self._native.has_collection(name, **self.call_options()))

    def _list_collections(self) -> list[str]:
        with self._mapped_errors("list_collections"):
            return list(self._native.list_collections(**self.call_options()))

    def _create_collection(self, name: str, dimension: int, metric: str, index: dict[str, Any]) -> MilvusCollection:
        spec = _full_spec(index)
        index_type, params = _index_params(spec)
        if self.mapping_options["layout"] not in (None, "", "vecbridge"):
            return layouts.create(self, name, dimension, metric, (index_type, params), self.mapping_options["layout"])
        schema = NativeClient.create_schema(auto_id=False, enable_dynamic_field=False,
                                            description="a vecbridge collection")
        schema.add_field(ID, DataType.VARCHAR, is_primary=True, max_length=MAX_ID_BYTES)
        schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dimension)
        schema.add_field(DOCUMENT, DataType.VARCHAR, max_length=MAX_DOCUMENT_BYTES)
        schema.add_field(META_FIELD, DataType.JSON)
        index_params = NativeClient.prepare_index_params()
        index_params.add_index(VECTOR, index_type=index_type, metric_type=METRIC_TYPES[metric], params=params)
        with self._mapped_errors(f"create collection {name!r}"):
            self._native.create_collection(name, schema=schema, consistency_level="Strong",
                                           properties=config_property({"index": spec}),
                                           **self.call_options())
            try:
                # sync=False: pymilvus would sleep 0.5 s before its first look at an index
                # that, on an empty collection, is complete at once; load waits for it anyway
                self._native.create_index(name, index_params, sync=False, **self.call_options())
                self._native.load_collection(name, **self.call_options())
            except Exception:
                self._native.drop_collection(name)  # no half-made collection left behind
                raise
        with self._ts_lock:
            # nothing was written before the collection existed: no read needs to wait yet
            self._read_ts[self._key(name)] = 1
        return MilvusCollection(self, name, dimension, metric, spec)

    def _get_collection(self, name: str) -> MilvusCollection | None:
        if not self._has_collection(name):
            return None
        with self._mapped_errors(f"describe collection {name!r}"):
            desc = self._native.describe_collection(name, **self.call_options())
            fields = {f["name"]: f for f in desc.get("fields", [])}
            if not _is_vecbridge(desc, fields) or self.mapping_options["layout"] not in (None, "", "vecbridge"):
                return layouts.open_collection(self, name, desc)
            dimension = int(fields[VECTOR]["params"]["dim"])
            info = self._native.describe_index(name, VECTOR, **self.call_options()) or {}
            metric = {v: k for k, v in METRIC_TYPES.items()}.get(str(info.get("metric_type", "")).upper())
            if metric is None:
                raise UnsupportedFeatureError(f"milvus collection {name!r} has no vector index with a metric of "
                                              f"vecbridge (cosine, l2, ip): {info!r}")
            spec = self._spec_from(config_from(desc.get("properties") or {}), info)
            self._ensure_loaded(name)
        return MilvusCollection(self, name, dimension, metric, spec)

    @staticmethod
    def _spec_from(config: dict[str, Any] | None, info: dict[str, Any]) -> dict[str, Any]:
        if config and isinstance(config.get("index"), dict):
            return dict(config["index"])
        kind = str(info.get("index_type", "")).upper()
        if kind == "FLAT":
            return {"type": "flat"}
        if kind.startswith("IVF"):
            return {**_full_spec({"type": "ivf"}), "nlist": int(info.get("nlist", DEFAULT_IVF["nlist"]))}
        return {**_full_spec({"type": "hnsw"}), "m": int(info.get("M", 16)),
                "ef_construction": int(info.get("efConstruction", 200))}

    def _ensure_loaded(self, name: str) -> None:
        state = self._native.get_load_state(name, **self.call_options())
        if "NotLoad" in str(state.get("state", "")):
            self._native.load_collection(name, **self.call_options())

    def describe_collections(self) -> list[dict[str, Any]]:
        """Every collection: ``name``, ``layout`` (``vecbridge``, ``native``, ``langchain`` or
        ``llamaindex``) and ``error``, the reason one cannot be opened (``None`` when it can);
        listing never fails on one of them."""
        out = []
        for name in self.list_collections():
            entry: dict[str, Any] = {"name": name, "layout": None, "error": None}
            try:
                with self._mapped_errors(f"describe collection {name!r}"):
                    desc = self._native.describe_collection(name, **self.call_options())
                entry["layout"] = "vecbridge" if _is_vecbridge(desc, {f["name"]: f for f in desc.get("fields", [])}) \
                    else "native"
                coll = self.get_collection(name)
                mapping = getattr(coll, "mapping", None)
                if mapping is not None:
                    entry["layout"] = mapping.layout
            except VecbridgeError as exc:
                entry["error"] = str(exc)
            out.append(entry)
        return out

    def _delete_collection(self, name: str) -> None:
        with self._mapped_errors(f"drop collection {name!r}"):
            self._native.drop_collection(name, **self.call_options())
        with self._ts_lock:
            self._read_ts.pop(self._key(name), None)

    def _close(self) -> None:
        try:
            self._native.close()
        except Exception as exc:
            raise BackendError(f"milvus: close failed: {type(exc).__name__}") from exc
