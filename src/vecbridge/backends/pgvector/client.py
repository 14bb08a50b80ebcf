"""``pgvector://user:pass@host:5432/db`` (alias ``postgresql://``) and ``pgvector:///path``.

The server form takes libpq's parameters as URL options (``sslmode=require``,
``host=/var/run/postgresql`` for a Unix socket, ``connect_timeout=5`` …) plus:

``schema``
    where the collection tables and the catalog live (default ``public``; created if missing).
``pool_min_size``, ``pool_max_size``, ``pool_timeout``
    the psycopg_pool connection pool shared by the client's collections (1, 10, 30 s).
``maintenance_work_mem``
    memory for building an ANN index after a bulk load, for that transaction only
    (default ``auto``: what the graph needs, estimated from the rows and the dimension,
    and never less than the server's setting; pgvector builds several times faster
    when the graph fits in it).

``pgvector:///path`` starts an embedded PostgreSQL with pgvector on that folder (see
:mod:`.embedded`).  ``postgresql:///db`` keeps libpq's meaning: the local socket,
database ``db``.  The password never appears in a repr, an error message or a log line.

Errors go through one table, :data:`.failures.ERRORS`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Hashable, Iterable, Iterator
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg import pq, sql
from psycopg_pool import ConnectionPool

from ...base import BaseClient
from ...capabilities import Capabilities
from ...errors import (
    BackendError,
    CollectionExistsError,
    CollectionNotFoundError,
    InvalidURLError,
    UnsupportedFeatureError,
    VecbridgeError,
)
from ...options import Option
from ...url import URL
from . import ddl, frameworks, native
from .codec import dump_json, make_adapters
from .collection import PgvectorCollection
from .failures import ERRORS

__all__ = ["PgvectorClient"]

OPTIONS = (
    Option("schema", default="public", doc="the schema of vecbridge's tables"),
    Option("pool_min_size", "int", default=1, minimum=0, doc="connections the pool keeps open"),
    Option("pool_max_size", "int", default=10, minimum=1, doc="connections the pool opens at most"),
    Option("pool_timeout", "float", default=30.0, minimum=0, doc="seconds to wait for a free connection"),
    Option("maintenance_work_mem", default="auto", doc="memory for index builds ('auto': sized from the data)"),
    # the mapping of a table vecbridge did not create (vecbridge.mapping.decide; CONTRACT §7)
    Option("id_field", doc="a native table's key column (default: its primary key)"),
    Option("vector_field", doc="a native table's vector column (default: its only one)"),
    Option("document_field", doc="a native table's document column (default: document, text, content, page_content)"),
    Option("metadata_field", doc="a native table's jsonb metadata column (default: metadata, meta, cmetadata)"),
    Option("metadata_fields", doc="a native table's metadata columns, comma-separated (default: every other one)"),
    Option("metric", choices=("cosine", "l2", "ip"),
           doc="a native table's metric (default: its ANN index's operator class; needed without one)"),
    Option("layout", choices=("vecbridge", "native", "langchain", "llamaindex"),
           doc="the layout to create or expect: vecbridge (default), native, langchain or llamaindex"),
)
_MAPPING = ("id_field", "vector_field", "document_field", "metadata_field", "metadata_fields", "metric", "layout")
_OWN_OPTIONS = frozenset(o.name for o in OPTIONS)
_LIBPQ = frozenset(o.keyword.decode() for o in pq.Conninfo.get_defaults())
#: pg_advisory_xact_lock key serialising the one-time setup (extension, schema, catalog) across processes.
_SETUP_LOCK = 0x76656362  # "vecb"


def _holdable(name: str) -> bool:
    """False for a name no PostgreSQL table can have, so that no collection has: NUL, lone surrogates."""
    if "\x00" in name:
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _libpq_value(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


class PgvectorClient(BaseClient):
    """A PostgreSQL database with the pgvector extension; one table per collection.

    Parameters
    ----------
    url : URL or str
        ``pgvector://[user[:password]@]host[:port]/dbname`` or ``pgvector:///path``.
    **options
        libpq parameters, and ``schema``, ``pool_min_size``, ``pool_max_size``,
        ``pool_timeout``, ``maintenance_work_mem`` (see the module docstring).
    """

    backend_name = "pgvector"
    declared_options = OPTIONS
    error_map = ERRORS
    capabilities_declared = Capabilities(
        index_types=("flat", "hnsw", "ivf"),
        # vector(n) holds up to 16,000 dimensions; HNSW and IVFFlat index up to 2,000, and a
        # default index above that is an exact scan (ddl.resolve_index)
        max_dimension=ddl.MAX_DIMENSION,
        # vectors travel in pgvector's binary form (float4), in COPY and in results alike;
        # COPY streams, so no request size or row count of its own limits a write
        wire_bytes_per_float=4,
        # PostgreSQL's ceilings (ddl): a text field of 1 GB, a jsonb of 256 MB.  A jsonb's
        # binary form is near its JSON text's size, not equal: metadata just under the
        # ceiling may still be refused by the server (BackendError, SQLSTATE 54000)
        max_document_bytes=ddl.MAX_FIELD_BYTES,
        max_metadata_bytes=ddl.MAX_JSONB_BYTES,
        # jsonb numbers are exact decimals and filter values are bound at their exact values
        filter_int_range=None,
        ordered_scan=True,  # scan is keyset pagination on the primary key
        # add is one COPY into a table with a primary key: a concurrent add of the same id
        # waits for the other's commit and then fails, whichever process it runs in
        atomic_add=True,
        # psycopg's AsyncConnectionPool (backends/pgvector/aio.py), for the server and the
        # embedded form alike: the embedded server is reached over its Unix socket like any host
        native_async=True,
        shared_between_processes=True,
        persistent=True,
    )

    passthrough_option = staticmethod(_LIBPQ.__contains__)

    def __init__(self, url: URL | str, **options: Any):
        super().__init__(url, **options)
        own = {k: v for k, v in self.options.items() if k in _OWN_OPTIONS}
        options = {k: v for k, v in self.options.items() if k not in _OWN_OPTIONS}
        self.schema = str(own["schema"])
        #: the URL options of a native table's mapping (vecbridge.mapping.decide)
        self.mapping_options = {k: own[k] for k in _MAPPING}
        self._refuse_nul(options)
        self._maintenance_work_mem = str(own["maintenance_work_mem"])
        self._spare: list[psycopg.Connection] = []
        params = self._conninfo(options)
        with self._mapped_errors(f"connecting to {self.url}"):
            self.ext_schema, vector_oid = self._setup(params)
            #: libpq parameters and the pool's sizes, for the async pool of :mod:`.aio`
            self._params = params
            self.vector_oid = vector_oid
            self.pool_sizes = (int(own["pool_min_size"]), int(own["pool_max_size"]), float(own["pool_timeout"]))
            self._pool: ConnectionPool = ConnectionPool(
                "", kwargs={**params, "autocommit": True, "context": make_adapters(vector_oid)},
                min_size=int(own["pool_min_size"]), max_size=int(own["pool_max_size"]),
                timeout=float(own["pool_timeout"]), configure=self._configure_connection,
                name=f"vecbridge-pgvector-{id(self):x}", open=True)

    # -- connecting ---------------------------------------------------------------------
    def _refuse_nul(self, options: dict[str, Any]) -> None:
        """libpq takes C strings: a value with a NUL would be cut there (another user, another database)."""
        url = self.url
        parts = {"user name": url.username, "password": url.password, "host": url.host,
                 "path" if url.host is None else "database name": url.path, "schema": self.schema,
                 **{f"option {k!r}": v for k, v in options.items()}}
        for what, value in parts.items():
            if value is not None and "\x00" in str(value):
                raise InvalidURLError(f"{url}: the {what} contains a NUL character, which PostgreSQL cannot take; "
                                      "remove it")

    def _embedded(self, options: dict[str, Any]) -> bool:
        """``pgvector:///path``: a folder, no server named (``postgresql:///db`` is libpq's local socket)."""
        url = self.url
        return (url.scheme == "pgvector" and url.path is not None and url.host is None
                and url.username is None and url.password is None
                and "host" not in options and "hostaddr" not in options)

    def _default_location(self) -> Hashable:
        # The database this client reaches (a Unix socket's folder is the host option), or the
        # embedded folder.  No os.path call on a path holding a NUL: _refuse_nul refuses it next.
        url, options = self.url, self.options
        if self._embedded(options) and "\x00" not in (url.path or ""):
            return os.path.realpath(url.path or "")
        return ("pgvector", options.get("host") or url.host, options.get("port") or url.port, url.path)

    def _conninfo(self, options: dict[str, Any]) -> dict[str, Any]:
        url = self.url
        if self._embedded(options):
            from .embedded import embedded_conninfo

            params: dict[str, Any] = embedded_conninfo(url.path or "")
        else:
            params = {}
            for key, value in (("host", url.host), ("port", url.port), ("user", url.username),
                               ("password", url.password), ("dbname", url.path)):
                if value is not None:
                    params[key] = value
        params.update(options)
        params.setdefault("connect_timeout", 10)
        params.setdefault("application_name", "vecbridge")
        return {k: _libpq_value(v) for k, v in params.items()}

    def _setup(self, params: dict[str, Any]) -> tuple[str, int]:
        """Make sure of the extension, the schema and the catalog; the extension's schema and type oid."""
        with psycopg.connect(**params, autocommit=True) as conn:
            if not self._ready(conn):
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK,))
                    if self._extension(conn) is None:
                        try:
                            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                        except pg_errors.InsufficientPrivilege as exc:
                            raise BackendError(
                                f"pgvector: the extension 'vector' is not installed in database "
                                f"{conn.info.dbname!r} and this user may not install it; ask an administrator "
                                "to run CREATE EXTENSION vector") from exc
                    if not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)).fetchone():
                        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
                    conn.execute(ddl.catalog_sql(self.schema))
            ext = self._extension(conn)
            assert ext is not None
            self.pgvector_version: tuple[int, ...] = tuple(int(p) for p in ext[2].split(".")[:3] if p.isdigit())
            return ext[0], ext[1]

    @staticmethod
    def _extension(conn: psycopg.Connection) -> tuple[str, int, str] | None:
        row = conn.execute(
            "SELECT n.nspname, t.oid::int, e.extversion FROM pg_extension e "
            "JOIN pg_namespace n ON n.oid = e.extnamespace "
            "JOIN pg_type t ON t.typnamespace = e.extnamespace AND t.typname = 'vector' "
            "WHERE e.extname = 'vector'").fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def _ready(self, conn: psycopg.Connection) -> bool:
        row = conn.execute(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relname = %s", (self.schema, ddl.CATALOG)).fetchone()
        return row is not None and self._extension(conn) is not None

    def session_statements(self) -> list[Any]:
        """What every pooled connection runs first, sync (the pool's ``configure``) or async (:mod:`.aio`)."""
        out: list[Any] = []
        # Iterative index scans (pgvector 0.8): a filtered ANN query keeps scanning until it
        # has k matches.  Older versions lack them; the core's exact top-k rule (_exact_query) covers it.
        if self.pgvector_version >= (0, 8):
            out += ["SET hnsw.iterative_scan = relaxed_order", "SET ivfflat.iterative_scan = relaxed_order"]
        # timestamptz values of native tables are read in UTC, so that their ISO-8601 text
        # (mapping.to_metadata) and the filters on them (.translator) agree
        out.append("SET TimeZone = 'UTC'")
        out.append(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS _vb_stage (id text COLLATE \"C\", "
                           "embedding {}, metadata jsonb, document text) ON COMMIT DELETE ROWS").format(
            sql.Identifier(self.ext_schema, "vector")))
        return out

    def _configure_connection(self, conn: psycopg.Connection) -> None:
        for stmt in self.session_statements():
            conn.execute(stmt)

    # A query is a single autocommitted statement, and psycopg_pool's getconn/putconn cost
    # about as much Python time as the rest of a query's client side.  So one idle connection
    # stays checked out as a "spare" that the next query takes with a list pop; concurrent
    # callers find no spare and go to the pool as usual.
    def _borrow(self) -> psycopg.Connection:
        try:
            return self._spare.pop()
        except IndexError:
            return self._pool.getconn()

    def _give_back(self, conn: psycopg.Connection) -> None:
        if not self._spare and not self._closed and conn.pgconn.transaction_status == pq.TransactionStatus.IDLE:
            self._spare.append(conn)
        else:
            self._pool.putconn(conn)  # the pool resets, or replaces, a connection in any other state

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        """A connection for one statement or one ``conn.transaction()`` (autocommit otherwise)."""
        conn = self._borrow()
        try:
            yield conn
        finally:
            self._give_back(conn)

    def _close(self) -> None:
        while self._spare:
            self._pool.putconn(self._spare.pop())
        self._pool.close()

    # -- catalog ---------------------------------------------------------------------------
    @property
    def _catalog(self) -> sql.Identifier:
        return sql.Identifier(self.schema, ddl.CATALOG)

    def _table(self, name: str) -> sql.Identifier:
        return sql.Identifier(self.schema, name)

    def _has_collection(self, name: str) -> bool:
        if not _holdable(name):
            return False
        with self._mapped_errors("looking up a collection"), self._connection() as conn:
            q = sql.SQL("SELECT 1 FROM {} WHERE name = %s").format(self._catalog)
            if conn.execute(q, (name,)).fetchone() is not None:
                return True
            with conn.transaction():  # a LangChain collection, a LlamaIndex store, a table made with layout=native
                return frameworks.exists(self, conn, name)

    def _catalog_names(self, conn: psycopg.Connection) -> list[str]:
        q = sql.SQL("SELECT name FROM {} ORDER BY name").format(self._catalog)
        return [r[0] for r in conn.execute(q)]

    def _natives(self, conn: psycopg.Connection, own: Iterable[str]) -> list[tuple[str, str, str]]:
        """(schema, table, relkind) of the readable relations with a vector column, vecbridge's own left out."""
        mine = set(own)
        return [(s, t, k) for s, t, k in native.find(conn, self.vector_oid) if not (s == self.schema and t in mine)]

    def _list_collections(self) -> list[str]:
        with self._mapped_errors("list_collections"), self._connection() as conn:
            own = self._catalog_names(conn)
            found, rest = frameworks.listing(self, conn, self._natives(conn, own))
            return own + [name for name, _, _ in found] + [f"{s}.{t}" for s, t, _ in rest]

    def describe_collections(self) -> list[dict[str, Any]]:
        """Every collection: ``name``, ``layout`` (``vecbridge``, ``native``, ``langchain`` -- one
        per LangChain collection of the shared tables -- or ``llamaindex``) and ``error``, the
        reason one cannot be opened (``None`` when it can); listing never fails on one of them."""
        self._check_open()
        with self._mapped_errors("describe_collections"), self._connection() as conn:
            own = self._catalog_names(conn)
            out: list[dict[str, Any]] = [{"name": n, "layout": "vecbridge", "error": None} for n in own]
            found, rest = frameworks.listing(self, conn, self._natives(conn, own))
            openers = [(name, layout, opener) for name, layout, opener in found] + [
                (f"{s}.{t}", "native", lambda s=s, t=t, k=k: native.open_native(self, conn, s, t, k))
                for s, t, k in rest]
            for name, layout, opener in openers:
                entry: dict[str, Any] = {"name": name, "layout": layout, "error": None}
                try:
                    with conn.transaction():  # a failed look-up leaves the connection usable
                        opener()
                except VecbridgeError as exc:
                    entry["error"] = str(exc)
                except psycopg.Error as exc:
                    entry["error"] = f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"
                out.append(entry)
        return sorted(out, key=lambda e: e["name"])

    def _get_collection(self, name: str) -> PgvectorCollection | None:
        if not _holdable(name):
            return None
        with self._mapped_errors("get_collection"), self._connection() as conn:
            q = sql.SQL("SELECT dimension, metric, index FROM {} WHERE name = %s").format(self._catalog)
            row = conn.execute(q, (name,)).fetchone()
            if row is None and self.mapping_options.get("layout") != "native":
                with conn.transaction():  # a LangChain collection, a LlamaIndex store
                    framework = frameworks.find(self, conn, name)
                if framework is not None:
                    return framework
            if row is None:  # a table vecbridge did not create: schema.table, or a table of ?schema=
                found = self._natives(conn, self._catalog_names(conn))
                hit = next(((s, t, k) for s, t, k in found if f"{s}.{t}" == name), None) or \
                    next(((s, t, k) for s, t, k in found if s == self.schema and t == name), None)
                if hit is None:
                    return None
                with conn.transaction():
                    return native.open_native(self, conn, *hit)
        return PgvectorCollection(self, name, int(row[0]), str(row[1]), dict(row[2]))

    def _create_collection(self, name: str, dimension: int, metric: str, index: dict[str, Any]) -> PgvectorCollection:
        if index["type"] != "default" and index["type"] != "flat" and dimension > ddl.MAX_INDEX_DIMENSION:
            raise UnsupportedFeatureError(
                f"pgvector's {index['type']} index takes at most {ddl.MAX_INDEX_DIMENSION} dimensions, not "
                f"{dimension}; use index={{'type': 'flat'}} (exact search)")
        if self.pgvector_version < (0, 5):  # HNSW came with pgvector 0.5.0
            if index["type"] == "hnsw":
                raise UnsupportedFeatureError(
                    f"pgvector {'.'.join(map(str, self.pgvector_version))} on this server has no HNSW index "
                    "(0.5.0 or later has); use {'type': 'ivf'} or {'type': 'flat'}")
            if index["type"] == "default":
                index = {"type": "ivf"}
        layout = self.mapping_options.get("layout") or "vecbridge"
        if layout != "vecbridge":  # the natural schema, or a framework's tables (.created, .frameworks)
            with self._mapped_errors(f"create_collection {name!r}"):
                return frameworks.create(self, layout, name, dimension, metric, index)
        spec = ddl.resolve_index(index, dimension)
        table = self._table(name)
        with self._mapped_errors(f"create_collection {name!r}"), self._connection() as conn:
            try:
                with conn.transaction():
                    added = conn.execute(
                        sql.SQL("INSERT INTO {} (name, dimension, metric, index) VALUES (%s, %s, %s, %s::jsonb) "
                                "ON CONFLICT (name) DO NOTHING").format(self._catalog),
                        (name, dimension, metric, dump_json(spec))).rowcount
                    if not added:
                        raise CollectionExistsError(f"collection {name!r} exists already on pgvector")
                    conn.execute(ddl.table_sql(table, self.ext_schema, dimension))
                    vec_index = ddl.vector_index_sql(table, self.ext_schema, metric, spec)
                    if vec_index is not None:
                        conn.execute(vec_index)
                    conn.execute(ddl.gin_index_sql(table))
            except pg_errors.DuplicateTable as exc:
                raise BackendError(
                    f"pgvector: a table named {name!r} exists already in schema {self.schema!r} and is not a "
                    "vecbridge collection; choose another name or another schema (?schema=…)") from exc
        return PgvectorCollection(self, name, dimension, metric, spec)

    def _read_config(self, name: str) -> dict[str, Any] | None:
        # to_jsonb of the row: a catalog made before the config column existed reads as NULL
        q = sql.SQL("SELECT to_jsonb(c) -> 'config' FROM {} c WHERE name = %s").format(self._catalog)
        with self._mapped_errors(f"reading the configuration of {name!r}"), self._connection() as conn:
            row = conn.execute(q, (name,)).fetchone()
        return None if row is None or row[0] is None else dict(row[0])

    def _write_config(self, name: str, doc: dict[str, Any]) -> None:
        update = sql.SQL("UPDATE {} SET config = %s::jsonb WHERE name = %s").format(self._catalog)
        params = (dump_json(doc), name)
        with self._mapped_errors(f"storing the configuration of {name!r}"), self._connection() as conn, \
                conn.transaction():
            try:
                with conn.transaction():  # a savepoint: an old catalog lacks the column
                    found = conn.execute(update, params).rowcount
            except pg_errors.UndefinedColumn:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK,))
                conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS config jsonb").format(self._catalog))
                found = conn.execute(update, params).rowcount
        if not found:
            raise CollectionNotFoundError(f"no collection named {name!r} on pgvector ({self.url}): it was deleted")

    def _delete_collection(self, name: str) -> None:
        with self._mapped_errors(f"delete_collection {name!r}"), self._connection() as conn, \
                conn.transaction():
            gone = conn.execute(sql.SQL("DELETE FROM {} WHERE name = %s").format(self._catalog), (name,)).rowcount
            if gone:
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._table(name)))
            else:
                frameworks.drop(self, conn, name)
