"""A pgvector collection: one table, read and written through the client's connection pool.

Writes are one transaction each.  Vectors, metadata and documents travel by binary
``COPY``: ``add`` copies straight into the table, so an id that exists already fails
the whole COPY (unique violation -> :class:`DuplicateIdError`, nothing written);
``upsert`` copies into a per-connection temporary staging table, then runs one
``INSERT … SELECT … ON CONFLICT (id) DO UPDATE``.  A bulk load that at least doubles an
indexed table drops the ANN index and builds it again after the load, in the same
transaction: pgvector builds a graph far faster than it inserts into one.

Queries: ``ORDER BY embedding <op> $1 LIMIT k`` with pgvector 0.8's iterative index
scans on (``relaxed_order``), so a filtered HNSW/IVFFlat search keeps scanning until it
has k matches.  When an ANN search still comes back short (its scan limit,
``hnsw.max_scan_tuples`` or ``ivfflat.max_probes``, was reached), the core's exact top-k
rule asks :meth:`PgvectorCollection._exact_query`, which runs the same statement inside
the database with the index kept out (``OFFSET 0`` in a subquery: a scan of the filter's
matches and a top-k sort), so its numbers are of the same kind as the ANN search's.

The collection's configuration document (:meth:`BaseCollection.set_config`) is the
catalog row's ``config`` jsonb; a catalog made before that column existed is read as
having none and gets the column on the first write.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import psycopg
from psycopg import errors as pg_errors
from psycopg import sql

from ...base import BaseCollection, RawHit
from ...errors import DuplicateIdError, RecordNotFoundError, VecbridgeError
from ...filters import Node
from ...types import Record
from ...validation import Batch
from . import ddl
from .codec import copy_chunks, vector_param
from .translator import compile_filter

if TYPE_CHECKING:
    from .client import PgvectorClient

#: A write of at least this many rows into an HNSW-indexed table that it (at least) doubles
#: rebuilds the index after the load instead of inserting into the graph row by row.  The
#: ACCESS EXCLUSIVE lock this takes (readers of the collection wait for the load) is why
#: only a load that doubles the table does it: a young table, not one in steady service.
BULK_REBUILD_MIN = 1_000
_STAGE = "pg_temp._vb_stage"


def _records(rows: Sequence[tuple[Any, ...]]) -> list[Record]:
    return [Record(*r) for r in rows]


def _cursor(conn: psycopg.Connection) -> psycopg.Cursor:
    """The connection's binary cursor, kept with it: a new cursor would look up its adapters again."""
    cur = conn.__dict__.get("_vb_cursor")
    if cur is None:
        cur = conn.__dict__["_vb_cursor"] = conn.cursor(binary=True)
    return cur  # type: ignore[no-any-return]


class PgvectorCollection(BaseCollection):
    """One collection: a table ``(id, embedding, metadata, document)`` in the client's schema."""

    # <=> is 1 - cos, <#> is -dot, <-> the l2 distance.
    native_scores: ClassVar[Mapping[str, str]] = {"cosine": "one_minus_similarity", "l2": "distance", "ip": "neg_similarity"}
    # _exact_query runs the same operators without the index: the same kind of number.
    exact_scores: ClassVar[Mapping[str, str]] = native_scores

    def __init__(self, client: PgvectorClient, name: str, dimension: int, metric: str, index: dict[str, Any]):
        super().__init__(client, name, dimension, metric, index)
        self._pg = client
        self._ident = sql.Identifier(client.schema, name)
        # The SQL below is plain text with %s placeholders; '%' inside the quoted name must be doubled.
        self._t = self._ident.as_string(None).replace("%", "%%")
        ext = sql.Identifier(client.ext_schema).as_string(None).replace("%", "%%")
        self._dist = f"embedding OPERATOR({ext}.{ddl.OPERATORS[metric]}) %b"
        self._kind = self.index.get("type", "flat")
        self._ann = self._kind in ("hnsw", "ivf")
        self._sql_cache: dict[Any, str] = {}
        self._settings: dict[int, tuple[str, str] | None] = {}

    # -- SQL text ------------------------------------------------------------------------
    @staticmethod
    def _cols(include: frozenset[str]) -> str:
        """Record columns in the order of :class:`Record` (id, vector, metadata, document)."""
        return ", ".join(["id", "embedding" if "vector" in include else "NULL",
                          "metadata" if "metadata" in include else "NULL",
                          "document" if "document" in include else "NULL"])

    def _hit_sql(self, include: frozenset[str], k: int, cond: str | None, exact: bool) -> str:
        """Columns in the order of :class:`RawHit` (id, value, metadata, document, vector)."""
        key = (include, k, cond, exact)
        text = self._sql_cache.get(key)
        if text is None:
            cols = ", ".join(["id", f"{self._dist} AS d", "metadata" if "metadata" in include else "NULL",
                              "document" if "document" in include else "NULL",
                              "embedding" if "vector" in include else "NULL"])
            where = f" WHERE {cond}" if cond else ""
            if exact:  # OFFSET 0 keeps the ORDER BY out of the index: a full scan with a top-k sort
                text = f"SELECT * FROM (SELECT {cols} FROM {self._t}{where} OFFSET 0) s ORDER BY d LIMIT {int(k)}"
            else:
                text = f"SELECT {cols} FROM {self._t}{where} ORDER BY d LIMIT {int(k)}"
            if len(self._sql_cache) > 256:
                self._sql_cache.clear()
            self._sql_cache[key] = text
        return text

    def _where(self, where: Node | None, params: list[Any], ids: list[str] | None = None) -> str:
        conds = []
        if ids is not None:
            conds.append("id = ANY(%s)")
            params.append(ids)
        if where is not None:
            conds.append(compile_filter(where, params))
        return " WHERE " + " AND ".join(conds) if conds else ""

    # -- writes ------------------------------------------------------------------------------
    def _copy(self, cur: psycopg.Cursor, target: str, b: Batch) -> None:
        names = ["id"] + [c for c, v in (("embedding", b.vectors), ("metadata", b.metadatas),
                                          ("document", b.documents)) if v is not None]
        with cur.copy(f"COPY {target} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)") as cp:
            for block in copy_chunks(b.ids, b.vectors, b.metadatas, b.documents):
                cp.write(block)

    def _bulk_begin(self, conn: psycopg.Connection, n: int) -> bool:
        """Drop the ANN index before a load that (at least) doubles the table; True if dropped."""
        # HNSW: worth it from 1k rows (a build is ~5x faster than as many inserts).  IVFFlat:
        # its lists are k-means centres of the rows present when it is built (random ones on
        # an empty table), so train it on the first batch that has a row per list, and again
        # whenever the table doubles.
        minimum = BULK_REBUILD_MIN if self._kind == "hnsw" else int(self.index.get("nlist", 1))
        if not self._ann or n < minimum:
            return False
        count = f"SELECT count(*) FROM (SELECT 1 FROM {self._t} LIMIT %s) s"
        if conn.execute(count, (n,)).fetchone()[0] >= n:  # type: ignore[index]
            return False
        conn.execute(f"LOCK TABLE {self._t} IN ACCESS EXCLUSIVE MODE")
        if conn.execute(count, (n,)).fetchone()[0] >= n:  # type: ignore[index]
            return False  # another writer got there first
        names = conn.execute(ddl.FIND_VECTOR_INDEX, (self._pg.schema, self.name)).fetchall()
        for (iname,) in names:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(self._pg.schema, iname)))
        return True

    def _bulk_end(self, conn: psycopg.Connection) -> None:
        """Build the ANN index again, with enough memory for pgvector to build it in RAM."""
        stmt = ddl.vector_index_sql(self._ident, self._pg.ext_schema, self.metric, self.index)
        if stmt is None:
            return
        memory = self._pg._maintenance_work_mem
        if memory == "auto":
            rows = conn.execute(f"SELECT count(*) FROM {self._t}").fetchone()[0]  # type: ignore[index]
            m = int(self.index.get("m", 16))
            # pgvector's graph: the vector, ~2m neighbour slots of 16 bytes on layer 0, element overhead.
            need_kb = rows * (4 * self.dimension + 64 * m + 256) // 1024 + 1024
            conn.execute("SELECT set_config('maintenance_work_mem', GREATEST(pg_size_bytes("
                         "current_setting('maintenance_work_mem')) / 1024, %s)::text || 'kB', true)", (need_kb,))
        else:
            conn.execute("SELECT set_config('maintenance_work_mem', %s, true)", (memory,))
        try:
            with conn.transaction():  # a savepoint
                conn.execute(stmt)
        except (pg_errors.DiskFull, pg_errors.OutOfMemory):
            # A parallel build puts the graph in shared memory, which may be small (Docker's
            # /dev/shm is 64 MB): build in this backend's own memory instead.
            conn.execute("SET LOCAL max_parallel_maintenance_workers = 0")
            conn.execute(stmt)

    def _write(self, b: Batch, replace: bool) -> None:
        action = "upsert" if replace else "add"
        with self._mapped_errors(action), self._pg._connection() as conn:
            try:
                with conn.transaction():
                    rebuild = self._bulk_begin(conn, len(b.ids))
                    cur = conn.cursor()
                    if replace:
                        self._copy(cur, _STAGE, b)
                        cur.execute(
                            f"INSERT INTO {self._t} (id, embedding, metadata, document) "
                            f"SELECT id, embedding, metadata, document FROM {_STAGE} ON CONFLICT (id) DO UPDATE "
                            "SET embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata, "
                            "document = EXCLUDED.document")
                    else:
                        self._copy(cur, self._t, b)
                    if rebuild:
                        self._bulk_end(conn)
            except pg_errors.UniqueViolation as exc:
                if replace:
                    raise
                existing = self._ids_present(conn, b.ids)
                raise DuplicateIdError(self._duplicate_message(existing or ["?"])) from exc

    def _upsert(self, b: Batch) -> None:
        self._write(b, replace=True)

    def _add(self, b: Batch) -> None:
        self._write(b, replace=False)

    def _update(self, b: Batch) -> None:
        """Replace only the given fields, in one transaction; a missing id writes nothing."""
        sets = [f"{c} = s.{c}" for c, v in (("embedding", b.vectors), ("metadata", b.metadatas),
                                             ("document", b.documents)) if v is not None]
        with self._mapped_errors("update"), self._pg._connection() as conn, conn.transaction():
            # Lock the rows first: a concurrent delete cannot slip in between check and write.
            found = {r[0] for r in conn.execute(f"SELECT id FROM {self._t} WHERE id = ANY(%s) FOR UPDATE",
                                                (b.ids,))}
            missing = [i for i in b.ids if i not in found]
            if missing:
                shown = ", ".join(repr(i) for i in missing[:5])
                raise RecordNotFoundError(
                    f"{len(missing)} id(s) do not exist in {self.name!r}: {shown}; nothing was written")
            if not sets:
                return
            cur = conn.cursor()
            self._copy(cur, _STAGE, b)
            # The staging table has no statistics: keep the planner on the primary key.
            cur.execute("SET LOCAL enable_hashjoin = off")
            cur.execute("SET LOCAL enable_mergejoin = off")
            cur.execute(f"UPDATE {self._t} t SET {', '.join(sets)} FROM {_STAGE} s WHERE t.id = s.id")

    def _delete(self, ids: list[str] | None, where: Node | None) -> None:
        params: list[Any] = []
        q = f"DELETE FROM {self._t}{self._where(where, params, ids)}"
        with self._mapped_errors("delete"), self._pg._connection() as conn:
            conn.execute(q, params)

    # -- reads ---------------------------------------------------------------------------
    def _ids_present(self, conn: psycopg.Connection, ids: list[str]) -> list[str]:
        return [r[0] for r in conn.execute(f"SELECT id FROM {self._t} WHERE id = ANY(%s)", (ids,))]

    def _existing_ids(self, ids: list[str]) -> list[str]:
        with self._mapped_errors("get"), self._pg._connection() as conn:
            return self._ids_present(conn, ids)

    def _count(self, where: Node | None) -> int:
        params: list[Any] = []
        q = f"SELECT count(*) FROM {self._t}{self._where(where, params)}"
        with self._mapped_errors("count"), self._pg._connection() as conn:
            return int(conn.execute(q, params).fetchone()[0])  # type: ignore[index]

    def _select(self, q: str, params: Sequence[Any]) -> list[Record]:
        with self._mapped_errors("get"), self._pg._connection() as conn:
            return _records(_cursor(conn).execute(q, params).fetchall())

    def _get_ids(self, ids: list[str], where: Node | None, include: frozenset[str]) -> list[Record]:
        params: list[Any] = []
        return self._select(f"SELECT {self._cols(include)} FROM {self._t}{self._where(where, params, ids)}", params)

    def _get_page(self, where: Node | None, limit: int | None, offset: int, include: frozenset[str]) -> list[Record]:
        params: list[Any] = []
        q = f"SELECT {self._cols(include)} FROM {self._t}{self._where(where, params)} ORDER BY id LIMIT %s OFFSET %s"
        return self._select(q, [*params, limit, offset])

    def _scan(self, batch_size: int, include: frozenset[str]) -> Iterator[list[Record]]:
        # Keyset pagination on the primary key: each page is one indexed range read.
        first = f"SELECT {self._cols(include)} FROM {self._t} ORDER BY id LIMIT %s"
        after = f"SELECT {self._cols(include)} FROM {self._t} WHERE id > %s ORDER BY id LIMIT %s"
        page = self._select(first, [batch_size])
        while page:
            yield page
            if len(page) < batch_size:
                return
            page = self._select(after, [page[-1].id, batch_size])

    def _setting(self, k: int) -> tuple[str, str] | None:
        """The search-width setting (name, value) a k-NN query of this index needs."""
        setting = self._settings.get(k)
        if setting is None and k not in self._settings:
            if self._kind == "hnsw":  # ef_search below k would cut the result short; pgvector's maximum is 1000
                setting = ("hnsw.ef_search", str(min(1000, max(int(self.index["ef_search"]), k))))
            elif self._kind == "ivf":
                setting = ("ivfflat.probes", str(int(self.index["nprobe"])))
            self._settings[k] = setting
        return setting

    def _run(self, q: str, vectors: np.ndarray, fparams: list[Any], setting: tuple[str, str] | None
             ) -> list[list[RawHit]]:
        """``q`` once per query vector, on one connection (pipelined for a batch)."""
        client = self._pg
        try:
            conn = client._borrow()
            try:
                # Session settings are kept per connection (in its __dict__) and sent only on change.
                if setting is not None and conn.__dict__.get(setting[0]) != setting[1]:
                    conn.execute("SELECT set_config(%s, %s, false)", setting)
                    conn.__dict__[setting[0]] = setting[1]
                if len(vectors) == 1:
                    rows = [_cursor(conn).execute(q, [vector_param(vectors[0]), *fparams]).fetchall()]
                else:
                    with conn.pipeline():
                        curs = [conn.cursor(binary=True).execute(q, [vector_param(v), *fparams]) for v in vectors]
                    rows = [c.fetchall() for c in curs]
            finally:
                client._give_back(conn)
        except VecbridgeError:
            raise
        except Exception:
            # The hot path avoids the context manager's cost; errors still go through it.
            with self._mapped_errors("query"):
                raise
        make = RawHit._make
        return [[make(r) for r in rs] for rs in rows]

    def _query(self, vectors: np.ndarray, k: int, where: Node | None, include: frozenset[str]) -> list[list[RawHit]]:
        fparams: list[Any] = []
        cond = compile_filter(where, fparams) if where is not None else None
        return self._run(self._hit_sql(include, k, cond, exact=False), vectors, fparams, self._setting(k))

    def _exact_query(self, vectors: np.ndarray, k: int, where: Node | None,
                     include: frozenset[str]) -> list[list[RawHit]]:
        """Exact top-k inside the database: the filter's matches scanned and sorted, no index."""
        fparams: list[Any] = []
        cond = compile_filter(where, fparams) if where is not None else None
        return self._run(self._hit_sql(include, k, cond, exact=True), vectors, fparams, None)

    # -- configuration ------------------------------------------------------------------
    def _read_config(self) -> dict[str, Any] | None:
        return self._pg._read_config(self.name)

    def _write_config(self, doc: dict[str, Any]) -> None:
        self._pg._write_config(self.name, doc)
