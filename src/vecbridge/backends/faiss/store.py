"""The record store beside a FAISS index: SQLite holds ids, vectors, metadata, documents.

SQLite is the source of truth.  The FAISS index is derived from it and saved under
the generation number of the transaction it reflects (``index-<gen>.faiss``): a
process killed at any moment leaves either a matching index or none, and a missing
or stale index is caught up from SQLite when the collection is opened.

A row is never changed in place: an upsert or update deletes the row and inserts a new
one under a fresh ``rid`` (``AUTOINCREMENT`` never reuses one).  So a ``rid`` names one
immutable row for ever; that is what lets an index be caught up by comparing row ids
(:meth:`Store.live_rids`) and lets :class:`Store` cache the rows that queries return
without ever invalidating an entry (a deleted row is simply never asked for again).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from ...filters import Node
from ...types import Record
from .translator import compile_filter, meta_rows

SCHEMA = """
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    rid INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    vector BLOB NOT NULL,
    metadata TEXT NOT NULL,
    document TEXT
);
CREATE TABLE IF NOT EXISTS meta (rid INTEGER NOT NULL, key TEXT NOT NULL, is_list INTEGER NOT NULL,
                                 kind INTEGER NOT NULL, num, txt TEXT);
CREATE INDEX IF NOT EXISTS meta_rid ON meta (rid);
CREATE INDEX IF NOT EXISTS meta_key_num ON meta (key, num);
CREATE INDEX IF NOT EXISTS meta_key_txt ON meta (key, txt);
"""

CHUNK = 30000  # below SQLite's limit of 32766 bound parameters
#: Seconds a statement waits for another connection's write lock before SQLite gives up
#: with "database is locked" (a BackendLockedError, failures.py).
BUSY_TIMEOUT = 5.0


def _sqlite_max_length() -> int:
    """SQLite's largest string, BLOB and row in bytes (SQLITE_LIMIT_LENGTH; 10^9 unless the
    library was built otherwise; Python 3.10 cannot ask)."""
    which = getattr(sqlite3, "SQLITE_LIMIT_LENGTH", None)  # Python 3.11+
    conn = sqlite3.connect(":memory:")
    try:
        return int(conn.getlimit(which)) if which is not None else 1_000_000_000  # type: ignore[attr-defined]
    finally:
        conn.close()


#: A record is one row of ``records`` (id, vector, metadata JSON, document), and SQLite
#: refuses a row longer than SQLITE_LIMIT_LENGTH: the document gets half of it, the metadata
#: the other half less room for the largest id and vector (65,536 float32) and the header.
SQLITE_MAX_LENGTH = _sqlite_max_length()
MAX_DOCUMENT_BYTES = SQLITE_MAX_LENGTH // 2
MAX_METADATA_BYTES = SQLITE_MAX_LENGTH // 2 - (1 << 20)


def encode_metadata(metadata: dict[str, Any]) -> str:
    """The metadata as stored: JSON with non-ASCII characters escaped (so ASCII, one byte a
    character)."""
    return json.dumps(metadata)


def stored_metadata_bytes(metadata: dict[str, Any], document: str | None) -> int:
    """Bytes ``metadata`` takes in its row (``Capabilities.metadata_bytes``)."""
    return len(encode_metadata(metadata))
#: Rows (id, parsed metadata, document) kept in memory for query results.
ROW_CACHE_LIMIT = 100_000


def _chunks(seq: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(seq), size):
        yield seq[i:i + size]


class Store:
    """SQLite tables of one collection; every method runs under the collection's lock."""

    def __init__(self, path: str, dimension: int | None = None):
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT)
        if path != ":memory:":
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.executescript(SCHEMA)
        self.lock = threading.RLock()
        self.dimension = dimension
        # rid -> (id, metadata, metadata holds a list, document); valid for ever (module docstring)
        self._rows: OrderedDict[int, tuple[str, dict[str, Any], bool, str | None]] = OrderedDict()

    # -- info --------------------------------------------------------------------
    def get_info(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.conn.execute("SELECT key, value FROM info")}

    def set_info(self, **values: Any) -> None:
        self.conn.executemany("INSERT OR REPLACE INTO info (key, value) VALUES (?, ?)",
                              [(k, json.dumps(v)) for k, v in values.items()])

    def get_config(self) -> dict[str, Any]:
        """The collection's configuration document (the info key ``config``).  A collection
        made before that key existed kept its facts as the info keys ``dimension``,
        ``metric`` and ``index``: they are read instead."""
        info = self.get_info()
        doc = info.get("config")
        if isinstance(doc, dict):
            return doc
        return {k: info[k] for k in ("dimension", "metric", "index") if k in info}

    def set_config(self, doc: dict[str, Any]) -> None:
        self.set_info(config=doc)

    @property
    def generation(self) -> int:
        row = self.conn.execute("SELECT value FROM info WHERE key = 'generation'").fetchone()
        return int(json.loads(row[0])) if row else 0

    def data_version(self) -> int:
        """A number that changes whenever another connection (process or client) commits."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Run the reads inside as one read transaction (one consistent generation);
        inside a write transaction already, just run them."""
        if self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")

    def _bump(self) -> int:
        gen = self.generation + 1
        self.set_info(generation=gen)
        return gen

    # -- writes ------------------------------------------------------------------
    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def commit(self) -> int:
        gen = self._bump()
        self.conn.execute("COMMIT")
        return gen

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def existing(self, ids: Sequence[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for chunk in _chunks(ids):
            q = f"SELECT id, rid FROM records WHERE id IN ({','.join('?' * len(chunk))})"
            out.update(self.conn.execute(q, list(chunk)))
        return out

    def delete_rids(self, rids: Sequence[int]) -> None:
        for chunk in _chunks(rids):
            marks = ",".join("?" * len(chunk))
            self.conn.execute(f"DELETE FROM records WHERE rid IN ({marks})", list(chunk))
            self.conn.execute(f"DELETE FROM meta WHERE rid IN ({marks})", list(chunk))

    def insert(self, ids: list[str], vectors: np.ndarray, metadatas: list[dict[str, Any]],
               documents: list[str | None]) -> np.ndarray:
        """Insert new rows; return their rids (fresh, never reused)."""
        row = self.conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
        first = (row[0] if row else 0) + 1
        rids = np.arange(first, first + len(ids), dtype=np.int64)
        dumps = encode_metadata
        self.conn.executemany(
            "INSERT INTO records (rid, id, vector, metadata, document) VALUES (?, ?, ?, ?, ?)",
            zip(rids.tolist(), ids, (v.tobytes() for v in vectors), (dumps(m) for m in metadatas), documents),
        )
        rows: list[tuple[Any, ...]] = []
        for rid, m in zip(rids.tolist(), metadatas):
            if m:
                rows.extend(meta_rows(rid, m))
        if rows:
            self.conn.executemany("INSERT INTO meta (rid, key, is_list, kind, num, txt) VALUES (?, ?, ?, ?, ?, ?)", rows)
        return rids

    # -- reads -------------------------------------------------------------------
    def where_sql(self, where: Node | None, params: list[Any]) -> str:
        return compile_filter(where, params) if where is not None else "1"

    def matching_rids(self, where: Node | None) -> np.ndarray:
        params: list[Any] = []
        sql = f"SELECT rid FROM records r WHERE {self.where_sql(where, params)} ORDER BY rid"
        return np.fromiter((r[0] for r in self.conn.execute(sql, params)), dtype=np.int64)

    def rids_for(self, ids: Sequence[str] | None, where: Node | None) -> list[int]:
        params: list[Any] = []
        cond = self.where_sql(where, params)
        if ids is None:
            return [r[0] for r in self.conn.execute(f"SELECT rid FROM records r WHERE {cond}", params)]
        out: list[int] = []
        for chunk in _chunks(ids, CHUNK - len(params)):
            q = f"SELECT rid FROM records r WHERE id IN ({','.join('?' * len(chunk))}) AND {cond}"
            out.extend(r[0] for r in self.conn.execute(q, [*chunk, *params]))
        return out

    def count(self, where: Node | None) -> int:
        params: list[Any] = []
        if where is None:
            return int(self.conn.execute("SELECT count(*) FROM records").fetchone()[0])
        sql = f"SELECT count(*) FROM records r WHERE {self.where_sql(where, params)}"
        return int(self.conn.execute(sql, params).fetchone()[0])

    @staticmethod
    def columns(include: Iterable[str]) -> str:
        inc = set(include)
        return ", ".join(["r.rid", "r.id",
                          "r.vector" if "vector" in inc else "NULL",
                          "r.metadata" if "metadata" in inc else "NULL",
                          "r.document" if "document" in inc else "NULL"])

    def to_record(self, row: tuple[Any, ...], include: frozenset[str]) -> Record:
        _, id_, vec, meta, doc = row
        return Record(
            id_,
            np.frombuffer(vec, dtype=np.float32).copy() if "vector" in include else None,
            json.loads(meta) if "metadata" in include else None,
            doc if "document" in include else None,
        )

    def select(self, include: frozenset[str], where: Node | None = None, ids: Sequence[str] | None = None,
               limit: int | None = None, offset: int = 0) -> list[Record]:
        params: list[Any] = []
        conds = [self.where_sql(where, params)]
        cols = self.columns(include)
        if ids is not None:
            out: list[Record] = []
            for chunk in _chunks(ids, CHUNK - len(params)):
                q = f"SELECT {cols} FROM records r WHERE id IN ({','.join('?' * len(chunk))}) AND {' AND '.join(conds)}"
                out.extend(self.to_record(r, include) for r in self.conn.execute(q, [*chunk, *params]))
            return out
        q = f"SELECT {cols} FROM records r WHERE {' AND '.join(conds)} ORDER BY r.rid LIMIT ? OFFSET ?"
        params.extend([-1 if limit is None else limit, offset])
        return [self.to_record(r, include) for r in self.conn.execute(q, params)]

    def live_rids(self) -> np.ndarray:
        """Every row id, ascending."""
        return self.matching_rids(None)

    def vector_bytes(self, rids: Sequence[int]) -> dict[int, bytes]:
        """rid -> stored vector (float32 bytes) of those of ``rids`` that exist."""
        found: dict[int, bytes] = {}
        for chunk in _chunks(rids):
            q = f"SELECT rid, vector FROM records WHERE rid IN ({','.join('?' * len(chunk))})"
            found.update(self.conn.execute(q, list(chunk)))
        return found

    def vectors_for(self, rids: np.ndarray) -> np.ndarray:
        """The stored vectors of ``rids`` (all of which exist), in that order."""
        found = self.vector_bytes(rids.tolist())
        return np.frombuffer(b"".join(found[r] for r in rids.tolist()), dtype=np.float32).reshape(len(rids), -1)

    @property
    def rows(self) -> OrderedDict[int, tuple[str, dict[str, Any], bool, str | None]]:
        """The cache of rows read for queries: rid -> (id, metadata, metadata holds a list, document)."""
        return self._rows

    def fetch_rows(self, rids: list[int]) -> None:
        """Read ``rids`` (those that exist) into :attr:`rows`."""
        cache = self._rows
        # make room first, so that no row asked for now is evicted before it is read
        for _ in range(min(len(cache), len(cache) + len(rids) - ROW_CACHE_LIMIT)):
            cache.popitem(last=False)
        loads = json.loads
        for chunk in _chunks(list(dict.fromkeys(rids))):
            q = f"SELECT rid, id, metadata, document FROM records WHERE rid IN ({','.join('?' * len(chunk))})"
            for rid, id_, meta, doc in self.conn.execute(q, list(chunk)):
                m = loads(meta)
                cache[rid] = (id_, m, any(type(v) is list for v in m.values()), doc)

    def forget(self, rids: Iterable[int]) -> None:
        """Drop deleted rows from the cache (memory only: they are never asked for again)."""
        pop = self._rows.pop
        for r in rids:
            pop(r, None)

    def last_rid_page(self, after: int, limit: int, include: frozenset[str],
                      upper: int | None = None) -> list[tuple[Any, ...]]:
        """The next ``limit`` rows with ``after < rid`` (and ``rid < upper``), by rid."""
        if upper is None:
            q = f"SELECT {self.columns(include)} FROM records r WHERE r.rid > ? ORDER BY r.rid LIMIT ?"
            return self.conn.execute(q, (after, limit)).fetchall()
        q = f"SELECT {self.columns(include)} FROM records r WHERE r.rid > ? AND r.rid < ? ORDER BY r.rid LIMIT ?"
        return self.conn.execute(q, (after, upper, limit)).fetchall()

    def sample_rids(self, count: int, size: int) -> np.ndarray:
        """About ``size`` of the ``count`` row ids, sorted (all of them when ``count <= size``).
        SQLite reads them from the id index (the smallest that holds every rid), not the table."""
        if count <= size:
            sql, params = "SELECT rid FROM records", []
        else:
            # Knuth's multiplicative hash (mod 2^31, so that the product stays within int64:
            # SQLite turns an overflowing product into a float) spreads any pattern of rids
            sql = "SELECT rid FROM records WHERE (((rid % 2147483648) * 2654435761) % 2147483648) < ?"
            params = [int(size * 2147483648 // count)]
        rids = np.fromiter((r[0] for r in self.conn.execute(sql, params)), dtype=np.int64)
        rids.sort()
        return rids

    def all_vectors(self, batch: int = 20000) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(rids, vectors) of every record, in batches."""
        after = 0
        while True:
            rows = self.conn.execute("SELECT rid, vector FROM records WHERE rid > ? ORDER BY rid LIMIT ?",
                                     (after, batch)).fetchall()
            if not rows:
                return
            rids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vecs = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
            yield rids, vecs
            after = int(rids[-1])

    def close(self) -> None:
        self.conn.close()
