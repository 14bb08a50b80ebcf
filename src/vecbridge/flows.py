"""The contract's decisions for one collection call, written once for sync and async.

Each public operation of a collection is a *flow*: a generator that validates its
arguments, decides, and yields the backend I/O it needs as ``(hook, args)`` -- the name
of a collection hook (``_query``, ``_count``, ``_exact_query``, ``_upsert`` …, or
``_embed_documents``/``_embed_query`` for the embedder) -- receiving each answer back,
and finally returns the call's result.  :func:`run` drives a flow with the sync hooks;
:mod:`vecbridge.aio` drives the very same flow with async ones.  So validation, score
conversion, ordering, the exact top-k rule, ``add``'s duplicate check and ``update``'s
read-merge-write exist once, whichever world calls them.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from . import filters
from .errors import DuplicateIdError, InvalidRecordError, RecordNotFoundError, UnsupportedFilterError
from .scores import converter, exact_top_k
from .types import INCLUDE_ALL, Hit, Record
from .validation import (
    MAX_ID_BYTES,
    Batch,
    size_violations,
    validate_batch,
    validate_ids,
    validate_include,
    validate_query_vectors,
)

__all__ = ["Call", "CollectionFlows", "Flow", "RawHit", "run"]

Call = tuple[str, tuple[Any, ...]]
Flow = Generator[Call, Any, Any]


class RawHit(NamedTuple):
    """A query result as a backend returns it: the native score, not yet converted."""

    id: str
    value: float
    metadata: dict[str, Any] | None = None
    document: str | None = None
    vector: np.ndarray | None = None


def run(obj: Any, flow: Flow) -> Any:
    """Drive ``flow`` with ``obj``'s sync hooks (through ``obj._run_hook``); return its result."""
    call = obj._run_hook
    try:
        name, args = next(flow)
        while True:
            name, args = flow.send(call(name, args))
    except StopIteration as stop:
        return stop.value


def check_count(value: Any, name: str, minimum: int) -> int | None:
    if type(value) is int and value >= minimum:
        return value
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def complete(b: Batch) -> Batch:
    """Fill absent metadata/documents so that upsert replaces the whole record."""
    n = len(b.ids)
    return Batch(b.ids, b.vectors, b.metadatas if b.metadatas is not None else [{} for _ in range(n)],
                 b.documents if b.documents is not None else [None] * n)


def _by_distance(hit: Hit) -> float:
    return hit.distance


_new = object.__new__


def _hit(id_: str, score: float, distance: float, metadata: Any, document: Any, vector: Any) -> Hit:
    """A :class:`Hit` without the frozen dataclass's per-field ``object.__setattr__`` (a query
    builds k of them per row: this is a third of their cost)."""
    h = _new(Hit)
    h.__dict__.update(id=id_, score=score, distance=distance, metadata=metadata, document=document, vector=vector)
    return h  # type: ignore[no-any-return]


class CollectionFlows:
    """The flows of a collection; mixed into :class:`vecbridge.base.BaseCollection`."""

    name: str
    dimension: int
    metric: str
    if TYPE_CHECKING:  # provided by BaseCollection
        native_scores: ClassVar[Mapping[str, str]]
        exact_scores: ClassVar[Mapping[str, str]]

        @property
        def capabilities(self) -> Any: ...

        @property
        def backend(self) -> str: ...

        @property
        def has_embedder(self) -> bool: ...

        @property
        def query_is_exact(self) -> bool: ...

    # -- validation --------------------------------------------------------------------
    def _batch(self, ids: Any, vectors: Any, metadatas: Any, documents: Any, require_vectors: bool = True) -> Batch:
        b = validate_batch(ids, vectors, metadatas, documents, dimension=self.dimension, metric=self.metric,
                           require_vectors=require_vectors)
        caps = self.capabilities
        if caps.max_document_bytes is not None or caps.max_metadata_bytes is not None or \
                caps.max_id_bytes < MAX_ID_BYTES:
            for i, part, n, limit in size_violations(b.ids, b.metadatas, b.documents, max_id_bytes=caps.max_id_bytes,
                                                     max_document_bytes=caps.max_document_bytes,
                                                     max_metadata_bytes=caps.max_metadata_bytes,
                                                     metadata_bytes=caps.metadata_bytes):
                field = {"id": "ids", "document": "documents", "metadata": "metadatas"}[part]
                raise InvalidRecordError(f"{field}[{i}] (id {b.ids[i]!r}) is {n:,} bytes; the {self.backend} backend "
                                         f"holds a record's {part} of at most {limit:,} bytes; nothing was written")
        return b

    def _parse_where(self, where: Any) -> filters.Node | None:
        """Parse ``where`` and apply the core's rule for numbers the backend cannot compare
        exactly: an integer outside the backend's ``filter_int_range`` is refused."""
        if where is None:
            return None
        node = filters.parse(where)
        bounds = self.capabilities.filter_int_range
        if node is not None and bounds is not None:
            lo, hi = bounds
            for cmp, value in filters.numbers(node):
                if isinstance(value, int) and not lo <= value <= hi:
                    raise UnsupportedFilterError(
                        f"where[{cmp.key!r}][{cmp.op!r}]: the {self.backend} backend compares integers in filters "
                        f"exactly only from {lo} to {hi}; the filter has {value}")
        return node

    def _flow_batch(self, ids: Any, vectors: Any, metadatas: Any, documents: Any, *, update: bool = False) -> Flow:
        """The validated batch of a write; documents given without vectors are embedded (after
        everything else is validated, before any write) where the collection has an embedder."""
        if vectors is not None or (update and (documents is None or not self.has_embedder)):
            return self._batch(ids, vectors, metadatas, documents, require_vectors=not update)
        b = self._batch(ids, None, metadatas, documents, require_vectors=False)
        if b.documents is None:
            raise InvalidRecordError("vectors are required (or documents, in a collection with an embedder)")
        missing = [i for i, d in enumerate(b.documents) if d is None]
        if missing:
            raise InvalidRecordError(f"documents[{missing[0]}] is None; without vectors every record needs a "
                                     "document to embed")
        embedded = (yield "_embed_documents", (b.documents,)) if b.ids else None
        return self._batch(b.ids, embedded, b.metadatas, b.documents, require_vectors=not update)

    # -- writes ------------------------------------------------------------------------
    def _flow_add(self, ids: Any, vectors: Any, metadatas: Any, documents: Any) -> Flow:
        b = yield from self._flow_batch(ids, vectors, metadatas, documents)
        if b.ids:
            yield "_add", (complete(b),)

    def _flow_upsert(self, ids: Any, vectors: Any, metadatas: Any, documents: Any) -> Flow:
        b = yield from self._flow_batch(ids, vectors, metadatas, documents)
        if b.ids:
            yield "_upsert", (complete(b),)

    def _flow_update(self, ids: Any, vectors: Any, metadatas: Any, documents: Any) -> Flow:
        b = yield from self._flow_batch(ids, vectors, metadatas, documents, update=True)
        if b.ids:
            yield "_update", (b,)

    def _flow_delete(self, ids: Any, where: Any) -> Flow:
        if ids is None and where is None:
            raise ValueError("delete needs ids, where, or both; to delete everything use delete(where={}) "
                             "or client.delete_collection()")
        id_list = None if ids is None else list(dict.fromkeys(validate_ids(ids, unique=False)))
        node = self._parse_where(where)
        if id_list is not None and not id_list:
            return
        yield "_delete", (id_list, node)

    # -- the default write hooks, as flows (a backend overrides _add/_update natively) --
    def _duplicate_message(self, existing: Sequence[str]) -> str:
        shown = ", ".join(repr(i) for i in list(existing)[:5]) + (" …" if len(existing) > 5 else "")
        return (f"{len(existing)} id(s) exist already in {self.name!r}: {shown}; nothing was written "
                "(use upsert to replace records)")

    def _flow_default_add(self, b: Batch) -> Flow:
        existing = yield "_existing_ids", (b.ids,)
        if existing:
            raise DuplicateIdError(self._duplicate_message(existing))
        yield "_upsert", (b,)

    def _flow_default_existing_ids(self, ids: list[str]) -> Flow:
        found = yield "_get_ids", (ids, None, frozenset())
        return [r.id for r in found]

    def _flow_default_update(self, b: Batch) -> Flow:
        need = frozenset({"vector", "metadata", "document"})
        found = yield "_get_ids", (b.ids, None, need)
        current = {r.id: r for r in found}
        missing = [i for i in b.ids if i not in current]
        if missing:
            shown = ", ".join(repr(i) for i in missing[:5])
            raise RecordNotFoundError(f"{len(missing)} id(s) do not exist in {self.name!r}: {shown}; nothing was written")
        recs = [current[i] for i in b.ids]
        vectors = b.vectors if b.vectors is not None else np.stack([np.asarray(r.vector) for r in recs]).astype(np.float32)
        metas = b.metadatas if b.metadatas is not None else [dict(r.metadata or {}) for r in recs]
        docs = b.documents if b.documents is not None else [r.document for r in recs]
        yield "_upsert", (Batch(b.ids, np.ascontiguousarray(vectors), metas, docs),)

    # -- reads -------------------------------------------------------------------------
    def _flow_get(self, ids: Any, where: Any, limit: Any, offset: Any, include: Any) -> Flow:
        node = self._parse_where(where)
        inc = validate_include(include)
        limit = check_count(limit, "limit", 0)
        offset = check_count(offset, "offset", 0) or 0
        if ids is None:
            if limit == 0:
                return []
            return (yield "_get_page", (node, limit, offset, inc))
        wanted = validate_ids(ids, unique=False)
        if not wanted:
            return []
        unique = list(dict.fromkeys(wanted))
        found = {r.id: r for r in (yield "_get_ids", (unique, node, inc))}
        ordered = [found[i] for i in unique if i in found]
        end = None if limit is None else offset + limit
        return ordered[offset:end]

    def _flow_count(self, where: Any) -> Flow:
        return int((yield "_count", (self._parse_where(where),)))

    def _flow_query(self, vectors: Any, k: Any, where: Any, include: Any, text: Any) -> Flow:
        if text is not None:
            if vectors is not None:
                raise ValueError("query takes vectors or text=, not both")
            texts = [text] if isinstance(text, str) else list(text)
            if not texts or not all(isinstance(t, str) for t in texts):
                raise ValueError("text= takes a string or a non-empty list of strings")
            if isinstance(text, str):
                vectors = yield "_embed_query", (text,)
            else:
                vectors = yield "_embed_documents", (texts,)
        elif vectors is None:
            raise ValueError("query needs vectors, or text= in a collection with an embedder")
        arr, single = validate_query_vectors(vectors, self.dimension, self.metric)
        k = check_count(k, "k", 1)
        node = self._parse_where(where)
        inc = validate_include(include)
        raw = (yield "_query", (arr, k, node, inc)) if arr.shape[0] else []
        kinds = [self.native_scores] * len(raw)
        # The exact top-k rule: never fewer than k hits because the search was approximate.
        # A row with fewer hits than the records that match (at most k) is answered again by
        # ``_exact_query``; the count is asked only when some row is short.
        short = [i for i, row in enumerate(raw) if len(row) < k] if not self.query_is_exact else ()
        if short:
            need = min(k, (yield "_count", (node,)))
            redo = [i for i in short if len(raw[i]) < need]
            if redo:
                exact = yield "_exact_query", (arr[redo], k, node, inc)
                for i, row in zip(redo, exact):
                    raw[i], kinds[i] = row, self.exact_scores
        metric = self.metric
        want_meta, want_doc, want_vec = "metadata" in inc, "document" in inc, "vector" in inc
        out: list[list[Hit]] = []
        for row, kind_map in zip(raw, kinds):
            conv = converter(metric, kind_map[metric])
            hits = []
            for h in row:
                score, distance = conv(float(h.value))
                hits.append(_hit(h.id, score, distance, h.metadata if want_meta else None,
                                 h.document if want_doc else None, h.vector if want_vec else None))
            hits.sort(key=_by_distance)
            out.append(hits)
        return out[0] if single else out

    def _flow_default_exact_query(self, vectors: np.ndarray, k: int, where: filters.Node | None,
                                  include: frozenset[str]) -> Flow:
        """Exact top-``k`` over the records matching ``where``, as contract distances: the matches
        are read in pages (the filter runs in the database) and ranked with
        :func:`vecbridge.scores.exact_top_k`."""
        page = max(256, min(8192, (64 << 20) // (4 * self.dimension + 64)))
        fields = frozenset(include | {"vector"})
        best: list[list[tuple[float, Record]]] = [[] for _ in range(len(vectors))]
        offset = 0
        while True:
            recs = yield "_get_page", (where, page, offset, fields)
            if not recs:
                break
            mat = np.stack([np.asarray(r.vector, dtype=np.float32) for r in recs])
            dist, idx = exact_top_k(self.metric, vectors, mat, k)
            for qi in range(len(vectors)):
                merged = best[qi] + [(float(d), recs[j]) for d, j in zip(dist[qi], idx[qi])]
                merged.sort(key=lambda t: t[0])
                best[qi] = merged[:k]
            if len(recs) < page:
                break
            offset += len(recs)
        want_vec = "vector" in include
        return [[RawHit(r.id, d, r.metadata, r.document, r.vector if want_vec else None) for d, r in row]
                for row in best]

    def _scan_args(self, batch_size: Any, include: Any) -> tuple[int, frozenset[str]]:
        size = check_count(batch_size, "batch_size", 1)
        assert size is not None
        return size, validate_include(include, default=INCLUDE_ALL)
