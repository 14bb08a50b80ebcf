"""A Qdrant collection behind the vecbridge Collection protocol.

Record layout and ids: ``payload.py``; filters: ``translator.py``; errors:
``errortable.py``; partitions (point-id ranges): ``partitions.py``.  Each hook is written
once as ops (``ops.py``: the native requests as data), which this sync collection drives
with its ``QdrantClient`` and ``aio.py`` with an ``AsyncQdrantClient``.  Every write waits (``wait=True``) so that the next read sees it.  Paging and scanning walk the points in
id order with Qdrant's scroll cursor (the next page's first point id), never with deep
offsets.

Local mode answers each scroll call by sorting every point id and filtering the whole
collection (``LocalCollection._scroll_by_id``), whatever the limit: a call costs the
same for 7 points as for 1,000, and ``scan(batch_size=7)`` over 20,000 points took
about two minutes.  So a local scan reads pages of at least :data:`PAGE` points and
hands them out in the caller's batch size; the collection is in this process's memory
anyway, so a page of 1,000 is a small part of it.  A server scrolls by its id index and
gets the caller's batch size as it is.

The exact top-k rule (a filtered HNSW search that comes back short is answered again by
``_exact_query``, see ``vecbridge.base``) is served by Qdrant itself: the same search with
``SearchParams(exact=True)``, the filter applied inside Qdrant, so no vectors travel.
Local mode always searches exactly (and warns about search params), so it gets none.

The collection's configuration document lives in the collection's metadata under
:data:`META_KEY`: ``{"layout": …, "index": …, "format": 1, <set_config entries>}``.
``format`` is this backend's payload-layout marker, kept out of the document the core
sees (a migration would otherwise carry it to another backend).  Collections created
before the document existed hold ``{"format": 1, "index": …}`` there, which reads as the
same document; a collection without the key was made by another client: layout ``native``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from qdrant_client import models

from ...base import BaseCollection, RawHit
from ...errors import UnsupportedFeatureError
from ...filters import Node
from ...mapping import Conversions
from ...types import Partition, Record
from ...validation import Batch
from . import partitions as parts
from . import payload as pl
from .ops import Call, Ops, collect, iterate, order_key, rebatch, run
from .translator import to_filter

if TYPE_CHECKING:
    from .client import QdrantClient

#: Points per scroll page and per retrieve/delete request.
PAGE = 1000
#: The collection-metadata key of the configuration document, and the payload layout's version.
META_KEY = "vecbridge"
FORMAT = 1
_EXACT = models.SearchParams(exact=True)


def stored_config(metadata: dict[str, Any] | None) -> dict[str, Any]:
    """The configuration document kept in a collection's metadata (see the module docstring)."""
    meta = (metadata or {}).get(META_KEY)
    if not isinstance(meta, dict):
        return {"layout": "native"}
    doc = {k: v for k, v in meta.items() if k != "format"}
    doc.setdefault("layout", "vecbridge")  # the first form, {"format": 1, "index": …}, was always ours
    return doc


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class QdrantCollection(BaseCollection):
    """One Qdrant collection; see the module docstring for how records are stored."""

    # Qdrant's score: cos for Cosine, the dot product for Dot, the (non-squared) distance for Euclid.
    native_scores: ClassVar[dict[str, str]] = {"cosine": "similarity", "ip": "similarity", "l2": "distance"}
    exact_scores: ClassVar[dict[str, str]] = native_scores  # the same search, exact=True

    def __init__(self, client: QdrantClient, name: str, dimension: int, metric: str, index: dict[str, Any],
                 *, managed: bool, using: str | None):
        super().__init__(client, name, dimension, metric, index)
        self._qc = client
        self._native = client._native
        self._using = using
        self._layout = "vecbridge" if managed else "native"
        # Cosine vectors come back from the float32 bytes kept in the payload (Qdrant stores
        # them normalised); a collection vecbridge did not create (native.py) has only Qdrant's.
        self._raw_in_payload = metric == "cosine"
        self._native_vectors = metric != "cosine"
        self._params: models.SearchParams | None = None
        self._exact_params: models.SearchParams | None = None
        if not client.local:  # local mode always searches exactly and warns about search params
            self._exact_params = _EXACT
            if index.get("type") == "flat":
                self._params = _EXACT
            elif index.get("ef_search"):
                self._params = models.SearchParams(hnsw_ef=int(index["ef_search"]))

    # -- configuration -----------------------------------------------------------------
    def _read_config(self) -> dict[str, Any] | None:
        with self._mapped_errors("get_collection"):
            return stored_config(self._native.get_collection(self.name).config.metadata)

    def _write_config(self, doc: dict[str, Any]) -> None:
        # The layout and index are the collection's, whatever the document says; the metadata
        # update merges top-level keys, so this replaces the whole document and nothing else.
        kept = {**doc, "layout": self._layout, "index": dict(self.index), "format": FORMAT}
        with self._mapped_errors("update_collection"):
            self._native.update_collection(self.name, metadata={META_KEY: kept})
        if self._read_config() != {k: v for k, v in kept.items() if k != "format"}:
            raise UnsupportedFeatureError(
                f"qdrant: the server at {self._qc.url} did not keep the configuration of {self.name!r} in the "
                "collection's metadata (a server older than collection metadata ignores it); upgrade the server")

    # -- driving the ops (ops.py): the sync client answers each call ----------------------
    def _call(self, c: Call) -> Any:
        with self._mapped_errors(c.action):
            return getattr(self._native, c.method)(**c.kwargs)

    def _run(self, ops: Ops) -> Any:
        return run(ops, self._call)

    # -- reading helpers ---------------------------------------------------------------
    def _filter(self, where: Node | None) -> models.Filter | None:
        return to_filter(where)

    def _point_ids(self, ids: list[str]) -> list[Any]:
        """The point ids of the records to write."""
        return pl.point_ids(ids)

    def _lookup(self, ids: list[str]) -> list[tuple[Any, str]]:
        """``(point id, id)`` of the ids to find (an id no point can have is left out)."""
        return list(zip(self._point_ids(ids), ids))

    def _selectors(self, include: frozenset[str]) -> tuple[Any, Any]:
        with_payload = pl.payload_selector(include, self._raw_in_payload)
        want_vectors = "vector" in include and self._native_vectors
        with_vectors: Any = False
        if want_vectors:
            with_vectors = [self._using] if self._using else True
        return with_payload, with_vectors

    def _records(self, points: list[Any], include: frozenset[str]) -> list[Record]:
        return [pl.to_record(p, include, self._using) for p in points]

    def _ops_pages(self, flt: models.Filter | None, include: frozenset[str], limit: int | None,
                   offset: Any = None, page: int = PAGE, upper: Any = None) -> Ops:
        """Pages of records matching ``flt`` in point-id order, from cursor ``offset`` (a point
        id, inclusive) to ``upper`` (exclusive; ``None``: the end)."""
        with_payload, with_vectors = self._selectors(include)
        stop = None if upper is None else order_key(upper)
        left = limit
        while left is None or left > 0:
            n = page if left is None else min(page, left)
            points, offset = yield Call("scroll", "scroll", {
                "collection_name": self.name, "scroll_filter": flt, "limit": n, "offset": offset, "with_payload": with_payload,
                "with_vectors": with_vectors})
            if stop is not None:  # Qdrant has no id range filter: the ordered scroll stops here
                kept = [p for p in points if order_key(p.id) < stop]
                if len(kept) < len(points) or (offset is not None and order_key(offset) >= stop):
                    offset = None
                points = kept
            if points:
                yield self._records(points, include)
            if left is not None:
                left -= len(points)
            if offset is None or not points:
                return

    def _ops_scan(self, batch_size: int, include: frozenset[str], lower: Any = None, upper: Any = None) -> Ops:
        if not self._qc.local:
            return self._ops_pages(None, include, None, offset=lower, page=batch_size, upper=upper)
        return rebatch(self._ops_pages(None, include, None, offset=lower, page=max(batch_size, PAGE), upper=upper),
                       batch_size)

    # -- writes ------------------------------------------------------------------------
    def _write_parts(self, b: Batch, conv: Conversions | None = None) -> tuple[list[Any], Any, list[dict[str, Any]]]:
        """The point ids, vectors (as ``upload_collection``/``Batch`` take them) and payloads of a batch
        (``conv``: where a layout counts its conversions; ``None``: the collection's own count)."""
        assert b.vectors is not None and b.metadatas is not None and b.documents is not None
        raw = pl.encode_vectors(b.vectors) if self._raw_in_payload else None
        payloads = pl.encode_payloads(b.ids, b.metadatas, b.documents, raw)
        return self._point_ids(b.ids), b.vectors, payloads

    def _upsert(self, b: Batch) -> None:
        pids, vectors, payloads = self._write_parts(b)
        size = self._qc.batch_size
        # The client's bulk path: batches (in parallel processes if asked), retries, waits.  A
        # server gets the whole batch in one call, which keeps its upload workers busy; local
        # mode upserts whatever one call gets at once, which slows down on large calls
        # (20k points at 384-d: 2.9 s in one call, 1.8 s in calls of 256), so it gets chunks.
        step = size if self._qc.local else max(len(pids), 1)
        with self._mapped_errors("upsert"):
            for i in range(0, len(pids), step):
                rows = vectors[i:i + step]
                self._native.upload_collection(
                    self.name, vectors={self._using: rows} if self._using else rows, payload=payloads[i:i + step],
                    ids=pids[i:i + step], batch_size=size, parallel=self._qc.parallel, wait=True, max_retries=3)

    def _ops_upsert(self, b: Batch) -> Ops:
        """The upsert as plain ``upsert`` requests of ``batch_size`` points (the async path: the
        async client's ``upload_collection`` is a blocking call)."""
        pids, vectors, payloads = self._write_parts(b)
        size = self._qc.batch_size
        for i in range(0, len(pids), size):
            rows = vectors[i:i + size].tolist()
            batch = models.Batch(ids=pids[i:i + size], vectors={self._using: rows} if self._using else rows,
                                 payloads=payloads[i:i + size])
            yield Call("upsert", "upsert", {"collection_name": self.name, "points": batch, "wait": True})

    def _ops_delete(self, ids: list[str] | None, where: Node | None) -> Ops:
        flt = self._filter(where)
        if ids is None:  # by filter; `where={}` (no filter) deletes every point
            yield Call("delete", "delete", {"collection_name": self.name,
                                                "points_selector": models.FilterSelector(filter=flt or models.Filter()),
                                                "wait": True})
            return
        for chunk in _chunks([p for p, _ in self._lookup(ids)], PAGE):
            if flt is None:
                selector: Any = models.PointIdsList(points=chunk)
            else:
                selector = models.FilterSelector(filter=models.Filter(must=[models.HasIdCondition(has_id=chunk), flt]))
            yield Call("delete", "delete", {"collection_name": self.name, "points_selector": selector, "wait": True})

    def _delete(self, ids: list[str] | None, where: Node | None) -> None:
        self._run(self._ops_delete(ids, where))

    # -- reads -------------------------------------------------------------------------
    def _ops_existing_ids(self, ids: list[str]) -> Ops:
        pairs = self._lookup(ids)
        by_point = {str(p): i for p, i in pairs}  # point ids come back as int or UUID string
        found: list[str] = []
        for chunk in _chunks([p for p, _ in pairs], PAGE):
            points = yield Call("retrieve", "retrieve", {"collection_name": self.name, "ids": chunk, "with_payload": False,
                                                             "with_vectors": False})
            found += [by_point[str(p.id)] for p in points]
        return found

    def _existing_ids(self, ids: list[str]) -> list[str]:
        return self._run(self._ops_existing_ids(ids))  # type: ignore[no-any-return]

    def _ops_get_ids(self, ids: list[str], where: Node | None, include: frozenset[str]) -> Ops:
        flt = self._filter(where)
        out: list[Record] = []
        with_payload, with_vectors = self._selectors(include)
        for chunk in _chunks([p for p, _ in self._lookup(ids)], PAGE):
            if flt is None:
                points = yield Call("retrieve", "retrieve", {"collection_name": self.name, "ids": chunk,
                                                                 "with_payload": with_payload, "with_vectors": with_vectors})
                out += self._records(points, include)
            else:
                both = models.Filter(must=[models.HasIdCondition(has_id=chunk), flt])
                out += yield from collect(self._ops_pages(both, include, limit=len(chunk)))
        return out

    def _get_ids(self, ids: list[str], where: Node | None, include: frozenset[str]) -> list[Record]:
        return self._run(self._ops_get_ids(ids, where, include))  # type: ignore[no-any-return]

    def _ops_get_page(self, where: Node | None, limit: int | None, offset: int, include: frozenset[str]) -> Ops:
        flt = self._filter(where)
        cursor = None
        skipped = 0
        while skipped < offset:  # walk past `offset` points reading ids only
            points, cursor = yield Call("scroll", "scroll", {
                "collection_name": self.name, "scroll_filter": flt, "limit": min(PAGE, offset - skipped), "offset": cursor,
                "with_payload": False, "with_vectors": False})
            skipped += len(points)
            if cursor is None:
                return []
        return (yield from collect(self._ops_pages(flt, include, limit, offset=cursor)))

    def _get_page(self, where: Node | None, limit: int | None, offset: int, include: frozenset[str]) -> list[Record]:
        return self._run(self._ops_get_page(where, limit, offset, include))  # type: ignore[no-any-return]

    def _scan(self, batch_size: int, include: frozenset[str]) -> Iterator[list[Record]]:
        return iterate(self._ops_scan(batch_size, include), self._call)

    def _ops_count(self, where: Node | None) -> Ops:
        answer = yield Call("count", "count", {"collection_name": self.name, "count_filter": self._filter(where),
                                                   "exact": True})
        return int(answer.count)

    def _count(self, where: Node | None) -> int:
        return self._run(self._ops_count(where))  # type: ignore[no-any-return]

    def _query(self, vectors: np.ndarray, k: int, where: Node | None, include: frozenset[str]) -> list[list[RawHit]]:
        return self._run(self._ops_search(vectors, k, where, include, self._params))  # type: ignore[no-any-return]

    def _exact_query(self, vectors: np.ndarray, k: int, where: Node | None,
                     include: frozenset[str]) -> list[list[RawHit]]:
        return self._run(self._ops_search(vectors, k, where, include, self._exact_params))  # type: ignore[no-any-return]

    def _ops_search(self, vectors: np.ndarray, k: int, where: Node | None, include: frozenset[str],
                    params: models.SearchParams | None) -> Ops:
        flt = self._filter(where)
        with_payload, with_vectors = self._selectors(include)
        if len(vectors) == 1:
            answer = yield Call("query", "query_points", {
                "collection_name": self.name, "query": vectors[0], "using": self._using, "query_filter": flt,
                "search_params": params, "limit": k, "with_payload": with_payload, "with_vectors": with_vectors})
            results = [answer.points]
        else:
            requests = [models.QueryRequest(query=v, using=self._using, filter=flt, params=params, limit=k,
                                            with_payload=with_payload, with_vector=with_vectors)
                        for v in vectors.tolist()]
            answers = yield Call("query", "query_batch_points", {"collection_name": self.name, "requests": requests})
            results = [r.points for r in answers]
        out = []
        for points in results:
            hits = []
            for p, r in zip(points, self._records(points, include)):
                hits.append(RawHit(r.id, p.score, r.metadata, r.document, r.vector))
            out.append(hits)
        return out

    # -- partitions ----------------------------------------------------------------------
    def _partitions(self, n: int) -> list[Partition]:
        return self._run(parts.ops_partitions(self.name, n))  # type: ignore[no-any-return]

    def _scan_partition(self, batch_size: int, include: frozenset[str], partition: Partition
                        ) -> Iterator[list[Record]]:
        if not parts.ours(partition):
            return super()._scan_partition(batch_size, include, partition)
        return iterate(self._ops_scan(batch_size, include, partition.lower, partition.upper), self._call)
