"""FAISS index files that vecbridge did not write, opened read-only (``faiss:///path/index.faiss``).

A file written by ``faiss.write_index`` holds vectors and int64 labels, nothing else: no
metadata, no documents.  So the native schema is two fields -- the id (the labels of an
``IndexIDMap``/``IndexIDMap2``, the ids an IVF index was given with ``add_with_ids``, or the
positions ``0 .. n-1`` of any other index) and the vector -- and the core decides the
mapping (:func:`vecbridge.mapping.decide`).  The metric is the index's ``metric_type``
(``METRIC_L2`` -> l2, ``METRIC_INNER_PRODUCT`` -> ip); a flat inner-product index over
normalised vectors is cosine only when ``?metric=cosine`` says so, and then its vectors are
checked to be normalised, because FAISS would rank unnormalised ones by their dot product.

Why read-only: the file is the application's (LangChain's ``index.faiss``, say) and has
room for neither string ids nor metadata; writing into it would either lose what the
contract promises or change a file another program reads.  Every write raises
:class:`UnsupportedFeatureError` saying how to copy the file into a collection that can be
written (``vecbridge migrate``).

Why the positions of an IVF index are its sorted ids: an IVF file keeps its ids in the
inverted lists, in no useful order; sorting gives ``scan`` and ``partitions`` a stable order.
Vectors come back through FAISS's own ``reconstruct`` (an IVF index gets a direct map in
memory for that; the file is never changed); a quantised index (PQ, SQ) gives back its
approximations of the vectors, which is all it holds.

Filters: no record has metadata, so a filter has the same answer for every record -- that of
:func:`vecbridge.filters.matches` on ``{}`` (``$ne`` and ``$nin`` true, every other comparison
false) -- and is answered without reading any record.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import faiss as _faiss
import numpy as np

from ... import filters
from ...base import BaseCollection, RawHit
from ...errors import UnsupportedFeatureError
from ...filters import Node
from ...mapping import CollectionMapping, Field, NativeSchema, decide
from ...types import Partition, Record
from ...validation import Batch

faiss: Any = _faiss  # its SWIG stubs lack most of what is used here

if TYPE_CHECKING:
    from .client import FaissClient

__all__ = ["INDEX_SUFFIXES", "NativeIndexCollection", "is_index_file"]

#: A URL path or a folder entry ending in one of these names a FAISS index file.
INDEX_SUFFIXES = (".faiss", ".index")
_METRICS = {0: "ip", 1: "l2"}  # faiss.METRIC_INNER_PRODUCT, faiss.METRIC_L2
#: Vectors whose norm is checked when ``metric=cosine`` is asked of an inner-product index.
NORM_SAMPLE = 1000


def is_index_file(path: Path) -> bool:
    return path.suffix in INDEX_SUFFIXES and not path.is_dir()


def _index_kind(index: Any) -> dict[str, Any]:
    """The contract's index spec of a FAISS index (``query_is_exact`` reads its type)."""
    name = type(index).__name__
    if name.startswith("IndexFlat"):
        return {"type": "flat"}
    if "HNSW" in name:
        return {"type": "hnsw", "m": int(index.hnsw.nb_neighbors(1)), "ef_search": int(index.hnsw.efSearch)}
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        return {"type": "other", "faiss": name}
    return {"type": "ivf", "nlist": int(ivf.nlist), "nprobe": int(ivf.nprobe), "faiss": name}


class NativeIndexCollection(BaseCollection):
    """One FAISS index file as a read-only collection (module docstring)."""

    native_scores = {"cosine": "similarity", "ip": "similarity", "l2": "squared_l2"}  # noqa: RUF012

    def __init__(self, client: FaissClient, name: str, path: Path, options: dict[str, Any]):
        self.path = path
        with client._mapped_errors(f"read the FAISS index file {path}"):
            index = faiss.read_index(str(path))
            self._index = index
            # IDMap: labels in id_map, vectors in the inner index at positions 0..n-1
            self._inner = faiss.downcast_index(index.index) if hasattr(index, "id_map") else index
            if hasattr(index, "id_map"):
                ids, self._by_label = faiss.vector_to_array(index.id_map).astype(np.int64), False
            else:
                ids, self._by_label = self._ivf_ids(index)
        spec = _index_kind(self._inner)
        metric = _METRICS.get(int(index.metric_type))
        schema = NativeSchema(name, (
            Field("id", "int", "int64 label" if hasattr(index, "id_map") or self._by_label else "position",
                  primary=True),
            Field("vector", "vector", f"{type(self._inner).__name__} float32", dimension=int(index.d)),
        ), metric=metric)
        self.mapping: CollectionMapping = decide(schema, options)
        self._check_layout(options)
        super().__init__(client, name, int(index.d), self._check_metric(metric, index), spec)
        self._ids = ids
        self._positions: dict[int, int] | None = None
        self._lock = threading.Lock()  # FAISS's direct map is built once, under it
        try:
            self._ivf: Any = faiss.extract_index_ivf(self._inner)
        except RuntimeError:
            self._ivf = None
        if len(np.unique(ids)) != len(ids):
            values, counts = np.unique(ids, return_counts=True)
            raise UnsupportedFeatureError(
                f"faiss: the index file {path} holds the id {int(values[counts > 1][0])} more than once; "
                "record ids must be unique")
        if self.metric == "cosine":
            self._check_normalised()

    # -- opening --------------------------------------------------------------------------------
    @staticmethod
    def _ivf_ids(index: Any) -> tuple[np.ndarray, bool]:
        """An IVF index's own ids (sorted), else the positions; whether vectors are fetched by label."""
        try:
            ivf = faiss.extract_index_ivf(index)
        except RuntimeError:
            return np.arange(index.ntotal, dtype=np.int64), False
        lists = ivf.invlists
        parts = [faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                 for i in range(ivf.nlist) if lists.list_size(i)]
        ids = np.sort(np.concatenate(parts).astype(np.int64)) if parts else np.empty(0, dtype=np.int64)
        return ids, True

    def _check_layout(self, options: dict[str, Any]) -> None:
        layout = options.get("layout")
        if layout not in (None, "", "native"):
            raise UnsupportedFeatureError(f"faiss: {self.path} is a FAISS index file (layout native), not {layout!r}")

    def _check_metric(self, metric: str | None, index: Any) -> str:
        chosen = self.mapping.metric
        allowed = {"l2": ("l2",), "ip": ("ip", "cosine")}.get(metric or "", ())
        if chosen not in allowed:
            raise UnsupportedFeatureError(
                f"faiss: the index file {self.path} ranks by metric_type {int(index.metric_type)} "
                f"({metric or 'not l2 or inner product'}), so it cannot be searched as {chosen!r}; "
                + (f"allowed: {', '.join(allowed)}" if allowed else "vecbridge reads l2 and inner-product indexes"))
        return chosen

    def _check_normalised(self) -> None:
        n = min(NORM_SAMPLE, len(self._ids))
        if not n:
            return
        norms = np.linalg.norm(self._vectors_at(np.arange(n)).astype(np.float64), axis=1)
        bad = np.flatnonzero(np.abs(norms - 1.0) > 1e-3)
        if len(bad):
            raise UnsupportedFeatureError(
                f"faiss: metric=cosine needs normalised vectors, but the vector of id {int(self._ids[bad[0]])} in "
                f"{self.path} has norm {norms[bad[0]]:.4g}; open it with metric=ip instead")

    # -- reading the file -------------------------------------------------------------------------
    def _vectors_at(self, positions: np.ndarray) -> np.ndarray:
        keys = self._ids[positions] if self._by_label else positions
        obj = self._inner
        with self._lock, self._mapped_errors("read vectors"):
            ivf = self._ivf
            if ivf is not None and ivf.direct_map.type == faiss.DirectMap.NoMap:
                ivf.set_direct_map_type(faiss.DirectMap.Hashtable)  # in memory only: the file is unchanged
            if not len(keys):
                return np.empty((0, self.dimension), dtype=np.float32)
            return np.asarray(obj.reconstruct_batch(np.ascontiguousarray(keys, dtype=np.int64)), dtype=np.float32)

    def _position_of(self) -> dict[int, int]:
        if self._positions is None:
            self._positions = {int(v): i for i, v in enumerate(self._ids.tolist())}
        return self._positions

    def _records(self, positions: np.ndarray, include: frozenset[str]) -> list[Record]:
        vecs = self._vectors_at(positions) if "vector" in include else None
        meta: dict[str, Any] | None = {} if "metadata" in include else None
        return [Record(str(int(self._ids[p])), vecs[i].copy() if vecs is not None else None,
                       dict(meta) if meta is not None else None, None) for i, p in enumerate(positions.tolist())]

    @staticmethod
    def _all_match(where: Node | None) -> bool:
        return where is None or filters.matches(where, {})

    # -- reads ------------------------------------------------------------------------------------
    def _count(self, where: Node | None) -> int:
        return len(self._ids) if self._all_match(where) else 0

    def _get_ids(self, ids: list[str], where: Node | None, include: frozenset[str]) -> list[Record]:
        if not self._all_match(where):
            return []
        pos = self._position_of()
        found = [pos[int(i)] for i in ids if i.lstrip("-").isdigit() and i == str(int(i)) and int(i) in pos]
        return self._records(np.asarray(found, dtype=np.int64), include)

    def _get_page(self, where: Node | None, limit: int | None, offset: int, include: frozenset[str]) -> list[Record]:
        if not self._all_match(where):
            return []
        end = len(self._ids) if limit is None else min(len(self._ids), offset + limit)
        return self._records(np.arange(offset, max(offset, end), dtype=np.int64), include)

    def _query(self, vectors: np.ndarray, k: int, where: Node | None, include: frozenset[str]) -> list[list[RawHit]]:
        if not self._all_match(where) or not len(self._ids):
            return [[] for _ in range(len(vectors))]
        q = np.array(vectors, dtype=np.float32, copy=True, order="C")
        if self.metric == "cosine":
            faiss.normalize_L2(q)
        with self._mapped_errors("query"):
            D, I = self._index.search(q, min(k, len(self._ids)))
        pos = self._position_of() if self._by_label or hasattr(self._index, "id_map") else None
        out: list[list[RawHit]] = []
        for drow, irow in zip(D.tolist(), I.tolist()):
            # -1: no hit (a short row, which the core completes exactly; so also a record whose id is -1)
            hits = [(d, label) for d, label in zip(drow, irow) if label != -1]
            at = np.asarray([pos[label] if pos is not None else label for _, label in hits], dtype=np.int64)
            vecs = self._vectors_at(at) if "vector" in include else None
            out.append([RawHit(str(label), d, {} if "metadata" in include else None, None,
                               vecs[i].copy() if vecs is not None else None) for i, (d, label) in enumerate(hits)])
        return out

    def _scan(self, batch_size: int, include: frozenset[str], start: int = 0,
              stop: int | None = None) -> Iterator[list[Record]]:
        end = len(self._ids) if stop is None else min(stop, len(self._ids))
        for first in range(start, end, batch_size):
            yield self._records(np.arange(first, min(first + batch_size, end), dtype=np.int64), include)

    def _partitions(self, n: int) -> list[Partition]:
        """Position ranges (the file never changes while it is open read-only)."""
        total = len(self._ids)
        parts = max(1, min(n, total))
        edges = [(i * total) // parts for i in range(parts + 1)]
        return [Partition(self.name, i, parts, "offset", edges[i], edges[i + 1], {"file": str(self.path)})
                for i in range(parts)]

    def _scan_partition(self, batch_size: int, include: frozenset[str], partition: Partition
                        ) -> Iterator[list[Record]]:
        if partition.kind != "offset" or "file" not in partition.extra:
            raise ValueError(f"faiss: this {partition.kind!r} partition was not made by this index file's "
                             "partitions(n); make it with collection.partitions(n)")
        return self._scan(batch_size, include, int(partition.lower), int(partition.upper))

    # -- the configuration document ---------------------------------------------------------------
    def _read_config(self) -> dict[str, Any] | None:
        return {"layout": "native", "file": str(self.path), "mapping": self.mapping.describe()}

    # -- writes: refused (module docstring) -------------------------------------------------------
    def _refuse(self, what: str) -> UnsupportedFeatureError:
        return UnsupportedFeatureError(
            f"faiss: {what} refused: {self.path} is a FAISS index file opened read-only (it holds no string ids "
            f"or metadata); copy it into a collection first: vecbridge migrate 'faiss:///{self.path}"
            f"?collection={self.name}' 'faiss:///FOLDER?collection=NAME'")

    def _write_config(self, doc: dict[str, Any]) -> None:
        raise self._refuse("set_config")

    def _upsert(self, b: Batch) -> None:
        raise self._refuse("upsert")

    def _add(self, b: Batch) -> None:
        raise self._refuse("add")

    def _update(self, b: Batch) -> None:
        raise self._refuse("update")

    def _delete(self, ids: list[str] | None, where: Node | None) -> None:
        raise self._refuse("delete")
