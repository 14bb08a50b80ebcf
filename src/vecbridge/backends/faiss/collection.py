"""A FAISS collection: a FAISS index over int64 row ids plus the SQLite :class:`Store`.

Several clients, in one process or in several, may open the same folder.  SQLite holds
the truth and a generation number bumped by every committed write; the in-memory
index remembers the generation it reflects (``_index_gen``).  Hence three rules:

* Before a query the index is caught up when another connection has committed
  (``PRAGMA data_version`` tells, at the cost of one cheap statement): the row ids in
  the index are compared with those in SQLite, new rows are added, deleted ones
  tombstoned.  A reader thus sees the writer's records and never a deleted one.
* A write holds the folder's lock (:mod:`.lock`) from before its transaction until the
  index mirrors it, and catches the index up inside the transaction first.
* An index is saved only as ``index-<g>.faiss`` for the generation ``g`` it reflects,
  only while ``g`` is SQLite's current generation (checked under the lock), and only
  older files are removed.  A stale reader closing last saves nothing and removes
  nothing; a file that is behind SQLite (a process killed before saving) is loaded and
  caught up like a stale index in memory.

A collection deleted (or deleted and created anew) by another client is noticed by the
inode of its ``records.sqlite`` and raises :class:`CollectionNotFoundError`.

Search: a filter matching few records (at most :data:`EXACT_LIMIT`) is answered exactly
over those records' vectors (kept with the filter), because a graph search restricted to a
small fraction of its points misses many of them and is no faster; other searches use the
graph.  Either way the numbers are FAISS's own (``native_scores``).  A row that comes back
short is completed by the core (``vecbridge.flows``: ``_count``, then ``_exact_query``, an
exact search over the index's own vectors of the matches).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss as _faiss
import numpy as np

from ...base import BaseCollection, RawHit
from ...errors import CollectionNotFoundError, DuplicateIdError
from ...filters import Node
from ...types import Partition, Record
from ...validation import Batch
from .failures import mapped_errors
from .lock import folder_lock
from .partitions import bounds, rid_partitions
from .search import DEFAULT_HNSW, exact, exact_matrix, new_index
from .store import Store

faiss: Any = _faiss  # its SWIG stubs lack the search parameters and selectors used here

if TYPE_CHECKING:
    from .client import FaissClient

#: Filters matching at most this many records are searched exactly over the matches.
EXACT_LIMIT = 4096
_FILTER_CACHE_SIZE = 32
#: Bytes the cached filters may hold (their vectors as search.exact_matrix, and row ids).
FILTER_CACHE_BYTES = 256 << 20
DB_NAME = "records.sqlite"
_INDEX_FILE = re.compile(r"index-(\d+)\.faiss")


def file_identity(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


class FaissCollection(BaseCollection):
    # FAISS returns squared l2, and inner products (cosine: of normalised vectors);
    # _exact_query returns the same kinds (search.exact).
    native_scores = {"cosine": "similarity", "ip": "similarity", "l2": "squared_l2"}
    exact_scores = native_scores

    def __init__(self, client: FaissClient, name: str, store: Store, dimension: int, metric: str,
                 index: dict[str, Any], directory: Path | None):
        super().__init__(client, name, dimension, metric, index)
        self._store = store
        self._dir = directory
        self._db = str(directory / DB_NAME) if directory is not None else None  # a str: os.stat per query
        # the records file this store opened: another one at that path means the
        # collection was deleted (and perhaps created again) by someone else
        self._identity = file_identity(self._db) if self._db is not None else None
        self._index: faiss.Index | None = None
        self._index_gen = -1  # the SQLite generation the index reflects
        self._seen_version = -1  # PRAGMA data_version when the index was last caught up
        self._tomb = np.empty(0, dtype=np.int64)  # ids still in an HNSW graph but deleted
        self._tomb_sel: tuple[np.ndarray, Any] | None = None
        # filter -> (matching rids, their vectors (float64) if few, else a FAISS id selector, bytes)
        self._cache: OrderedDict[str, tuple[np.ndarray, np.ndarray | None, Any, int]] = OrderedDict()
        self._cache_bytes = 0
        self._cache_gen = -1
        self._exact_index = index.get("type") == "flat"
        self._ef = int(index.get("ef_search", DEFAULT_HNSW["ef_search"]))
        self._plain_params: dict[int, Any] = {}

    # -- the index -----------------------------------------------------------------
    def _prepare(self, vectors: np.ndarray) -> np.ndarray:
        if self.metric != "cosine":
            return np.ascontiguousarray(vectors, dtype=np.float32)
        out = np.array(vectors, dtype=np.float32, copy=True, order="C")
        faiss.normalize_L2(out)
        return out

    def _index_file(self, gen: int) -> Path | None:
        return self._dir / f"index-{gen}.faiss" if self._dir is not None else None

    def _index_files(self) -> dict[int, Path]:
        if self._dir is None:
            return {}
        out = {}
        for p in self._dir.iterdir():
            m = _INDEX_FILE.fullmatch(p.name)
            if m:
                out[int(m.group(1))] = p
        return out

    def is_alive(self) -> bool:
        """False once this collection's folder was deleted or replaced by another client."""
        return self._db is None or file_identity(self._db) == self._identity

    def _check_alive(self) -> None:
        if not self.is_alive():
            raise CollectionNotFoundError(
                f"faiss: collection {self.name!r} at {self._dir} was deleted by another client or process "
                "while open here; get it again (get_collection) if it was created anew")

    def _current_index(self) -> faiss.Index:
        """The index, caught up with SQLite's current generation (see the module docstring)."""
        store = self._store
        self._check_alive()
        version = store.data_version()
        if self._index is not None and version == self._seen_version:
            return self._index  # nobody else committed: the index is as current as our own writes
        with store.snapshot():  # one generation for the number and the rows read
            index = self._sync_to(store.generation)
        self._seen_version = version
        return index

    def _sync_to(self, gen: int) -> faiss.Index:
        """Bring the index to generation ``gen``; the caller holds a snapshot of it."""
        if self._index is None:
            self._load_or_build(gen)
        elif gen != self._index_gen:
            self._catch_up(gen)
            if self._index is None:  # too many tombstones: rebuild
                self._load_or_build(gen)
        assert self._index is not None
        return self._index

    def _load_or_build(self, gen: int) -> None:
        files = {g: p for g, p in self._index_files().items() if g <= gen}
        if files:  # the newest saved index not ahead of SQLite; _catch_up adds what it lacks
            try:
                self._index = faiss.read_index(str(files[max(files)]))
            except Exception:  # a damaged file is only a cache: build from the records
                self._index = None
            else:
                self._tomb = np.empty(0, dtype=np.int64)
                self._catch_up(gen)
                if self._index is not None:
                    return
        index = new_index(self.dimension, self.metric, self.index)
        for rids, vecs in self._store.all_vectors():
            index.add_with_ids(self._prepare(vecs), rids)
        self._index, self._tomb, self._index_gen = index, np.empty(0, dtype=np.int64), gen
        self._clear_caches()

    def _catch_up(self, gen: int) -> None:
        """Make the index hold exactly SQLite's rows (rids are never reused: module docstring)."""
        index = self._index
        assert index is not None
        store = self._store
        held = faiss.vector_to_array(index.id_map).astype(np.int64)
        live = store.live_rids()
        gone = np.setdiff1d(held, live)
        new = np.setdiff1d(live, held)
        store.forget(gone.tolist())
        self._clear_caches()
        if self._exact_index:
            if len(gone):
                index.remove_ids(faiss.IDSelectorBatch(gone))
            self._tomb = np.empty(0, dtype=np.int64)
        else:
            self._tomb = gone
        if len(new):
            index.add_with_ids(self._prepare(store.vectors_for(new)), new)
        self._index_gen = gen
        if self._too_many_tombstones():
            self._index = None  # rebuilt by the caller (_load_or_build) or on next use

    def _too_many_tombstones(self) -> bool:
        return self._index is not None and len(self._tomb) > max(1024, self._index.ntotal // 2)

    def _clear_caches(self) -> None:
        self._cache.clear()
        self._cache_bytes = 0

    def _mapped_errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        return mapped_errors(action, self._dir, self._client.backend_name, self._client.error_map)

    # -- configuration (the info table, see client.py) ------------------------------
    def _read_config(self) -> dict[str, Any] | None:
        with self._store.lock, self._mapped_errors("read the configuration"):
            return self._store.get_config()

    def _write_config(self, doc: dict[str, Any]) -> None:
        self._check_alive()
        facts = {"dimension": self.dimension, "metric": self.metric, "index": dict(self.index)}
        with self._store.lock, self._mapped_errors("write the configuration"):
            self._store.set_config({"layout": "vecbridge", **doc, **facts})

    def flush(self) -> None:
        """Save the index beside its records (disk mode) if it is current and not saved yet."""
        with self._store.lock, self._mapped_errors("save the index"):
            if self._dir is None or self._index is None:
                return
            gen = self._index_gen
            target = self._index_file(gen)
            assert target is not None
            if target.exists() or not self.is_alive():
                return
            with folder_lock(self._dir):  # no write can commit meanwhile
                if not self.is_alive() or self._store.generation != gen:
                    return  # deleted, or behind SQLite: never name an index after a generation it lacks
                tmp = self._dir / f"index-{gen}.{os.getpid()}.{id(self)}.tmp"
                faiss.write_index(self._index, str(tmp))
                with open(tmp, "rb") as fh:
                    os.fsync(fh.fileno())
                os.replace(tmp, target)
                for g, old in self._index_files().items():
                    if g < gen:
                        old.unlink(missing_ok=True)

    def _apply(self, removed: np.ndarray, added_rids: np.ndarray | None, vectors: np.ndarray | None,
               gen: int) -> None:
        """Mirror our committed SQLite change (generation ``gen``) in the index; on failure
        the index is rebuilt lazily."""
        self._clear_caches()
        self._store.forget(removed.tolist())
        if self._index is None:
            return
        try:
            if len(removed):
                if self._exact_index:
                    self._index.remove_ids(faiss.IDSelectorBatch(removed))
                else:
                    self._tomb = np.union1d(self._tomb, removed)
            if added_rids is not None and vectors is not None and len(added_rids):
                self._index.add_with_ids(self._prepare(vectors), added_rids)
            self._index_gen = gen
            if self._too_many_tombstones():
                self._index = None  # too many deleted points in the graph: rebuild on next use
        except Exception:
            self._index = None
            raise

    # -- writes ----------------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """The folder's write lock (disk mode), then a write transaction with the index
        caught up inside it; commit is the caller's."""
        store = self._store
        self._check_alive()
        with folder_lock(self._dir) if self._dir is not None else contextlib.nullcontext():
            self._check_alive()  # the lock may be that of a folder deleted meanwhile
            store.begin()
            try:
                self._current_index()
                yield
            except BaseException:
                store.rollback()
                raise

    def _write(self, b: Batch, replace: bool) -> None:
        store = self._store
        assert b.vectors is not None and b.metadatas is not None and b.documents is not None
        with store.lock, self._mapped_errors("write"), self._transaction():
            old = store.existing(b.ids)
            if old and not replace:
                raise DuplicateIdError(self._duplicate_message(list(old)))
            removed = np.fromiter(old.values(), dtype=np.int64, count=len(old))
            store.delete_rids(removed.tolist())
            rids = store.insert(b.ids, b.vectors, b.metadatas, b.documents)
            gen = store.commit()
            self._apply(removed, rids, b.vectors, gen)

    def _upsert(self, b: Batch) -> None:
        self._write(b, replace=True)

    def _add(self, b: Batch) -> None:
        self._write(b, replace=False)

    def _delete(self, ids: list[str] | None, where: Node | None) -> None:
        store = self._store
        with store.lock, self._mapped_errors("delete"), self._transaction():
            rids = store.rids_for(ids, where)
            store.delete_rids(rids)
            gen = store.commit()
            self._apply(np.asarray(rids, dtype=np.int64), None, None, gen)

    # -- reads -----------------------------------------------------------------------
    def _count(self, where: Node | None) -> int:
        with self._store.lock, self._mapped_errors("count"):
            return self._store.count(where)

    def _get_ids(self, ids: list[str], where: Node | None, include: frozenset[str]) -> list[Record]:
        with self._store.lock, self._mapped_errors("get"):
            return self._store.select(include, where, ids=ids)

    def _get_page(self, where: Node | None, limit: int | None, offset: int, include: frozenset[str]) -> list[Record]:
        with self._store.lock, self._mapped_errors("get"):
            return self._store.select(include, where, limit=limit, offset=offset)

    def _scan(self, batch_size: int, include: frozenset[str], after: int = 0,
              upper: int | None = None) -> Iterator[list[Record]]:
        while True:
            with self._store.lock, self._mapped_errors("scan"):
                rows = self._store.last_rid_page(after, batch_size, include, upper)
            if not rows:
                return
            yield [self._store.to_record(r, include) for r in rows]
            after = rows[-1][0]

    def _partitions(self, n: int) -> list[Partition]:
        """Row-id ranges from sampled split points (:mod:`.partitions`)."""
        with self._store.lock, self._mapped_errors("partitions"):
            self._check_alive()
            return rid_partitions(self._store, self.name, n)

    def _scan_partition(self, batch_size: int, include: frozenset[str], partition: Partition
                        ) -> Iterator[list[Record]]:
        if partition.kind == "hash":  # the core's split, made before row-id ranges (an older checkpoint)
            return super()._scan_partition(batch_size, include, partition)
        after, upper = bounds(partition)
        return self._scan(batch_size, include, after, upper)

    def _matches(self, where: Node) -> tuple[np.ndarray, np.ndarray | None, Any]:
        """Row ids matching ``where``, and their vectors (as :func:`.search.exact_matrix`) when few or
        else a FAISS id selector over them (building one hashes every id), cached per generation."""
        if self._index_gen != self._cache_gen:
            self._clear_caches()
            self._cache_gen = self._index_gen
        key = repr(where)  # repr keeps True, 1 and 1.0 apart, unlike ==
        hit = self._cache.get(key)
        if hit is None:
            store = self._store
            with store.snapshot():
                # the matches must be those of the index's generation, or their vectors may
                # be missing from it: another process may have committed since _current_index
                gen = store.generation
                if gen != self._index_gen or self._index is None:
                    self._sync_to(gen)
                    self._cache_gen = gen
                rids = store.matching_rids(where)
            vecs = sel = None
            size = rids.nbytes
            if len(rids) <= EXACT_LIMIT:
                vecs = exact_matrix(self.metric, self._index_vectors(rids)) if len(rids) else None
                size += vecs.nbytes if vecs is not None else 0
            else:
                sel = faiss.IDSelectorBatch(rids)
                size += 2 * rids.nbytes  # its hash set, roughly
            hit = (rids, vecs, sel, size)
            self._cache[key] = hit
            self._cache_bytes += size
            while len(self._cache) > 1 and (len(self._cache) > _FILTER_CACHE_SIZE or
                                            self._cache_bytes > FILTER_CACHE_BYTES):
                self._cache_bytes -= self._cache.popitem(last=False)[1][3]
        else:
            self._cache.move_to_end(key)
        return hit[0], hit[1], hit[2]

    def _live_in_index(self) -> np.ndarray:
        assert self._index is not None
        held = faiss.vector_to_array(self._index.id_map).astype(np.int64)
        return np.setdiff1d(held, self._tomb) if len(self._tomb) else np.sort(held)

    def _tomb_selector(self) -> Any:
        """An id selector excluding the tombstones, kept while they do not change."""
        tomb = self._tomb
        if self._tomb_sel is None or self._tomb_sel[0] is not tomb:
            self._tomb_sel = (tomb, faiss.IDSelectorNot(faiss.IDSelectorBatch(tomb)) if len(tomb) else None)
        return self._tomb_sel[1]

    def _index_vectors(self, rids: np.ndarray) -> np.ndarray:
        assert self._index is not None
        return np.ascontiguousarray(self._index.reconstruct_batch(rids), dtype=np.float32)

    def _search(self, index: faiss.Index, q: np.ndarray, k: int, sel: Any) -> tuple[np.ndarray, np.ndarray]:
        if self._exact_index:
            params = faiss.SearchParameters(sel=sel) if sel is not None else None
        elif sel is not None:
            params = faiss.SearchParametersHNSW(sel=sel, efSearch=max(self._ef, k))
        else:
            ef = max(self._ef, k)
            params = self._plain_params.get(ef)
            if params is None:
                params = self._plain_params[ef] = faiss.SearchParametersHNSW(efSearch=ef)
        return index.search(q, k, params=params)

    def _query(self, vectors: np.ndarray, k: int, where: Node | None, include: frozenset[str]) -> list[list[RawHit]]:
        store = self._store
        with store.lock, self._mapped_errors("query"):
            self._current_index()
            q = self._prepare(vectors)
            if where is None:
                index = self._index
                assert index is not None
                want = min(k, index.ntotal - len(self._tomb))
                if want <= 0:
                    return [[] for _ in range(len(q))]
                # a row the graph search leaves short (-1 labels) is completed by the core
                D, I = self._search(index, q, want, self._tomb_selector())
            else:
                rids, vecs, sel = self._matches(where)  # may catch the index up further
                index = self._index
                assert index is not None
                if not len(rids):
                    return [[] for _ in range(len(q))]
                want = min(k, len(rids))
                if vecs is not None:
                    D, I = exact(self.metric, q, vecs, rids, want)
                else:
                    D, I = self._search(index, q, want, sel)
            return self._hits_of(D, I, include)

    def _exact_query(self, vectors: np.ndarray, k: int, where: Node | None,
                     include: frozenset[str]) -> list[list[RawHit]]:
        """Exact top-``k`` over the matches of ``where``: the vectors come from the index
        (current with SQLite), the ranking from :func:`vecbridge.scores.exact_top_k`."""
        store = self._store
        with store.lock, self._mapped_errors("exact query"):
            self._current_index()
            q = self._prepare(vectors)
            if where is None:
                rids, vecs = self._live_in_index(), None
            else:
                rids, vecs, _ = self._matches(where)
            if not len(rids):
                return [[] for _ in range(len(q))]
            if vecs is None:  # many matches: not cached, read for this call only
                vecs = exact_matrix(self.metric, self._index_vectors(rids))
            D, I = exact(self.metric, q, vecs, rids, k)
            return self._hits_of(D, I, include)

    def _hits_of(self, D: np.ndarray, I: np.ndarray, include: frozenset[str]) -> list[list[RawHit]]:
        """The hits of a search's (numbers, row ids); the caller holds the store's lock."""
        store = self._store
        labels = I.tolist()
        # rows are immutable per rid (store.py), so the cache needs no invalidation; a row
        # deleted by another process since the index was caught up is left out
        rows = store.rows
        missing = [r for row in labels for r in row if r not in rows and r >= 0]
        if missing:
            store.fetch_rows(missing)
        vec_bytes = None
        if "vector" in include:
            vec_bytes = store.vector_bytes(list({r for row in labels for r in row if r >= 0}))
        return self._hits(D.tolist(), labels, rows, vec_bytes, include)

    @staticmethod
    def _hits(dists: list[list[float]], labels: list[list[int]], rows: Any, vec_bytes: dict[int, bytes] | None,
              include: frozenset[str]) -> list[list[RawHit]]:
        want_meta, want_doc = "metadata" in include, "document" in include
        get = rows.get
        make = RawHit._make  # tuple.__new__, without NamedTuple's keyword handling per hit
        out: list[list[RawHit]] = []
        for drow, irow in zip(dists, labels):
            hits = []
            for d, rid in zip(drow, irow):
                row = get(rid)
                if row is None:
                    continue
                id_, meta, has_list, doc = row
                if want_meta:  # a fresh dict per hit: the caller may change it, the cache must not
                    meta = {k: (v[:] if type(v) is list else v) for k, v in meta.items()} if has_list else meta.copy()
                else:
                    meta = None
                vec = None
                if vec_bytes is not None:
                    raw = vec_bytes.get(rid)
                    if raw is None:
                        continue
                    vec = np.frombuffer(raw, dtype=np.float32).copy()
                hits.append(make((id_, d, meta, doc if want_doc else None, vec)))
            out.append(hits)
        return out
