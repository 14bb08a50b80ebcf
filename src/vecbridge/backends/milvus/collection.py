"""A Milvus collection: ``id`` VARCHAR primary key, ``vector``, ``document`` VARCHAR, ``metadata`` JSON.

Reads go through pymilvus's public calls with an escaped boolean expression (see
:mod:`.translator`); writes are upserts of column-wise requests (see :mod:`.fastpath`).
Pages and scans walk the primary key (``id > last``, pk-ordered pages, as pymilvus's
own query iterator does, but with the key escaped), never deep offsets.

Every write is an upsert, ``add`` too (the core's default: ``_existing_ids``, then
``_upsert``, under the core's exclusive lock of the collection): a Milvus server keeps two
rows for an id inserted twice, so an add racing another process's add or upsert would
leave a duplicated record; with upsert the later write wins.

The configuration document is the JSON of one collection property, ``vecbridge.config``
(both engines keep properties; Milvus Lite keeps no description nor IVF parameters).
Collections made before it kept only the index spec, in ``vecbridge.index``: still read.

Short rows of a filtered search (an IVF search probes few lists, and finds few of the
matches there) are completed by the core's exact default, which pages through the
filter's matches with ``_get_page``: Milvus has no exact search over an indexed
collection to do it natively.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ...base import BaseCollection, RawHit
from ...errors import UnsupportedFeatureError, UnsupportedFilterError
from ...filters import Cmp, Node, Not
from ...types import Partition, Record
from ...validation import Batch
from .codec import (
    ID,
    METRIC_TYPES,
    VECTOR,
    EncodedBatch,
    output_fields,
    row_parts,
    rows_to_records,
    vectors_of,
)
from .fastpath import Writer
from .translator import Compiler, conjunction, ids_expr, string_literal

if TYPE_CHECKING:
    from .client import MilvusClient

__all__ = ["MilvusCollection"]

#: The collection property that holds the configuration document; where older collections
#: kept the index spec alone.
CONFIG_PROPERTY = "vecbridge.config"
OLD_SPEC_PROPERTY = "vecbridge.index"
#: Milvus 2.3 caps topk and offset + limit of a query at 16384.
WINDOW = 16384
#: ids per ``id in [...]`` expression.
IDS_PER_CALL = 2048
#: Bytes of rows per read page, under the proxy's 64 MiB reply limit.
READ_BUDGET = 32 * 1024 * 1024
#: Query parameters that make Milvus Lite return rows in primary-key order (it sorts only
#: for its query iterator).  A Milvus server returns limited queries in pk order anyway
#: (segments keep pk-ordered offset maps and results are merged by pk), and there the
#: iterator flag costs a time tick (~200 ms) per call, so it is sent to Milvus Lite only.
LITE_ORDERED = {"iterator": "True", "reduce_stop_for_best": "True"}
#: A hook's decisions: yields pymilvus calls ``(method, args, kwargs)``, gets their answers.
Program = Generator[tuple[str, tuple[Any, ...], dict[str, Any]], Any, Any]


def config_property(doc: dict[str, Any]) -> dict[str, str]:
    """The collection properties that store the configuration document ``doc``."""
    return {CONFIG_PROPERTY: json.dumps(doc, sort_keys=True, ensure_ascii=False)}


def _json_object(text: Any) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def config_from(properties: Mapping[str, Any]) -> dict[str, Any] | None:
    """The configuration document in a collection's properties (``None``: none stored)."""
    doc = _json_object(properties.get(CONFIG_PROPERTY))
    if doc is not None:
        return doc
    spec = _json_object(properties.get(OLD_SPEC_PROPERTY))
    return {"index": spec} if spec is not None else None


def _ops(node: Node | None) -> list[str]:
    if node is None:
        return []
    if isinstance(node, Cmp):
        return [node.op]
    if isinstance(node, Not):
        return ["$not"] + _ops(node.item)
    return [op for n in node.items for op in _ops(n)]


class MilvusCollection(BaseCollection):
    """A collection on a Milvus server or in Milvus Lite; open it through :class:`MilvusClient`.

    Parameters
    ----------
    client
        The client it belongs to (its connection, engine version and read timestamps).
    name, dimension, metric
        As the collection was created.
    index
        The index spec: ``{"type": "hnsw", "m", "ef_construction", "ef_search"}``,
        ``{"type": "flat"}`` or ``{"type": "ivf", "nlist", "nprobe"}``.
    """

    # COSINE and IP come back as similarities, L2 as the squared distance
    native_scores: ClassVar[Mapping[str, str]] = {"cosine": "similarity", "ip": "similarity", "l2": "squared_l2"}

    def _vb_written_elsewhere(self) -> None:
        # session consistency only waits for this process's writes: another process's (a Ray
        # task's) are seen by a Strong read
        self._mc.wrote(self.name, 0)

    def __init__(self, client: MilvusClient, name: str, dimension: int, metric: str, index: dict[str, Any]):
        super().__init__(client, name, dimension, metric, index)
        self._mc = client
        self._compiler = Compiler(client.three_valued, doubles=not client.lite)
        self._ordered = LITE_ORDERED if client.lite else {}

    # -- the layout: what a native collection (.native) overrides ---------------------------
    _key, _vec = ID, VECTOR  # the primary key and the vector field

    def _fields(self, include: frozenset[str]) -> list[str]:
        return output_fields(include)

    def _records(self, rows: Any, include: frozenset[str]) -> list[Record]:
        return rows_to_records(rows, include)

    def _ids_cond(self, ids: list[str]) -> str:
        return ids_expr(ids)

    def _key_literal(self, value: Any) -> str:
        return string_literal(value)

    def _after(self, last: Any) -> str:
        return f"{self._key} > {self._key_literal(last)}"

    def _everything(self) -> str:
        return f'{ID} > ""'  # every id is non-empty: this matches all

    def _hit(self, hit: Any, row: dict[str, Any], vector: np.ndarray | None, include: frozenset[str]) -> RawHit:
        meta, doc = row_parts(row, include)
        return RawHit(hit["id"], float(hit["distance"]), meta, doc, vector)

    def _search_params(self, k: int) -> dict[str, Any]:
        kind = self.index.get("type")
        if kind == "hnsw":  # Milvus wants ef >= k
            return {"ef": max(int(self.index.get("ef_search", 100)), k)}
        if kind == "ivf":
            return {"nprobe": int(self.index.get("nprobe", 16))}
        return {}

    @property
    def _n(self) -> Any:
        return self._mc.native

    # -- plumbing ----------------------------------------------------------------------
    @contextlib.contextmanager
    def _native_call(self, action: str, node: Node | None = None) -> Iterator[None]:
        """Native errors through the backend's table (.failures); an expression the engine
        refused (UnsupportedFilterError there) is reported with the filter's operators."""
        try:
            with self._mapped_errors(f"{action} on {self.name!r}"):
                yield
        except UnsupportedFilterError as exc:
            cause = exc.__cause__
            if node is None or cause is None:
                raise
            ops = ", ".join(dict.fromkeys(_ops(node)))
            msg = str(getattr(cause, "message", cause))
            raise UnsupportedFilterError(
                f"milvus: {self._mc.engine} cannot run this filter (operators {ops}) on {self.name!r}: "
                f"{msg[:300]}") from cause

    # -- configuration -------------------------------------------------------------------
    def _read_config(self) -> dict[str, Any] | None:
        with self._native_call("read the configuration"):
            desc = self._n.describe_collection(self.name, **self._mc.call_options())
        return config_from(desc.get("properties") or {})

    def _write_config(self, doc: dict[str, Any]) -> None:
        # the index spec lives in the same document: the core leaves it out of ``doc``
        with self._native_call("store the configuration"):
            self._n.alter_collection_properties(self.name, properties=config_property({**doc, "index": self.index}),
                                                **self._mc.call_options())

    def _where(self, node: Node | None) -> str:
        return self._compiler.compile(node)

    # -- programs: every hook's decisions as a generator of pymilvus calls --------------------
    # A program yields ``(method, args, kwargs)`` for the pymilvus client and gets its answer
    # back; the sync hooks run it on MilvusClient (_drive), the native async hooks (.aio) on
    # AsyncMilvusClient, whose methods have the same names and arguments.
    def _drive(self, program: Program) -> Any:
        result = None
        while True:
            try:
                method, args, kwargs = program.send(result)
            except StopIteration as stop:
                return stop.value
            result = getattr(self._n, method)(*args, **kwargs)

    def _p_read(self, method: str, **kwargs: Any) -> Program:
        """A read at a timestamp that covers this process's writes."""
        consistency, token = self._mc.read_consistency(self.name)
        out = yield method, (self.name,), {**consistency, **self._mc.call_options(), **kwargs}
        self._mc.read_done(self.name, token)
        return out

    def _page_rows(self, include: frozenset[str]) -> int:
        row = 64 + (self.dimension * 4 if "vector" in include else 0) + \
            (8192 if "metadata" in include or "document" in include else 0)
        return max(1, min(WINDOW, READ_BUDGET // row))

    # -- writes (the core holds the collection's lock around them: vecbridge.locks) ------
    def _upsert(self, b: Batch) -> None:
        encoded = EncodedBatch(b)
        writer = Writer(self._n, self.name, self._mc.call_options())
        with self._native_call("upsert"):
            for start, stop in encoded.slices():
                self._mc.wrote(self.name, writer.upsert(encoded, start, stop))

    def _p_upsert(self, b: Batch) -> Program:
        """Upserts through pymilvus's public call (the async path: the fast request of
        .fastpath is sync only)."""
        encoded = EncodedBatch(b)
        for start, stop in encoded.slices():
            yield "upsert", (self.name, encoded.rows(start, stop)), self._mc.call_options()
            self._mc.wrote(self.name, 0)

    def _existing_ids(self, ids: list[str]) -> list[str]:
        with self._native_call("get"):
            return self._drive(self._p_existing_ids(ids))  # type: ignore[no-any-return]

    def _p_existing_ids(self, ids: list[str]) -> Program:
        found: list[str] = []
        for i in range(0, len(ids), IDS_PER_CALL):
            rows = yield from self._p_read("query", filter=self._ids_cond(ids[i:i + IDS_PER_CALL]),
                                           output_fields=[self._key])
            found += [self._id_of(r[self._key]) for r in rows]
        return found

    def _delete(self, ids: list[str] | None, where: Node | None) -> None:
        with self._native_call("delete", where):
            self._drive(self._p_delete(ids, where))

    def _p_delete(self, ids: list[str] | None, where: Node | None) -> Program:
        cond = self._where(where)
        if ids is None:
            exprs = [cond or self._everything()]
        else:
            exprs = [conjunction([self._ids_cond(ids[i:i + IDS_PER_CALL]), cond])
                     for i in range(0, len(ids), IDS_PER_CALL)]
        for expr in exprs:
            yield "delete", (self.name,), {"filter": expr, **self._mc.call_options()}
        self._mc.wrote(self.name, 0)  # Milvus 2.3 returns no timestamp for a delete: read Strong next

    # -- reads ---------------------------------------------------------------------------
    def _count(self, where: Node | None) -> int:
        with self._native_call("count", where):
            return self._drive(self._p_count(where))  # type: ignore[no-any-return]

    def _p_count(self, where: Node | None) -> Program:
        rows = yield from self._p_read("query", filter=self._where(where), output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def _get_ids(self, ids: list[str], where: Node | None, include: frozenset[str]) -> list[Record]:
        with self._native_call("get", where):
            return self._drive(self._p_get_ids(ids, where, include))  # type: ignore[no-any-return]

    def _p_get_ids(self, ids: list[str], where: Node | None, include: frozenset[str]) -> Program:
        cond = self._where(where)
        out: list[Record] = []
        fields = self._fields(include)
        for i in range(0, len(ids), IDS_PER_CALL):
            expr = conjunction([self._ids_cond(ids[i:i + IDS_PER_CALL]), cond])
            out += self._records((yield from self._p_read("query", filter=expr, output_fields=fields)), include)
        return out

    def _p_page(self, cond: str, fields: list[str], page: int, last: Any) -> Program:
        """One page of rows matching ``cond`` after the key ``last`` (None: from the start), in
        primary-key order: ``id > last``, never an offset."""
        expr = conjunction([self._after(last) if last is not None else "", cond])
        return (yield from self._p_read("query", filter=expr, output_fields=fields, limit=page, **self._ordered))

    def _next_after(self, rows: Any, page: int) -> Any:
        """The key the next page starts after; ``None``: that was the last page."""
        return rows[-1][self._key] if rows and len(rows) == page else None

    def _walk(self, cond: str, fields: list[str], page: int, after: Any = None) -> Iterator[list[dict[str, Any]]]:
        last = after
        while True:
            rows = self._drive(self._p_page(cond, fields, page, last))
            if rows:
                yield rows
            last = self._next_after(rows, page)
            if last is None:
                return

    def _get_page(self, where: Node | None, limit: int | None, offset: int, include: frozenset[str]) -> list[Record]:
        with self._native_call("get", where):
            return self._drive(self._p_get_page(where, limit, offset, include))  # type: ignore[no-any-return]

    def _p_get_page(self, where: Node | None, limit: int | None, offset: int, include: frozenset[str]) -> Program:
        cond, fields, page = self._where(where), self._fields(include), self._page_rows(include)
        out: list[Record] = []
        if limit is not None and offset + limit <= WINDOW and limit <= page:
            rows = yield from self._p_read("query", filter=cond, output_fields=fields, limit=limit, offset=offset,
                                           **self._ordered)
            return self._records(rows, include)
        last = None
        while offset:  # walk past the offset fetching keys only
            rows = yield from self._p_page(cond, [self._key], WINDOW, last)
            if offset <= len(rows):
                last, offset = rows[offset - 1][self._key], 0
                break
            offset -= len(rows)
            last = self._next_after(rows, WINDOW)
            if last is None:
                return out
        while True:
            rows = yield from self._p_page(cond, fields, page, last)
            out += self._records(rows, include)
            if limit is not None and len(out) >= limit:
                return out[:limit]
            last = self._next_after(rows, page)
            if last is None:
                return out

    def _scan(self, batch_size: int, include: frozenset[str]) -> Iterator[list[Record]]:
        return self._scan_where(batch_size, include, "")

    # -- partitions: primary-key ranges ------------------------------------------------------
    def _partitions(self, n: int) -> list[Partition]:
        """Key ranges split at every (count/n)-th key of one keyset pass over the keys (keys
        only: 8-260 bytes a row).  The pass reads the split points exactly, so the ranges are
        balanced as of that moment; records written later land in whichever range holds them."""
        with self._native_call("partitions"):
            total = self._count(None)
            n = max(1, min(n, total))
            step, seen = total / n, 0
            bounds: list[Any] = []
            for rows in self._walk("", [self._key], WINDOW):
                for row in rows:
                    if len(bounds) < n - 1 and seen >= round(step * (len(bounds) + 1)):
                        bounds.append(row[self._key])
                    seen += 1
        edges = [None, *bounds, None]
        extra = {"key": self._key}
        return [Partition(self.name, i, len(edges) - 1, "range", edges[i], edges[i + 1], dict(extra))
                for i in range(len(edges) - 1)]

    def _scan_partition(self, batch_size: int, include: frozenset[str], partition: Partition
                        ) -> Iterator[list[Record]]:
        if partition.kind != "range" or partition.extra.get("key") != self._key:
            raise ValueError(f"the milvus backend did not make this {partition.kind!r} partition of {self.name!r} "
                             f"(partitions are ranges of its key {self._key!r}): make them with partitions(n)")
        cond = conjunction([
            f"{self._key} >= {self._key_literal(partition.lower)}" if partition.lower is not None else "",
            f"{self._key} < {self._key_literal(partition.upper)}" if partition.upper is not None else ""])
        return self._scan_where(batch_size, include, cond)

    def _scan_where(self, batch_size: int, include: frozenset[str], cond: str) -> Iterator[list[Record]]:
        # Native pages are as large as the read budget allows, whatever the batch size: each
        # Milvus Lite query filters and sorts the whole collection (``id > last`` is not
        # served by an index), so one query per small batch made a scan quadratic.
        fields, page = self._fields(include), self._page_rows(include)
        carry: list[dict[str, Any]] = []
        last: Any = None
        while True:
            with self._native_call("scan"):
                rows = self._drive(self._p_page(cond, fields, page, last))
            batches, carry = self._cut(carry, rows, batch_size, include)
            yield from batches
            last = self._next_after(rows, page)
            if last is None:
                break
        if carry:
            yield self._records(carry, include)

    def _cut(self, carry: list[dict[str, Any]], rows: Any, batch_size: int, include: frozenset[str]
             ) -> tuple[list[list[Record]], list[dict[str, Any]]]:
        """Full batches of ``carry + rows`` and the rows left over."""
        if carry:  # rows[:]: pymilvus's lazy row list decodes its rows on indexing, not on `+`
            rows, carry = carry + rows[:], []
        full = len(rows) - len(rows) % batch_size
        return [self._records(rows[i:i + batch_size], include) for i in range(0, full, batch_size)], rows[full:]

    def _query(self, vectors: np.ndarray, k: int, where: Node | None, include: frozenset[str]) -> list[list[RawHit]]:
        with self._native_call("query", where):
            return self._drive(self._p_query(vectors, k, where, include))  # type: ignore[no-any-return]

    def _p_query(self, vectors: np.ndarray, k: int, where: Node | None, include: frozenset[str]) -> Program:
        if k > WINDOW:
            total = yield from self._p_count(where)
            if total > WINDOW:
                raise UnsupportedFeatureError(f"milvus returns at most {WINDOW} hits per query; "
                                              f"k={k} with {total} matching records")
            k = max(total, 1)
        cond = self._where(where)
        fields = [f for f in self._fields(include) if f != self._key]
        params = {"metric_type": METRIC_TYPES[self.metric], "params": self._search_params(k)}
        per_row = 64 + (self.dimension * 4 if "vector" in include else 0) + \
            (8192 if "metadata" in include or "document" in include else 0)
        step = max(1, min(WINDOW, READ_BUDGET // (per_row * k), (16 << 20) // (self.dimension * 4)))
        out: list[list[RawHit]] = []
        for i in range(0, len(vectors), step):
            res = yield from self._p_read("search", data=vectors[i:i + step], filter=cond, limit=k,
                                          output_fields=fields, search_params=params, anns_field=self._vec)
            out += [self._hits(hits, include) for hits in res]
        return out

    def _hits(self, hits: Any, include: frozenset[str]) -> list[RawHit]:
        rows = [h["entity"] for h in hits]
        vecs = vectors_of(rows, self._vec) if "vector" in include else None
        return [self._hit(h, rows[j], vecs[j] if vecs is not None else None, include) for j, h in enumerate(hits)]

    @staticmethod
    def _id_of(value: Any) -> str:
        return str(value)
