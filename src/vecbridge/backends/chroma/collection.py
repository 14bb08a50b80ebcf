"""A Chroma collection behind the vecbridge :class:`~vecbridge.base.BaseCollection`.

How the differences between Chroma and the contract are absorbed:

* scores: Chroma returns squared l2, ``1 - dot`` and ``1 - cos``; declared in
  :attr:`ChromaCollection.native_scores`, the core converts;
* writes go in slices of the engine's largest batch (``get_max_batch_size()``);
* Chroma's upsert *merges* metadata into an existing record and keeps its document when
  given none; the contract replaces whole records, so an upsert first reads which of its
  ids exist and sends ``None`` for every key the new metadata drops (Chroma's way to
  delete a key) and :data:`~.codec.NO_DOCUMENT` for a document that goes away;
* Chroma's add keeps the old record silently on an existing id: ``add`` checks first
  and writes nothing when one exists.  The core runs that check and the write, upsert's
  read of the old keys and its write, update's read-merge-write and delete under the
  collection's in-process write lock (:mod:`vecbridge.locks`), all four *exclusive*
  here (:attr:`ChromaCollection.exclusive_writes`: two upserts running side by side
  would merge each other's metadata), so that two threads adding one id get one success
  and one ``DuplicateIdError``.  Two
  *processes* adding one id to a server at the same moment can both succeed: Chroma keeps
  the first record and the second writer is not told (Chroma has no atomic
  insert-if-absent).  A folder is written by one process at a time (:mod:`.locks`);
* the configuration document (``_read_config``/``_write_config``) is JSON under the
  collection metadata key :data:`CONFIG_KEY`, with the dimension, metric and format
  marker that vecbridge needs to open the collection; collections of earlier versions
  keep these under ``vecbridge_format``/``vecbridge_dimension``/``vecbridge_metric``,
  read as the same document (:func:`stored_config`).  Chroma's ``modify`` replaces the
  whole metadata and refuses ``hnsw:*`` keys (the space lives in the collection's
  configuration): a write keeps every other key;
* metadata Chroma cannot keep, and what negated filters need, is encoded (:mod:`.codec`),
  filters are translated (:mod:`.translator`);
* a cosine collection's vectors come back bit-exact from their float32 bytes kept in the
  record's uri (Chroma's cosine space gives back norm x unit vector, off by an ulp),
  checked against Chroma's own vector on every read;
* Chroma's HNSW search with a filter can return fewer than ``k`` hits although ``k``
  records match (seen with sparse graphs, ``m=2``).  Chroma has no exact search a client
  can ask for, so the core's rule completes such a row with its default
  ``_exact_query``: pages of :meth:`_get_page` (the filter runs in Chroma; vectors exact,
  see above) ranked by :func:`vecbridge.scores.exact_top_k`;
* partitions (:meth:`ChromaCollection._partitions`): Chroma has no key order a client can
  range over (ids are strings it does not sort, and a ``where`` on a key would group every
  metadata row per page).  Its ``get(limit, offset)`` pages in the order of its internal
  sequence id (the row id its SQLite metadata segment assigns on insert; an upsert of an
  existing id keeps its row), so the stable split is offset ranges of that order (kind
  ``offset``).  It is stable while nobody writes the collection between ``partitions(n)``
  and the end of the copy: a delete shifts every later position.  A partition records the
  count it was cut for, and its scan refuses a collection whose count changed;
* a read that meets a write of the same records (a get with vectors, or a query, while a
  delete runs) can fail in Chroma with "Error finding id": its index and its records
  disagreed for a moment.  Such a read is run again (:meth:`ChromaCollection.retry_delay`), which answers
  once the write is done; if every try fails, the error says what happened.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from ...base import BaseCollection, RawHit
from ...errors import BackendError, BackendUnavailableError, DuplicateIdError
from ...filters import Node
from ...mapping import Conversions
from ...types import Partition, Record
from ...validation import Batch
from .codec import NO_DOCUMENT, decode_document, decode_metadata, decode_vector, encode_metadata, encode_vectors
from .failures import index_out_of_step
from .native import RecordCodec
from .translator import to_where

if TYPE_CHECKING:
    from ...mapping import CollectionMapping
    from .client import ChromaClient


#: One call of a chromadb collection method: its name and keyword arguments.
Call = tuple[str, dict[str, Any]]
#: A hook as a program of calls (see ``ChromaCollection._run``); it returns the hook's answer.
Program = Generator[Call, Any, Any]
#: Tries of a read that meets Chroma's index and records out of step (see the module docstring).
READ_TRIES = 4
#: The collection metadata key holding the configuration document (JSON text).
CONFIG_KEY = "vecbridge_config"
#: The ``format`` of collections whose records vecbridge writes (they carry ``_vbnum``).
FORMAT = 1
#: Where earlier versions kept the format marker, the dimension and the metric.
_OLD_KEYS = {"vecbridge_format": "format", "vecbridge_dimension": "dimension", "vecbridge_metric": "metric"}


def stored_config(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """The configuration document in a collection's Chroma metadata (``{}``: none), in its
    current form or in the keys earlier versions wrote."""
    meta = meta or {}
    doc = {ours: meta[theirs] for theirs, ours in _OLD_KEYS.items() if theirs in meta}
    text = meta.get(CONFIG_KEY)
    if isinstance(text, str):
        try:
            kept = json.loads(text)
        except ValueError:
            kept = None
        if isinstance(kept, dict):
            doc.update(kept)
    return doc


def drive(native: Any, prog: Program) -> Any:
    """Perform a program's calls with the sync chromadb collection ``native``; its result."""
    try:
        method, kwargs = next(prog)
        while True:
            method, kwargs = prog.send(getattr(native, method)(**kwargs))
    except StopIteration as stop:
        return stop.value


def _f32(rows: Any) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32)


def _any(values: list[Any]) -> list[Any] | None:
    """``values``, or ``None`` when every item is ``None`` (Chroma's "no such field")."""
    return values if any(v is not None for v in values) else None


class ChromaCollection(BaseCollection):
    """One Chroma collection (see the module docstring for what it adapts).

    Parameters
    ----------
    client : ChromaClient
        The client it was opened with.
    native : chromadb.api.models.Collection.Collection
        The chromadb collection, opened without an embedding function.
    dimension, metric, index
        As recorded at creation (or read from a collection made by another tool).
    vecbridge_format : bool
        Whether vecbridge created it, so that its records carry the ``_vbnum`` list.
    mapping : CollectionMapping, optional
        For a collection in Chroma's own layout (``native``, ``langchain``, ``llamaindex``:
        see :mod:`.native`), whoever created it.
    """

    native_scores: ClassVar[dict[str, str]] = {
        "cosine": "one_minus_similarity", "l2": "squared_l2", "ip": "one_minus_similarity"}
    #: Chroma's upsert reads before it writes (it merges metadata): every write is exclusive.
    exclusive_writes: ClassVar[frozenset[str]] = frozenset({"_add", "_update", "_upsert", "_delete"})
    #: A filter true for every record: ``$ne`` on a key no record has.
    EVERY_RECORD: ClassVar[dict[str, Any]] = {"_vball": {"$ne": 0}}

    def __init__(self, client: ChromaClient, native: Any, dimension: int, metric: str, index: dict[str, Any],
                 vecbridge_format: bool, mapping: CollectionMapping | None = None):
        super().__init__(client, native.name, dimension, metric, index)
        self._native = native
        self._chroma = client
        #: records carry the _vbnum list (collections created by vecbridge)
        self.vecbridge_format = vecbridge_format
        #: how a native collection maps onto records (None: vecbridge's own layout)
        self.mapping = mapping
        #: the conversions of the native value rule and of a framework layout's encode, counted
        self.conversions = Conversions()
        self._codec = RecordCodec(mapping, self.conversions) if mapping is not None else None
        # cosine: the exact vector is kept in the record's uri (see .codec) -- never in a
        # native collection, whose uris are the application's
        self._exact_vectors = metric == "cosine" and vecbridge_format

    @property
    def native(self) -> Any:
        """The chromadb ``Collection`` underneath."""
        return self._native

    def _where(self, node: Node | None) -> dict[str, Any] | None:
        return to_where(node, self.vecbridge_format)

    def _slices(self, n: int) -> Iterator[slice]:
        step = self._chroma.max_batch_size()
        for start in range(0, n, step):
            yield slice(start, min(n, start + step))

    def _fields(self, include: frozenset[str]) -> list[str]:
        """Chroma's ``include`` for vecbridge's."""
        out = []
        if "vector" in include:
            out += ["embeddings", "uris"] if self._exact_vectors else ["embeddings"]
        if "metadata" in include:
            out.append("metadatas")
        if "document" in include:
            out.append("documents")
        return out

    def _encode(self, b: Batch, action: str, conv: Conversions | None = None
                ) -> tuple[list[dict[str, Any] | None], list[str | None]]:
        """Every metadata and document of a write as Chroma stores them, before any of it is
        written (a record a native or framework layout cannot take is refused here)."""
        assert b.metadatas is not None and b.documents is not None
        if self._codec is None:
            return [encode_metadata(m) for m in b.metadatas], list(b.documents)
        return self._codec.write(b.ids, b.metadatas, list(b.documents), action, conv)

    def _vb_check_batch(self, batch: Batch) -> None:
        """The checks a write of ``batch`` runs (the planner's look ahead): the same errors,
        nothing written, the database not asked, nothing counted."""
        if self._codec is not None:
            self._encode(batch, "write", Conversions())

    def _uris(self, b: Batch, s: slice) -> list[str] | None:
        assert b.vectors is not None
        return encode_vectors(b.vectors[s]) if self._exact_vectors else None

    # -- configuration -----------------------------------------------------------------
    def _native_metadata(self) -> dict[str, Any]:
        """The collection's Chroma metadata as stored now (another client may have changed it)."""
        with self._mapped_errors(f"read the metadata of {self.name!r}"):
            fresh = self._chroma.native.get_collection(self.name, embedding_function=None)
        return dict(fresh.metadata or {})

    def _read_config(self) -> dict[str, Any] | None:
        doc = stored_config(self._native_metadata())
        doc.pop("format", None)  # vecbridge's own marker, not part of the document
        if self.mapping is not None:  # the layout it is opened in (the URL's, or detected)
            doc["layout"] = self.mapping.layout
            doc["mapping"] = self.mapping.describe()  # with what the layout gives up; never stored
        return doc or None

    def _write_config(self, doc: dict[str, Any]) -> None:
        self._chroma.for_writing()
        full = {**{k: v for k, v in doc.items() if k != "mapping"}, "dimension": self.dimension, "metric": self.metric}
        if self.vecbridge_format:
            full["format"] = FORMAT
        meta = {k: v for k, v in self._native_metadata().items()
                if k not in _OLD_KEYS and not k.startswith("hnsw:") and v is not None}
        meta[CONFIG_KEY] = json.dumps(full, sort_keys=True)
        with self._mapped_errors(f"store the configuration of {self.name!r}"):
            self._native.modify(metadata=meta)

    # -- the hooks, as programs ----------------------------------------------------------
    # Each hook is a generator yielding ``(method, kwargs)`` calls of the chromadb collection
    # and receiving their answers: :meth:`_run` performs them with the sync collection,
    # :mod:`.aio` with chromadb's async one, so every decision exists once.

    def _run(self, action: str, make: Callable[[], Program], read: bool = False) -> Any:
        for attempt in range(1, READ_TRIES + 1):
            try:
                with self._mapped_errors(action):
                    return drive(self._native, make())
            except BackendError as exc:
                if not read:
                    raise
                time.sleep(self.retry_delay(exc, attempt))
        raise AssertionError("unreachable")

    def retry_delay(self, exc: BackendError, attempt: int) -> float:
        """How long to wait before reading again, or ``exc`` (or the exhausted error) raised:
        a read that met Chroma's index and records out of step is read again."""
        if not index_out_of_step(exc.__cause__):
            raise exc
        if attempt >= READ_TRIES:
            raise BackendUnavailableError(
                f"chroma: a read of {self.name!r} failed {READ_TRIES} times ({str(exc.__cause__)[:200]!r}): Chroma's "
                "index and its records disagreed, because a write of the same records was under way; "
                "retry the read.  On an embedded folder this also happens when another process writes "
                "the folder with chromadb itself: serve it with a Chroma server (chroma run --path "
                "FOLDER) and connect every process to chroma://host:port") from exc.__cause__
        return 0.01 * 2 ** attempt

    def _p_existing(self, ids: list[str], include: list[str]) -> Generator[Call, Any, dict[str, Any]]:
        """``{id: stored metadata}`` of those ``ids`` that exist."""
        found: dict[str, Any] = {}
        for s in self._slices(len(ids)):
            got = yield "get", {"ids": ids[s], "include": include}
            metas = got.get("metadatas") or [None] * len(got["ids"])
            found.update(zip(got["ids"], metas))
        return found

    def _p_existing_ids(self, ids: list[str]) -> Program:
        return list((yield from self._p_existing(ids, [])))

    def _p_add(self, b: Batch) -> Program:
        assert b.vectors is not None
        encoded, documents = self._encode(b, "add")
        existing = set((yield from self._p_existing(b.ids, [])))
        if existing:
            raise DuplicateIdError(self._duplicate_message([i for i in b.ids if i in existing]))
        for s in self._slices(len(b.ids)):
            yield "add", {"ids": b.ids[s], "embeddings": b.vectors[s], "documents": _any(documents[s]),
                          "metadatas": _any(encoded[s]), "uris": self._uris(b, s)}

    def _p_upsert(self, b: Batch) -> Program:
        assert b.vectors is not None
        encoded, documents = self._encode(b, "upsert")
        for s in self._slices(len(b.ids)):
            ids = b.ids[s]
            metas = encoded[s]
            docs = documents[s]
            old = yield from self._p_existing(ids, ["metadatas"])
            for i, id_ in enumerate(ids):
                if id_ not in old:
                    continue
                new = metas[i] or {}
                stale = [k for k in old[id_] or () if k not in new]
                if stale:  # Chroma merges metadata into the old; None deletes a key
                    metas[i] = {**new, **dict.fromkeys(stale)}
                if docs[i] is None:  # and keeps the old document when given none
                    docs[i] = NO_DOCUMENT
            yield "upsert", {"ids": ids, "embeddings": b.vectors[s], "metadatas": _any(metas),
                             "documents": _any(docs), "uris": self._uris(b, s)}

    def _p_delete(self, ids: list[str] | None, where: Node | None) -> Program:
        w = self._where(where)
        if ids is None:
            yield "delete", {"where": w if w is not None else self.EVERY_RECORD}
            return
        for s in self._slices(len(ids)):
            yield "delete", {"ids": ids[s], "where": w}

    def _p_get_ids(self, ids: list[str], where: Node | None, include: frozenset[str]) -> Program:
        w = self._where(where)
        out: list[Record] = []
        for s in self._slices(len(ids)):
            got = yield "get", {"ids": ids[s], "where": w, "include": self._fields(include)}
            out += self._records(got, include)
        return out

    def _p_get_page(self, where: Node | None, limit: int | None, offset: int, include: frozenset[str]) -> Program:
        # Chroma orders by its internal row id: a stable order
        got = yield "get", {"where": self._where(where), "limit": limit, "offset": offset or None,
                            "include": self._fields(include)}
        return self._records(got, include)

    def _p_count(self, where: Node | None) -> Program:
        w = self._where(where)
        if w is None:
            return int((yield "count", {}))
        # Chroma counts only whole collections: fetch the matching ids, nothing else
        return len((yield "get", {"where": w, "include": []})["ids"])

    def _p_query(self, vectors: np.ndarray, k: int, where: Node | None, include: frozenset[str]) -> Program:
        # a row shorter than the matches is completed by the core (its _exact_query)
        got = yield "query", {"query_embeddings": vectors, "n_results": k, "where": self._where(where),
                              "include": ["distances", *self._fields(include)]}
        return [self._hits(got, i, include) for i in range(len(vectors))]

    # -- the hooks (the core holds the collection's write lock around each write) ----------
    def _existing_ids(self, ids: list[str]) -> list[str]:
        return self._run("get", lambda: self._p_existing_ids(ids))  # type: ignore[no-any-return]

    def _add(self, b: Batch) -> None:
        self._chroma.for_writing()
        self._run("add", lambda: self._p_add(b))

    def _upsert(self, b: Batch) -> None:
        self._chroma.for_writing()
        self._run("upsert", lambda: self._p_upsert(b))

    def _delete(self, ids: list[str] | None, where: Node | None) -> None:
        self._chroma.for_writing()
        self._run("delete", lambda: self._p_delete(ids, where))

    def _get_ids(self, ids: list[str], where: Node | None, include: frozenset[str]) -> list[Record]:
        return self._run("get", lambda: self._p_get_ids(ids, where, include), read=True)  # type: ignore[no-any-return]

    def _get_page(self, where: Node | None, limit: int | None, offset: int, include: frozenset[str]) -> list[Record]:
        return self._run("get", lambda: self._p_get_page(where, limit, offset, include),  # type: ignore[no-any-return]
                         read=True)

    def _count(self, where: Node | None) -> int:
        return self._run("count", lambda: self._p_count(where), read=True)  # type: ignore[no-any-return]

    def _query(self, vectors: np.ndarray, k: int, where: Node | None, include: frozenset[str]) -> list[list[RawHit]]:
        return self._run("query", lambda: self._p_query(vectors, k, where, include),  # type: ignore[no-any-return]
                         read=True)

    def _scan(self, batch_size: int, include: frozenset[str]) -> Iterator[list[Record]]:
        # Chroma has no cursor, and a `where` on a stored sequence key would be evaluated by
        # grouping every metadata row of the collection on each page; an unfiltered
        # offset walks only its index of row ids, the cheapest page Chroma has.
        offset = 0
        while True:
            page = self._get_page(None, batch_size, offset, include)
            if page:
                yield page
            if len(page) < batch_size:
                return
            offset += len(page)

    # -- reading answers -----------------------------------------------------------------------
    def _vectors(self, uris: list[Any] | None, embeddings: Any) -> list[np.ndarray]:
        """The vectors of some records: Chroma's, or in a cosine collection the exact bytes
        kept in the uri -- when they agree with Chroma's to float32 rounding, so that a
        vector changed by another tool (which leaves the uri alone) is read as it is now."""
        vecs = _f32(embeddings) if len(embeddings) else np.empty((0, self.dimension), np.float32)
        if uris is None:
            return list(vecs)
        out = list(vecs)
        for i, text in enumerate(uris):
            exact = decode_vector(text, self.dimension)
            if exact is not None and np.all(np.abs(exact - vecs[i]) <= 1e-6 * np.abs(vecs[i])):
                out[i] = exact
        return out

    def _records(self, got: dict[str, Any], include: frozenset[str]) -> list[Record]:
        ids = got["ids"]
        metas = got.get("metadatas") if "metadata" in include else None
        vecs = self._vectors(got.get("uris"), got["embeddings"]) if "vector" in include else None
        docs = got.get("documents") if "document" in include else None
        out = []
        for i, id_ in enumerate(ids):
            meta, doc = self._decode(metas[i] if metas is not None else None, docs[i] if docs is not None else None,
                                     metas is not None)
            out.append(Record(id_, vecs[i] if vecs is not None else None, meta,
                              doc if docs is not None else None))
        return out

    def _decode(self, stored: dict[str, Any] | None, document: str | None, with_metadata: bool
                ) -> tuple[dict[str, Any] | None, str | None]:
        """A stored record's metadata (``None`` when not read) and document, as the contract's."""
        document = decode_document(document)
        if self._codec is None:
            return (decode_metadata(stored) if with_metadata else None), document
        meta, document = self._codec.read(stored, document)
        return (meta if with_metadata else None), document

    # -- partitions (see the module docstring: offset ranges of Chroma's own order) -----
    def _partitions(self, n: int) -> list[Partition]:
        total = self._count(None)
        k = max(1, min(n, total))  # an empty collection: one (empty) partition
        cuts = [total * i // k for i in range(k + 1)]
        extra = {"order": "chroma internal sequence id", "total": total}
        return [Partition(self.name, i, k, "offset", cuts[i], cuts[i + 1], dict(extra)) for i in range(k)]

    def _scan_partition(self, batch_size: int, include: frozenset[str], partition: Partition
                        ) -> Iterator[list[Record]]:
        if partition.kind != "offset":
            yield from super()._scan_partition(batch_size, include, partition)
            return
        start, end = int(partition.lower), int(partition.upper)
        total = partition.extra.get("total")
        now = self._count(None)
        if total != now:
            # positions moved: reading on would skip or repeat records silently
            raise BackendError(
                f"chroma: partition {partition.index} of {self.name!r} was cut for {total} records, the collection "
                f"now holds {now}: Chroma's partitions are offset ranges, stable only while nobody writes the "
                "collection; make the partitions again (collection.partitions(n)) and copy without writers")
        offset = start
        while offset < end:
            page = self._get_page(None, min(batch_size, end - offset), offset, include)
            if not page:
                return
            yield page
            offset += len(page)

    def _hits(self, got: dict[str, Any], i: int, include: frozenset[str]) -> list[RawHit]:
        ids, dists = got["ids"][i], got["distances"][i]
        metas = got["metadatas"][i] if "metadata" in include else None
        docs = got["documents"][i] if "document" in include else None
        vecs = None
        if "vector" in include:
            uris = got.get("uris")
            vecs = self._vectors(uris[i] if uris is not None else None, got["embeddings"][i])
        out = []
        for j, id_ in enumerate(ids):
            meta, doc = self._decode(metas[j] if metas is not None else None, docs[j] if docs is not None else None,
                                     metas is not None)
            out.append(RawHit(id_, dists[j], meta, doc if docs is not None else None,
                              vecs[j] if vecs is not None else None))
        return out
