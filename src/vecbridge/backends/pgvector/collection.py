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

Every hook is a *program* (:mod:`.ops`): a generator of the statements it needs, run on a
pooled connection by :func:`.ops.run_sync` here and by :func:`.ops.run_async` in
:mod:`.aio`, so the SQL and the conversion of rows exist once for both worlds.  The key,
vector, row and filter pieces are methods that :class:`.native.NativeCollection` overrides
to read and write a table vecbridge did not create.

Partitions (``partitions(n)``) are ranges of the key: split points sampled with
``percentile_disc`` (over ``TABLESAMPLE SYSTEM`` when the table is large), each range read
by the same keyset scan as ``scan``, so together they return every record exactly once.

The collection's configuration document (:meth:`BaseCollection.set_config`) is the
catalog row's ``config`` jsonb; a catalog made before that column existed is read as
having none and gets the column on the first write.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from psycopg import errors as pg_errors
from psycopg import sql

from ...base import BaseCollection, RawHit
from ...errors import DuplicateIdError, RecordNotFoundError, VecbridgeError
from ...filters import Node
from ...types import Partition, Record
from ...validation import Batch
from . import ddl
from .codec import copy_chunks, vector_param
from .ops import Copy, Each, Exec, Program, Setting, Transaction, run_sync
from .translator import compile_filter

if TYPE_CHECKING:
    from .client import PgvectorClient

#: A write of at least this many rows into an HNSW-indexed table that it (at least) doubles
#: rebuilds the index after the load instead of inserting into the graph row by row.  The
#: ACCESS EXCLUSIVE lock this takes (readers of the collection wait for the load) is why
#: only a load that doubles the table does it: a young table, not one in steady service.
BULK_REBUILD_MIN = 1_000
_STAGE = "pg_temp._vb_stage"
#: Above this many rows (the planner's estimate) partitions sample the table's blocks
#: instead of sorting every key; the sample holds about this many keys per partition.
SAMPLE_ABOVE = 200_000
SAMPLE_PER_PARTITION = 2_000


def _records(rows: Sequence[tuple[Any, ...]]) -> list[Record]:
    return [Record(*r) for r in rows]


def next_after(page: list[Record], batch_size: int) -> str | None:
    """The id a keyset scan continues after, or ``None`` when ``page`` was the last one."""
    return page[-1].id if len(page) == batch_size else None


class PgvectorCollection(BaseCollection):
    """One collection: a table ``(id, embedding, metadata, document)`` in the client's schema."""

    # <=> is 1 - cos, <#> is -dot, <-> the l2 distance.
    native_scores: ClassVar[Mapping[str, str]] = {"cosine": "one_minus_similarity", "l2": "distance", "ip": "neg_similarity"}
    # _exact_query runs the same operators without the index: the same kind of number.
    exact_scores: ClassVar[Mapping[str, str]] = native_scores

    def __init__(self, client: PgvectorClient, name: str, dimension: int, metric: str, index: dict[str, Any],
                 table: sql.Identifier | None = None):
        super().__init__(client, name, dimension, metric, index)
        self._pg = client
        self._ident = table if table is not None else sql.Identifier(client.schema, name)
        # The SQL below is plain text with %s placeholders; '%' inside a quoted name must be doubled.
        self._t = self._ident.as_string(None).replace("%", "%%")
        #: the table written (``_t`` is what reads select from: a LangChain collection's rows of
        #: the shared table, :mod:`.frameworks`)
        self._w = self._t
        self._key = "id"
        self._vec = "embedding"
        self._dist = self._distance_sql()
        self._kind = self.index.get("type", "flat")
        self._ann = self._kind in ("hnsw", "ivf")
        self._sql_cache: dict[Any, str] = {}
        self._settings: dict[int, tuple[str, str] | None] = {}

    def _distance_sql(self) -> str:
        ext = sql.Identifier(self._pg.ext_schema).as_string(None).replace("%", "%%")
        return f"{self._vec} OPERATOR({ext}.{ddl.OPERATORS[self.metric]}) %b"

    # -- running programs ------------------------------------------------------------------
    def _io(self, action: str, prog: Program) -> Any:
        """Run ``prog`` on a pooled connection; errors through the backend's table."""
        client = self._pg
        try:
            conn = client._borrow()
            try:
                return run_sync(conn, self._guarded(prog))
            finally:
                client._give_back(conn)
        except VecbridgeError:
            raise
        except Exception:
            # The hot path avoids the context manager's cost; errors still go through it.
            with self._mapped_errors(action):
                raise
        raise AssertionError("unreachable")

    def _guarded(self, prog: Program) -> Program:
        """``prog`` as every hook runs it, sync or async (a native table still being laid out
        looks at its columns first: :mod:`.created`)."""
        return prog

    # -- the layout: what NativeCollection overrides -----------------------------------------
    def _cols(self, include: frozenset[str]) -> str:
        """Record columns in the order of :class:`Record` (id, vector, metadata, document)."""
        return ", ".join(["id", "embedding" if "vector" in include else "NULL",
                          "metadata" if "metadata" in include else "NULL",
                          "document" if "document" in include else "NULL"])

    def _hit_cols(self, include: frozenset[str]) -> str:
        """Columns in the order of :class:`RawHit` (id, value, metadata, document, vector)."""
        return ", ".join(["id", f"{self._dist} AS d", "metadata" if "metadata" in include else "NULL",
                          "document" if "document" in include else "NULL",
                          "embedding" if "vector" in include else "NULL"])

    def _to_records(self, rows: Sequence[tuple[Any, ...]]) -> list[Record]:
        return _records(rows)

    def _to_hits(self, rows: Sequence[tuple[Any, ...]]) -> list[RawHit]:
        make = RawHit._make
        return [make(r) for r in rows]

    def _cond(self, where: Node, params: list[Any]) -> str:
        return compile_filter(where, params)

    def _ids_cond(self, ids: list[str], params: list[Any]) -> str:
        params.append(ids)
        return "id = ANY(%s)"

    def _id_of(self, value: Any) -> str:
        """The record id of a key column's value."""
        return value  # type: ignore[no-any-return]

    def _key_param(self, id_: str) -> Any:
        """A record id as the key column's value (keyset scans, partition bounds)."""
        return id_

    #: a condition every statement on the table keeps to (a LangChain collection's rows: .frameworks)
    _scope: str | None = None

    def _where(self, where: Node | None, params: list[Any], ids: list[str] | None = None) -> str:
        conds = [self._scope] if self._scope else []
        if ids is not None:
            conds.append(self._ids_cond(ids, params))
        if where is not None:
            conds.append(self._cond(where, params))
        return " WHERE " + " AND ".join(conds) if conds else ""

    def _hit_sql(self, include: frozenset[str], k: int, cond: str | None, exact: bool) -> str:
        key = (include, k, cond, exact)
        text = self._sql_cache.get(key)
        if text is None:
            cols = self._hit_cols(include)
            where = f" WHERE {cond}" if cond else ""
            if exact:  # OFFSET 0 keeps the ORDER BY out of the index: a full scan with a top-k sort
                text = f"SELECT * FROM (SELECT {cols} FROM {self._t}{where} OFFSET 0) s ORDER BY d LIMIT {int(k)}"
            else:
                text = f"SELECT {cols} FROM {self._t}{where} ORDER BY d LIMIT {int(k)}"
            if len(self._sql_cache) > 256:
                self._sql_cache.clear()
            self._sql_cache[key] = text
        return text

    # -- write programs ------------------------------------------------------------------------
    def _copy(self, target: str, b: Batch) -> Copy:
        names = ["id"] + [c for c, v in (("embedding", b.vectors), ("metadata", b.metadatas),
                                          ("document", b.documents)) if v is not None]
        return Copy(f"COPY {target} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)",
                    copy_chunks(b.ids, b.vectors, b.metadatas, b.documents))

    def _p_bulk_begin(self, n: int) -> Program:
        """Drop the ANN index before a load that (at least) doubles the table; True if dropped."""
        # HNSW: worth it from 1k rows (a build is ~5x faster than as many inserts).  IVFFlat:
        # its lists are k-means centres of the rows present when it is built (random ones on
        # an empty table), so train it on the first batch that has a row per list, and again
        # whenever the table doubles.
        minimum = BULK_REBUILD_MIN if self._kind == "hnsw" else int(self.index.get("nlist", 1))
        if not self._ann or n < minimum:
            return False
        count = Exec(f"SELECT count(*) FROM (SELECT 1 FROM {self._t} LIMIT %s) s", (n,), "one")
        if (yield count)[0] >= n:
            return False
        yield Exec(f"LOCK TABLE {self._w} IN ACCESS EXCLUSIVE MODE", fetch="rowcount")
        if (yield count)[0] >= n:
            return False  # another writer got there first
        names = yield Exec(ddl.FIND_VECTOR_INDEX, (self._pg.schema, self.name), binary=False)
        for (iname,) in names:
            yield Exec(sql.SQL("DROP INDEX {}").format(sql.Identifier(self._pg.schema, iname)), fetch="rowcount")
        return True

    def _p_bulk_end(self) -> Program:
        """Build the ANN index again, with enough memory for pgvector to build it in RAM."""
        stmt = ddl.vector_index_sql(self._ident, self._pg.ext_schema, self.metric, self.index)
        if stmt is None:
            return
        memory = self._pg._maintenance_work_mem
        if memory == "auto":
            rows = (yield Exec(f"SELECT count(*) FROM {self._t}", fetch="one"))[0]
            m = int(self.index.get("m", 16))
            # pgvector's graph: the vector, ~2m neighbour slots of 16 bytes on layer 0, element overhead.
            need_kb = rows * (4 * self.dimension + 64 * m + 256) // 1024 + 1024
            yield Exec("SELECT set_config('maintenance_work_mem', GREATEST(pg_size_bytes("
                       "current_setting('maintenance_work_mem')) / 1024, %s)::text || 'kB', true)", (need_kb,),
                       binary=False)
        else:
            yield Exec("SELECT set_config('maintenance_work_mem', %s, true)", (memory,), binary=False)
        try:
            yield Transaction(self._p_one(Exec(stmt, fetch="rowcount")))  # a savepoint
        except (pg_errors.DiskFull, pg_errors.OutOfMemory):
            # A parallel build puts the graph in shared memory, which may be small (Docker's
            # /dev/shm is 64 MB): build in this backend's own memory instead.
            yield Exec("SET LOCAL max_parallel_maintenance_workers = 0", fetch="rowcount")
            yield Exec(stmt, fetch="rowcount")

    @staticmethod
    def _p_one(op: Any) -> Program:
        return (yield op)

    def _p_insert(self, b: Batch, replace: bool) -> Program:
        """The rows of ``b`` written, inside the write's transaction."""
        rebuild = yield from self._p_bulk_begin(len(b.ids))
        if replace:
            yield self._copy(_STAGE, b)
            yield Exec(f"INSERT INTO {self._w} (id, embedding, metadata, document) "
                       f"SELECT id, embedding, metadata, document FROM {_STAGE} ON CONFLICT (id) DO UPDATE "
                       "SET embedding = EXCLUDED.embedding, metadata = EXCLUDED.metadata, "
                       "document = EXCLUDED.document", fetch="rowcount", binary=False)
        else:
            yield self._copy(self._w, b)
        if rebuild:
            yield from self._p_bulk_end()

    def _p_write(self, b: Batch, replace: bool) -> Program:
        try:
            yield Transaction(self._p_insert(b, replace))
        except pg_errors.UniqueViolation as exc:
            if replace:
                raise
            existing = yield from self._p_existing(b.ids)
            raise DuplicateIdError(self._duplicate_message(existing or ["?"])) from exc

    def _p_update_rows(self, b: Batch) -> Program:
        """Set the given fields of the (locked, existing) rows of ``b``."""
        sets = [f"{c} = s.{c}" for c, v in (("embedding", b.vectors), ("metadata", b.metadatas),
                                             ("document", b.documents)) if v is not None]
        if not sets:
            return
        yield self._copy(_STAGE, b)
        # The staging table has no statistics: keep the planner on the primary key.
        yield Exec("SET LOCAL enable_hashjoin = off", fetch="rowcount")
        yield Exec("SET LOCAL enable_mergejoin = off", fetch="rowcount")
        yield Exec(f"UPDATE {self._w} t SET {', '.join(sets)} FROM {_STAGE} s WHERE t.id = s.id", fetch="rowcount")

    def _p_update_tx(self, b: Batch) -> Program:
        # Lock the rows first: a concurrent delete cannot slip in between check and write.
        params: list[Any] = []
        cond = self._ids_cond(b.ids, params)
        rows = yield Exec(f"SELECT {self._key} FROM {self._t} WHERE {cond} FOR UPDATE", params)
        found = {self._id_of(r[0]) for r in rows}
        missing = [i for i in b.ids if i not in found]
        if missing:
            shown = ", ".join(repr(i) for i in missing[:5])
            raise RecordNotFoundError(f"{len(missing)} id(s) do not exist in {self.name!r}: {shown}; nothing was written")
        yield from self._p_update_rows(b)

    def _p_update(self, b: Batch) -> Program:
        """Replace only the given fields, in one transaction; a missing id writes nothing."""
        return (yield Transaction(self._p_update_tx(b)))

    def _p_delete(self, ids: list[str] | None, where: Node | None) -> Program:
        params: list[Any] = []
        yield Exec(f"DELETE FROM {self._w}{self._where(where, params, ids)}", params, "rowcount")

    # -- read programs ---------------------------------------------------------------------------
    def _p_existing(self, ids: list[str]) -> Program:
        params: list[Any] = []
        rows = yield Exec(f"SELECT {self._cols(frozenset())} FROM {self._t} WHERE {self._ids_cond(ids, params)}",
                          params)
        return [r.id for r in self._to_records(rows)]

    def _p_count(self, where: Node | None) -> Program:
        params: list[Any] = []
        row = yield Exec(f"SELECT count(*) FROM {self._t}{self._where(where, params)}", params, "one")
        return int(row[0])

    def _p_select(self, q: str, params: Sequence[Any]) -> Program:
        return self._to_records((yield Exec(q, params)))

    def _p_get_ids(self, ids: list[str], where: Node | None, include: frozenset[str]) -> Program:
        params: list[Any] = []
        return (yield from self._p_select(
            f"SELECT {self._cols(include)} FROM {self._t}{self._where(where, params, ids)}", params))

    def _p_get_page(self, where: Node | None, limit: int | None, offset: int, include: frozenset[str]) -> Program:
        params: list[Any] = []
        q = (f"SELECT {self._cols(include)} FROM {self._t}{self._where(where, params)} "
             f"ORDER BY {self._key} LIMIT %s OFFSET %s")
        return (yield from self._p_select(q, [*params, limit, offset]))

    def _p_scan_page(self, batch_size: int, include: frozenset[str], after: str | None,
                     partition: Partition | None = None) -> Program:
        """One page of a keyset scan on the key: ``after`` the last id of the page before."""
        conds, params = [], []
        lower, upper = (partition.lower, partition.upper) if partition is not None else (None, None)
        for bound, op in ((lower, ">="), (upper, "<"), (after, ">")):
            if bound is not None:
                conds.append(f"{self._key} {op} %s")
                params.append(self._key_param(bound))
        where = " WHERE " + " AND ".join(conds) if conds else ""
        q = f"SELECT {self._cols(include)} FROM {self._t}{where} ORDER BY {self._key} LIMIT %s"
        return (yield from self._p_select(q, [*params, batch_size]))

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

    def _p_search(self, vectors: np.ndarray, k: int, where: Node | None, include: frozenset[str],
                  exact: bool) -> Program:
        """``ORDER BY distance LIMIT k`` once per query vector, on one connection (pipelined for a batch)."""
        fparams: list[Any] = []
        cond = self._cond(where, fparams) if where is not None else None
        q = self._hit_sql(include, k, cond, exact)
        setting = None if exact else self._setting(k)
        if setting is not None:
            yield Setting(*setting)
        rows = yield Each(q, [[vector_param(v), *fparams] for v in vectors])
        return [self._to_hits(rs) for rs in rows]

    def _sampled(self, sample: str) -> str:
        """The FROM clause of the partitions' quantiles (a TABLESAMPLE applies to a table only)."""
        return f"{self._t}{sample}"

    def _p_partitions(self, n: int) -> Program:
        """Split points of the key: ``n - 1`` sampled quantiles, repeats removed."""
        extra = {"key": self._key}
        if n == 1:
            return [Partition(self.name, 0, 1, "range", extra=extra)]
        row = yield Exec("SELECT c.reltuples, c.relkind FROM pg_class c WHERE c.oid = %s::regclass",
                         (self._w.replace("%%", "%"),), "one", binary=False)
        sample = ""
        if row is not None and row[1] in ("r", "m") and row[0] > SAMPLE_ABOVE:
            percent = min(100.0, 100.0 * SAMPLE_PER_PARTITION * n / float(row[0]))
            sample = f" TABLESAMPLE SYSTEM ({percent:.6f})"
        fractions = [i / n for i in range(1, n)]
        got = yield Exec(f"SELECT percentile_disc(%s::float8[]) WITHIN GROUP (ORDER BY {self._key}) "
                         f"FROM {self._sampled(sample)}", (fractions,), "one")
        points: list[str] = []
        for value in (got[0] if got is not None and got[0] is not None else []):
            if value is None:
                continue
            point = self._id_of(value)
            if not points or point != points[-1]:
                points.append(point)
        bounds = [None, *points, None]
        count = len(bounds) - 1
        return [Partition(self.name, i, count, "range", bounds[i], bounds[i + 1], dict(extra)) for i in range(count)]

    # -- the sync hooks ---------------------------------------------------------------------------
    def _upsert(self, b: Batch) -> None:
        self._io("upsert", self._p_write(b, replace=True))

    def _add(self, b: Batch) -> None:
        self._io("add", self._p_write(b, replace=False))

    def _update(self, b: Batch) -> None:
        self._io("update", self._p_update(b))

    def _delete(self, ids: list[str] | None, where: Node | None) -> None:
        self._io("delete", self._p_delete(ids, where))

    def _existing_ids(self, ids: list[str]) -> list[str]:
        return self._io("get", self._p_existing(ids))  # type: ignore[no-any-return]

    def _count(self, where: Node | None) -> int:
        return self._io("count", self._p_count(where))  # type: ignore[no-any-return]

    def _get_ids(self, ids: list[str], where: Node | None, include: frozenset[str]) -> list[Record]:
        return self._io("get", self._p_get_ids(ids, where, include))  # type: ignore[no-any-return]

    def _get_page(self, where: Node | None, limit: int | None, offset: int, include: frozenset[str]) -> list[Record]:
        return self._io("get", self._p_get_page(where, limit, offset, include))  # type: ignore[no-any-return]

    def _scan(self, batch_size: int, include: frozenset[str]) -> Iterator[list[Record]]:
        return self._scan_range(batch_size, include, None)

    def _scan_range(self, batch_size: int, include: frozenset[str], partition: Partition | None
                    ) -> Iterator[list[Record]]:
        # Keyset pagination on the primary key: each page is one indexed range read.
        after: str | None = None
        while True:
            page = self._io("scan", self._p_scan_page(batch_size, include, after, partition))
            if page:
                yield page
            after = next_after(page, batch_size)
            if after is None:
                return

    def _partitions(self, n: int) -> list[Partition]:
        return self._io("partitions", self._p_partitions(n))  # type: ignore[no-any-return]

    def _scan_partition(self, batch_size: int, include: frozenset[str], partition: Partition
                        ) -> Iterator[list[Record]]:
        if partition.kind != "range":
            return super()._scan_partition(batch_size, include, partition)
        if partition.extra.get("key") != self._key:
            raise ValueError(f"the partition splits {self.name!r} by {partition.extra.get('key')!r}, not by its key "
                             f"{self._key!r}: make partitions with this collection's partitions(n)")
        return self._scan_range(batch_size, include, partition)

    def _query(self, vectors: np.ndarray, k: int, where: Node | None, include: frozenset[str]) -> list[list[RawHit]]:
        return self._io("query", self._p_search(vectors, k, where, include, exact=False))  # type: ignore[no-any-return]

    def _exact_query(self, vectors: np.ndarray, k: int, where: Node | None,
                     include: frozenset[str]) -> list[list[RawHit]]:
        """Exact top-k inside the database: the filter's matches scanned and sorted, no index."""
        return self._io("query", self._p_search(vectors, k, where, include, exact=True))  # type: ignore[no-any-return]

    # -- configuration ------------------------------------------------------------------
    def _read_config(self) -> dict[str, Any] | None:
        return self._pg._read_config(self.name)

    def _write_config(self, doc: dict[str, Any]) -> None:
        self._pg._write_config(self.name, doc)
