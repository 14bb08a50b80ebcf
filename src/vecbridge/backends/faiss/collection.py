"""A FAISS collection: a FAISS index over int64 row ids plus the SQLite :class:`Store`."""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss as _faiss
import numpy as np

from ...base import BaseCollection, RawHit, native_errors
from ...errors import DuplicateIdError
from ...filters import Node
from ...types import Record
from ...validation import Batch
from .store import Store

faiss: Any = _faiss  # its SWIG stubs lack the search parameters and selectors used here

if TYPE_CHECKING:
    from .client import FaissClient

#: Filters matching at most this many records are searched exactly over the matches.
EXACT_LIMIT = 4096
_FILTER_CACHE_SIZE = 32
#: Vectors fetched for an exact fallback are kept with the filter up to this many matches.
FALLBACK_CACHE_LIMIT = 65536
DEFAULT_HNSW = {"m": 16, "ef_construction": 200, "ef_search": 100}


def new_index(dimension: int, metric: str, spec: dict[str, Any]) -> faiss.Index:
    mt = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
    if spec["type"] == "flat":
        inner = faiss.IndexFlat(dimension, mt)
    else:
        p = {**DEFAULT_HNSW, **{k: v for k, v in spec.items() if k != "type"}}
        inner = faiss.IndexHNSWFlat(dimension, p["m"], mt)
        inner.hnsw.efConstruction = p["ef_construction"]
        inner.hnsw.efSearch = p["ef_search"]
    return faiss.IndexIDMap2(inner)


class FaissCollection(BaseCollection):
    # FAISS returns squared l2, and inner products (cosine: of normalised vectors).
    native_scores = {"cosine": "similarity", "ip": "similarity", "l2": "squared_l2"}

    def __init__(self, client: FaissClient, name: str, store: Store, dimension: int, metric: str,
                 index: dict[str, Any], directory: Path | None):
        super().__init__(client, name, dimension, metric, index)
        self._store = store
        self._dir = directory
        self._index: faiss.Index | None = None
        self._tomb = np.empty(0, dtype=np.int64)  # ids still in an HNSW graph but deleted
        self._saved_gen = -1
        self._cache: OrderedDict[str, tuple[np.ndarray, np.ndarray | None, Any]] = OrderedDict()
        self._cache_gen = -1
        self._fallback: dict[str, np.ndarray] = {}  # filter -> its matches' vectors, same lifetime
        self._exact = index.get("type") == "flat"
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

    def _ensure_index(self) -> faiss.Index:
        if self._index is not None:
            return self._index
        gen = self._store.generation
        path = self._index_file(gen)
        if path is not None and path.exists():
            index = faiss.read_index(str(path))
            ids = faiss.vector_to_array(index.id_map).astype(np.int64)
            live = self._store.matching_rids(None)
            self._tomb = np.setdiff1d(ids, live)
            self._saved_gen = gen
        else:
            index = new_index(self.dimension, self.metric, self.index)
            for rids, vecs in self._store.all_vectors():
                index.add_with_ids(self._prepare(vecs), rids)
            self._tomb = np.empty(0, dtype=np.int64)
        self._index = index
        return index

    def flush(self) -> None:
        """Save the index beside its records (disk mode); a no-op when nothing changed."""
        with self._store.lock:
            if self._dir is None or self._index is None:
                return
            gen = self._store.generation
            if gen == self._saved_gen:
                return
            target = self._index_file(gen)
            assert target is not None
            tmp = target.with_suffix(".tmp")
            faiss.write_index(self._index, str(tmp))
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, target)
            for old in self._dir.glob("index-*.faiss"):
                if old != target:
                    old.unlink(missing_ok=True)
            self._saved_gen = gen

    def _remove_from_index(self, rids: np.ndarray) -> None:
        if not len(rids) or self._index is None:
            return
        if self._exact:
            self._index.remove_ids(faiss.IDSelectorBatch(rids))
        else:
            self._tomb = np.union1d(self._tomb, rids)

    def _apply(self, removed: np.ndarray, added_rids: np.ndarray | None, vectors: np.ndarray | None) -> None:
        """Mirror a committed SQLite change in the index; on failure the index is rebuilt lazily."""
        self._cache.clear()
        self._fallback.clear()
        if self._index is None:
            return
        try:
            self._remove_from_index(removed)
            if added_rids is not None and vectors is not None and len(added_rids):
                self._index.add_with_ids(self._prepare(vectors), added_rids)
            if len(self._tomb) > max(1024, self._index.ntotal // 2):
                self._index = None  # too many deleted points in the graph: rebuild on next use
        except Exception:
            self._index = None
            raise

    # -- writes ----------------------------------------------------------------------
    def _write(self, b: Batch, replace: bool) -> None:
        store = self._store
        assert b.vectors is not None and b.metadatas is not None and b.documents is not None
        with store.lock, native_errors("faiss", "write"):
            self._ensure_index()
            store.begin()
            try:
                old = store.existing(b.ids)
                if old and not replace:
                    raise DuplicateIdError(self._duplicate_message(list(old)))
                removed = np.fromiter(old.values(), dtype=np.int64, count=len(old))
                store.delete_rids(removed.tolist())
                rids = store.insert(b.ids, b.vectors, b.metadatas, b.documents)
                store.commit()
            except BaseException:
                store.rollback()
                raise
            self._apply(removed, rids, b.vectors)

    def _upsert(self, b: Batch) -> None:
        self._write(b, replace=True)

    def _add(self, b: Batch) -> None:
        self._write(b, replace=False)

    def _delete(self, ids: list[str] | None, where: Node | None) -> None:
        store = self._store
        with store.lock, native_errors("faiss", "delete"):
            self._ensure_index()
            store.begin()
            try:
                rids = store.rids_for(ids, where)
                store.delete_rids(rids)
                store.commit()
            except BaseException:
                store.rollback()
                raise
            self._apply(np.asarray(rids, dtype=np.int64), None, None)

    # -- reads -----------------------------------------------------------------------
    def _count(self, where: Node | None) -> int:
        with self._store.lock:
            return self._store.count(where)

    def _get_ids(self, ids: list[str], where: Node | None, include: frozenset[str]) -> list[Record]:
        with self._store.lock:
            return self._store.select(include, where, ids=ids)

    def _get_page(self, where: Node | None, limit: int | None, offset: int, include: frozenset[str]) -> list[Record]:
        with self._store.lock:
            return self._store.select(include, where, limit=limit, offset=offset)

    def _scan(self, batch_size: int, include: frozenset[str]) -> Iterator[list[Record]]:
        after = 0
        while True:
            with self._store.lock:
                rows = self._store.last_rid_page(after, batch_size, include)
            if not rows:
                return
            yield [self._store.to_record(r, include) for r in rows]
            after = rows[-1][0]

    def _matches(self, where: Node) -> tuple[np.ndarray, np.ndarray | None, Any]:
        """Row ids matching ``where``, and their index vectors when few or else a FAISS id
        selector over them (building one hashes every id), cached per generation."""
        gen = self._store.generation
        if gen != self._cache_gen:
            self._cache.clear()
            self._fallback.clear()
            self._cache_gen = gen
        key = repr(where)  # repr keeps True, 1 and 1.0 apart, unlike ==
        hit = self._cache.get(key)
        if hit is None:
            rids = self._store.matching_rids(where)
            vecs = sel = None
            if len(rids) <= EXACT_LIMIT:
                vecs = self._index_vectors(rids) if len(rids) else None
            else:
                sel = faiss.IDSelectorBatch(rids)
            hit = (rids, vecs, sel)
            self._cache[key] = hit
            if len(self._cache) > _FILTER_CACHE_SIZE:
                self._fallback.pop(self._cache.popitem(last=False)[0], None)
        else:
            self._cache.move_to_end(key)
        return hit

    def _index_vectors(self, rids: np.ndarray) -> np.ndarray:
        assert self._index is not None
        return np.ascontiguousarray(self._index.reconstruct_batch(rids), dtype=np.float32)

    def _knn(self, q: np.ndarray, vecs: np.ndarray, rids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k over a small candidate set, in FAISS's native numbers.

        numpy rather than ``faiss.knn``: no OpenMP start-up per call, which dominates
        (and stalls under CPU contention) for a few queries over a few thousand vectors.
        """
        dots = q @ vecs.T
        if self.metric == "l2":
            native = (q * q).sum(1)[:, None] - 2.0 * dots + (vecs * vecs).sum(1)[None, :]
            order_key = native
        else:
            native = dots
            order_key = -dots
        kk = min(k, len(rids))
        part = np.argpartition(order_key, kk - 1, axis=1)[:, :kk] if kk < len(rids) else \
            np.tile(np.arange(len(rids)), (len(q), 1))
        rows = np.arange(len(q))[:, None]
        order = np.argsort(order_key[rows, part], axis=1, kind="stable")
        best = part[rows, order]
        D = native[rows, best].astype(np.float32)
        labels = rids[best]
        if kk < k:
            pad = k - kk
            D = np.hstack([D, np.zeros((len(q), pad), dtype=D.dtype)])
            labels = np.hstack([labels, np.full((len(q), pad), -1, dtype=np.int64)])
        return D, labels

    def _search(self, index: faiss.Index, q: np.ndarray, k: int, sel: Any) -> tuple[np.ndarray, np.ndarray]:
        if self._exact:
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
        with self._store.lock, native_errors("faiss", "query"):
            index = self._ensure_index()
            q = self._prepare(vectors)
            if where is None:
                live = index.ntotal - len(self._tomb)
                if live <= 0:
                    return [[] for _ in range(len(q))]
                tomb = self._tomb
                sel: Any = faiss.IDSelectorNot(faiss.IDSelectorBatch(tomb)) if len(tomb) else None
                D, I = self._search(index, q, min(k, live), sel)
                want = min(k, live)
                rids_all: np.ndarray | None = None
                vecs_all: np.ndarray | None = None
                for short in (np.nonzero((I >= 0).sum(axis=1) < want)[0] if (I < 0).any() else ()):
                    if rids_all is None or vecs_all is None:  # an approximate search came back short
                        rids_all = self._store.matching_rids(None)
                        vecs_all = self._index_vectors(rids_all)
                    D[short], I[short] = (a[0] for a in self._knn(q[short:short + 1], vecs_all, rids_all, want))
            else:
                rids, vecs, sel = self._matches(where)
                if not len(rids):
                    return [[] for _ in range(len(q))]
                want = min(k, len(rids))
                if vecs is not None:
                    D, I = self._knn(q, vecs, rids, want)
                else:
                    D, I = self._search(index, q, want, sel)
                    for short in (np.nonzero((I >= 0).sum(axis=1) < want)[0] if (I < 0).any() else ()):
                        if vecs is None:  # the graph search missed matches: answer exactly
                            vecs = self._fallback.get(repr(where))
                            if vecs is None:
                                vecs = self._index_vectors(rids)
                                if len(rids) <= FALLBACK_CACHE_LIMIT:  # for the next short row
                                    self._fallback[repr(where)] = vecs
                        D[short], I[short] = (a[0] for a in self._knn(q[short:short + 1], vecs, rids, want))
            rows = self._store.by_rids(set(I.ravel().tolist()) - {-1}, include)
        want_vec, want_meta, want_doc = "vector" in include, "metadata" in include, "document" in include
        frombuffer = np.frombuffer
        out: list[list[RawHit]] = []
        for drow, irow in zip(D.tolist(), I.tolist()):
            found = [(d, rows[rid]) for d, rid in zip(drow, irow) if rid in rows]
            # one JSON parse per row of hits rather than one per hit
            metas = json.loads("[" + ",".join(r[3] for _, r in found) + "]") if want_meta else [None] * len(found)
            out.append([RawHit(r[1], d, m, r[4] if want_doc else None,
                               frombuffer(r[2], dtype=np.float32).copy() if want_vec else None)
                        for (d, r), m in zip(found, metas)])
        return out
