"""Haystack on any vecbridge URL: ``VecbridgeDocumentStore`` and ``VecbridgeEmbeddingRetriever``.

    from vecbridge.integrations.haystack import VecbridgeDocumentStore, VecbridgeEmbeddingRetriever

    store = VecbridgeDocumentStore("pgvector:///data/pg?collection=docs")
    store.write_documents(documents)                      # Documents with embeddings
    retriever = VecbridgeEmbeddingRetriever(document_store=store, top_k=5)

A Document is one record: its id, its ``content`` as the document, its ``embedding`` as the
vector and its ``meta`` as the metadata. What vecbridge records cannot hold directly goes
into metadata keys of this bridge, all starting with ``_haystack_`` (a meta key of that
prefix is refused):

* ``_haystack_meta`` — the whole ``meta`` as JSON, written only when it holds something
  flat metadata cannot (``None``, nested dicts, lists of mixed types); the flat keys are
  still written for filters, a nested dict as dotted keys (``meta.a.b`` filters ``a.b``);
* ``_haystack_blob``, ``_haystack_sparse`` — ``blob`` and ``sparse_embedding`` as JSON;
* ``_haystack_noemb`` — a Document without an embedding: a record needs a vector, so it
  gets a placeholder that retrieval never returns;
* ``_haystack_{wall,utc}_{s,us}.KEY``, ``_haystack_tz.KEY`` — an ISO-8601 date string under
  KEY as integer seconds and microseconds (wall clock, and UTC for an aware date) and
  whether it names a zone, because Haystack's ``>``/``<`` (and ``==``) compare dates and
  vecbridge's ranges take numbers.

Filters translate into vecbridge's language with the semantics of Haystack's reference,
``haystack.utils.filters.document_matches_filter``: Python's equality (``True == 1``),
``== None`` is "missing or None" (``$exists``), a range against ``None`` matches nothing,
dates compare as dates (a naive and an aware one by the aware one's zone, as Haystack
does). What cannot be said raises :class:`HaystackFilterError`, both a Haystack
``FilterError`` and a ``vecbridge.UnsupportedFilterError``: a field other than
``meta.*``, ``==`` against a list or dict, a range over a string that is not an ISO date.
Documented differences: where Haystack raises on a stored value that does not compare
(a number against a date), this store matches nothing for that record; strings that only
``dateutil``'s lenient parser reads as dates are not dates here.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from haystack import component, default_from_dict, default_to_dict
from haystack.dataclasses import ByteStream, Document, SparseEmbedding
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy, FilterPolicy, apply_filter_policy
from haystack.errors import FilterError
from haystack.utils import Secret, deserialize_secrets_inplace

from vecbridge.errors import DuplicateIdError, InvalidMetadataError, UnsupportedFilterError
from vecbridge.url import URL
from vecbridge.validation import validate_metadata

from ._common import CollectionHandle, Where, and_, not_, or_, py_eq, py_range

__all__ = ["HaystackFilterError", "VecbridgeDocumentStore", "VecbridgeEmbeddingRetriever", "to_where"]

PREFIX = "_haystack_"
_META, _BLOB, _SPARSE, _NOEMB = PREFIX + "meta", PREFIX + "blob", PREFIX + "sparse", PREFIX + "noemb"
_RANGES = {">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte"}
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = datetime(1970, 1, 1, tzinfo=timezone.utc)


class HaystackFilterError(FilterError, UnsupportedFilterError):
    """A Haystack filter that is malformed or that vecbridge's filter language cannot say."""


# -- dates ------------------------------------------------------------------------------------


def _iso_date(value: Any) -> datetime | None:
    """``value`` as a datetime when it is an ISO-8601 string starting ``YYYY-MM-DD`` (the shape
    Haystack's own equality accepts), else ``None``."""
    if not (isinstance(value, str) and len(value) >= 10 and value[4] == "-" and value[7] == "-"
            and value[:4].isdigit() and value[5:7].isdigit() and value[8:10].isdigit()
            and (len(value) == 10 or value[10] in "Tt ")):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _split(delta: timedelta) -> tuple[int, int]:
    # whole seconds and microseconds as two integers: exact for every year, where one number
    # of microseconds would pass 2**53 (the largest integer every backend filters exactly)
    return delta.days * 86400 + delta.seconds, delta.microseconds


def _date_keys(key: str, dt: datetime) -> dict[str, int]:
    ws, wus = _split(dt.replace(tzinfo=None) - _EPOCH)
    out = {f"{PREFIX}wall_s.{key}": ws, f"{PREFIX}wall_us.{key}": wus, f"{PREFIX}tz.{key}": dt.tzinfo is not None}
    if dt.tzinfo is not None:
        us, uus = _split(dt - _EPOCH_UTC)
        out.update({f"{PREFIX}utc_s.{key}": us, f"{PREFIX}utc_us.{key}": uus})
    return out


def _pair_cmp(kind: str, key: str, op: str, at: tuple[int, int]) -> Where:
    """(seconds, microseconds) under ``key`` compared lexicographically with ``at``."""
    s, us = f"{PREFIX}{kind}_s.{key}", f"{PREFIX}{kind}_us.{key}"
    if op == "$eq":
        return {s: {"$eq": at[0]}, us: {"$eq": at[1]}}
    strict = "$gt" if op in ("$gt", "$gte") else "$lt"
    return or_([{s: {strict: at[0]}}, {s: {"$eq": at[0]}, us: {op: at[1]}}])


def _date_cmp(key: str, op: str, dt: datetime) -> Where:
    wall = _pair_cmp("wall", key, op, _split(dt.replace(tzinfo=None) - _EPOCH))
    if dt.tzinfo is None:
        return wall  # a naive filter date takes each stored date's zone: wall clocks compare
    # an aware filter date: a naive stored date takes its zone (wall clocks), an aware one compares in UTC
    return or_([and_([{f"{PREFIX}tz.{key}": {"$eq": False}}, wall]),
                _pair_cmp("utc", key, op, _split(dt - _EPOCH_UTC))])


# -- filters ----------------------------------------------------------------------------------


def _key(field: Any) -> str:
    if not isinstance(field, str) or not field.startswith("meta.") or len(field) == len("meta."):
        raise HaystackFilterError(
            f"filter field {field!r}: vecbridge filters a Document's metadata only, as 'meta.<key>'")
    key = field[len("meta."):]
    if key.startswith(PREFIX) or key.startswith("$") or key.startswith("_vb"):
        raise HaystackFilterError(f"filter field {field!r}: keys starting with {PREFIX!r}, '$' or '_vb' are reserved")
    return key


def _equal(key: str, value: Any, field: str) -> Where:
    if value is None:
        return {key: {"$exists": False}}  # None == None: a missing key, or a None value (never stored)
    if isinstance(value, (list, dict, tuple)):
        raise HaystackFilterError(f"filter {field!r} == {value!r}: vecbridge compares a field with scalars only")
    if isinstance(value, datetime):
        return _date_cmp(key, "$eq", value)
    eq = py_eq(key, value)
    dt = _iso_date(value)
    return or_([eq, _date_cmp(key, "$eq", dt)]) if dt is not None else eq


def _comparison(cond: dict[str, Any]) -> Where:
    for part in ("operator", "value"):
        if part not in cond:
            raise HaystackFilterError(f"'{part}' key missing in {cond}")
    field, op, value = cond["field"], cond["operator"], cond["value"]
    key = _key(field)
    if op == "==":
        return _equal(key, value, field)
    if op == "!=":
        return not_(_equal(key, value, field))
    if op in ("in", "not in"):
        if not isinstance(value, list):
            raise HaystackFilterError(f"filter {field!r} {op}: the value must be a list, got {type(value).__name__}")
        found = or_([_equal(key, v, field) for v in value])
        return found if op == "in" else not_(found)
    if op in _RANGES:
        if value is None:
            return False  # Haystack: None compares with nothing
        if isinstance(value, (list, dict, tuple)):
            raise HaystackFilterError(f"filter {field!r} {op}: the value can't be of type {type(value).__name__}")
        if isinstance(value, str):
            try:
                dt = datetime.fromisoformat(value)
            except ValueError:
                raise HaystackFilterError(
                    f"filter {field!r} {op} {value!r}: strings compare only as ISO-8601 dates") from None
            return _date_cmp(key, _RANGES[op], dt)
        if isinstance(value, datetime):
            return _date_cmp(key, _RANGES[op], value)
        if not isinstance(value, (int, float)):
            raise HaystackFilterError(f"filter {field!r} {op}: can't compare with {type(value).__name__}")
        return py_range(key, _RANGES[op], value)
    raise HaystackFilterError(f"filter {field!r}: unknown comparison operator {op!r}; "
                              "use ==, !=, >, >=, <, <=, in, not in")


def _condition(cond: Any) -> Where:
    if not isinstance(cond, dict):
        raise HaystackFilterError(f"a filter is a dict, got {type(cond).__name__} {cond!r}")
    if "field" in cond:
        return _comparison(cond)
    if "operator" not in cond:
        raise HaystackFilterError(f"'operator' key missing in {cond}")
    if "conditions" not in cond:
        raise HaystackFilterError(f"'conditions' key missing in {cond}")
    op, conditions = cond["operator"], cond["conditions"]
    if not isinstance(conditions, list):
        raise HaystackFilterError(f"'conditions' must be a list in {cond}")
    parts = [_condition(c) for c in conditions]
    if op == "AND":
        return and_(parts)
    if op == "OR":
        return or_(parts)
    if op == "NOT":
        return not_(and_(parts))  # Haystack: NOT negates the AND of its conditions
    raise HaystackFilterError(f"unknown logical operator {op!r}; use AND, OR or NOT")


def to_where(filters: dict[str, Any] | None) -> Where:
    """A Haystack filter as a vecbridge ``where``: a dict, or ``True`` (every record) / ``False`` (none)."""
    if not filters:
        return True
    return _condition(filters)


# -- documents <-> records --------------------------------------------------------------------


def _flatten(meta: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _record_metadata(doc: Document) -> dict[str, Any]:
    out: dict[str, Any] = {}
    exact = True
    for key, value in _flatten(doc.meta).items():
        if isinstance(key, str) and key.startswith(PREFIX):
            raise ValueError(f"Document {doc.id}: the meta key {key!r} is reserved (keys starting with {PREFIX!r})")
        if value is None:
            exact = False
            continue
        try:
            out.update(validate_metadata({key: value}, where=f"Document {doc.id} meta"))
        except InvalidMetadataError:
            if not isinstance(key, str) or not key or key.startswith("$") or key.startswith("_vb"):
                raise
            exact = False
            continue
        dt = _iso_date(value)
        if dt is not None:
            out.update(_date_keys(key, dt))
    if not exact or any(isinstance(v, dict) for v in doc.meta.values()):
        try:
            out[_META] = json.dumps(doc.meta, ensure_ascii=False)
        except TypeError as exc:
            raise ValueError(f"Document {doc.id}: meta must be JSON-serialisable ({exc})") from exc
    if doc.blob is not None:
        out[_BLOB] = json.dumps({"data": base64.b64encode(doc.blob.data).decode("ascii"),
                                 "mime_type": doc.blob.mime_type, "meta": doc.blob.meta})
    if doc.sparse_embedding is not None:
        out[_SPARSE] = json.dumps(doc.sparse_embedding.to_dict())
    if doc.embedding is None:
        out[_NOEMB] = True
    return out


def _to_document(record: Any, score: float | None = None, with_embedding: bool = True) -> Document:
    md = dict(record.metadata or {})
    meta = json.loads(md[_META]) if _META in md else {k: v for k, v in md.items() if not k.startswith(PREFIX)}
    blob = None
    if _BLOB in md:
        b = json.loads(md[_BLOB])
        blob = ByteStream(data=base64.b64decode(b["data"]), mime_type=b.get("mime_type"), meta=b.get("meta") or {})
    sparse = SparseEmbedding.from_dict(json.loads(md[_SPARSE])) if _SPARSE in md else None
    embedding = None
    if with_embedding and not md.get(_NOEMB) and record.vector is not None:
        embedding = [float(x) for x in record.vector]
    return Document(id=record.id, content=record.document, meta=meta, embedding=embedding, blob=blob,
                    sparse_embedding=sparse, score=score)


# -- the store --------------------------------------------------------------------------------


class VecbridgeDocumentStore:
    """A Haystack ``DocumentStore`` over any vecbridge URL.

    :param url: a vecbridge URL with ``?collection=NAME``, or a ``Secret`` holding one (a
        URL with a password can only be serialised through a ``Secret``).
    :param embedding_dim: the dimension of a collection this store creates; by default that of
        the first embedding written.
    :param metric: ``cosine``, ``l2`` or ``ip`` for a collection this store creates.
    :param index: vecbridge's ``index=`` for a collection this store creates.
    """

    def __init__(self, url: str | Secret, *, embedding_dim: int | None = None, metric: str = "cosine",
                 index: dict[str, Any] | None = None) -> None:
        self.url = url
        self.embedding_dim = embedding_dim
        self.metric = metric
        self.index = index
        text = url.resolve_value() if isinstance(url, Secret) else url
        if not text:
            raise ValueError("VecbridgeDocumentStore needs a URL (the Secret resolved to nothing)")
        self._handle = CollectionHandle(text, dimension=embedding_dim, metric=metric, index=index)

    def __repr__(self) -> str:
        return f"VecbridgeDocumentStore({str(self._handle.url)!r})"

    def to_dict(self) -> dict[str, Any]:
        url: Any = self.url
        if isinstance(url, Secret):
            url = url.to_dict()
        elif URL.parse(url).password is not None:
            raise ValueError("this store's URL holds a password, which serialisation would write out: give the store "
                             "Secret.from_env_var('NAME') instead of the URL text")
        return default_to_dict(self, url=url, embedding_dim=self.embedding_dim, metric=self.metric, index=self.index)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VecbridgeDocumentStore:
        if isinstance(data.get("init_parameters", {}).get("url"), dict):
            deserialize_secrets_inplace(data["init_parameters"], keys=["url"])
        return default_from_dict(cls, data)  # type: ignore[no-any-return]

    @property
    def collection(self) -> Any:
        """The vecbridge collection (``None`` until the first write creates it)."""
        return self._handle.get()

    def close(self) -> None:
        self._handle.close()

    def delete_collection(self) -> None:
        """Delete the collection itself (a later write creates it again)."""
        self._handle.drop()

    # counting and reading

    def count_documents(self) -> int:
        coll = self._handle.get()
        return 0 if coll is None else int(coll.count())

    def count_documents_by_filter(self, filters: dict[str, Any]) -> int:
        where = to_where(filters)
        coll = self._handle.get()
        if coll is None or where is False:
            return 0
        return int(coll.count(where=None if where is True else where))

    def filter_documents(self, filters: dict[str, Any] | None = None) -> list[Document]:
        where = to_where(filters)
        coll = self._handle.get()
        if coll is None or where is False:
            return []
        records = coll.get(where=None if where is True else where, include=("metadata", "document", "vector"))
        return [_to_document(r) for r in records]

    # writing

    def write_documents(self, documents: list[Document], policy: DuplicatePolicy = DuplicatePolicy.NONE) -> int:
        if not isinstance(documents, list) or not all(isinstance(d, Document) for d in documents):
            raise ValueError("write_documents takes a list of haystack Document objects")
        if policy == DuplicatePolicy.NONE:
            policy = DuplicatePolicy.FAIL
        if not documents:
            return 0
        by_id: dict[str, Document] = {}
        for doc in documents:
            if doc.id in by_id:
                if policy == DuplicatePolicy.FAIL:
                    raise DuplicateDocumentError(f"ID '{doc.id}' appears twice in the documents written")
                if policy == DuplicatePolicy.SKIP:
                    continue
            by_id[doc.id] = doc  # OVERWRITE: the last one wins, as writing them in turn would
        docs = list(by_id.values())
        dim = next((len(d.embedding) for d in docs if d.embedding is not None), None)
        coll = self._handle.for_write(dim)
        if policy == DuplicatePolicy.OVERWRITE:
            self._put(coll, docs, coll.upsert)
            return len(documents)
        if policy == DuplicatePolicy.SKIP:
            for _ in range(3):  # another writer may add one of them between the look and the write
                known = {r.id for r in coll.get(ids=[d.id for d in docs], include=())}
                fresh = [d for d in docs if d.id not in known]
                try:
                    self._put(coll, fresh, coll.add)
                    return len(fresh)
                except DuplicateIdError:
                    continue
            raise DuplicateDocumentError("documents kept being written by another client while skipping duplicates")
        try:
            self._put(coll, docs, coll.add)
        except DuplicateIdError as exc:
            raise DuplicateDocumentError(f"a document with the same id exists already: {exc}") from exc
        return len(docs)

    @staticmethod
    def _put(coll: Any, docs: list[Document], write: Any) -> None:
        if not docs:
            return
        placeholder = [1.0] + [0.0] * (coll.dimension - 1)  # never zero: a cosine collection refuses that
        write([d.id for d in docs], [d.embedding if d.embedding is not None else placeholder for d in docs],
              [_record_metadata(d) for d in docs], [d.content for d in docs])

    # deleting

    def delete_documents(self, document_ids: list[str]) -> None:
        coll = self._handle.get()
        if coll is not None and document_ids:
            coll.delete(ids=list(document_ids))

    def delete_all_documents(self, recreate_index: bool = False) -> None:
        """Delete every document; with ``recreate_index``, drop the collection and create it
        again empty, with the same dimension and metric (through a URL only)."""
        coll = self._handle.get()
        if coll is None:
            return
        if not recreate_index:
            self._handle.clear()
            return
        dimension, metric = coll.dimension, coll.metric
        self._handle.drop()
        self._handle.metric = metric
        self._handle.for_write(dimension)

    def delete_by_filter(self, filters: dict[str, Any]) -> int:
        where = to_where(filters)
        coll = self._handle.get()
        if coll is None or where is False:
            return 0
        if where is True:
            n = coll.count()
            self._handle.clear()
            return int(n)
        n = coll.count(where=where)
        coll.delete(where=where)
        return int(n)

    # retrieval

    def _embedding_retrieval(self, query_embedding: list[float], filters: dict[str, Any] | None = None,
                             top_k: int = 10, return_embedding: bool = False) -> list[Document]:
        where = and_([to_where(filters), {_NOEMB: {"$ne": True}}])  # placeholders are no answers
        coll = self._handle.get()
        if coll is None or where is False or top_k <= 0:
            return []
        include = ("metadata", "document", "vector") if return_embedding else ("metadata", "document")
        hits = coll.query(query_embedding, k=top_k, where=where, include=include)
        return [_to_document(h, score=float(h.score), with_embedding=return_embedding) for h in hits]


@component
class VecbridgeEmbeddingRetriever:
    """Retrieves the Documents nearest to a query embedding from a :class:`VecbridgeDocumentStore`.

    ``score`` is the contract's: the cosine similarity in a cosine collection, ``-distance``
    for l2, the dot product for ip.
    """

    def __init__(self, document_store: VecbridgeDocumentStore, filters: dict[str, Any] | None = None,
                 top_k: int = 10, filter_policy: FilterPolicy = FilterPolicy.REPLACE,
                 return_embedding: bool = False) -> None:
        if not isinstance(document_store, VecbridgeDocumentStore):
            raise ValueError("document_store must be a VecbridgeDocumentStore")
        self.document_store = document_store
        self.filters = filters or {}
        self.top_k = top_k
        self.filter_policy = FilterPolicy.from_str(filter_policy) if isinstance(filter_policy, str) else filter_policy
        self.return_embedding = return_embedding

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, document_store=self.document_store.to_dict(), filters=self.filters,
                               top_k=self.top_k, filter_policy=self.filter_policy.value,
                               return_embedding=self.return_embedding)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VecbridgeEmbeddingRetriever:
        params = data["init_parameters"]
        params["document_store"] = VecbridgeDocumentStore.from_dict(params["document_store"])
        if "filter_policy" in params:
            params["filter_policy"] = FilterPolicy.from_str(params["filter_policy"])
        return default_from_dict(cls, data)  # type: ignore[no-any-return]

    @component.output_types(documents=list[Document])
    def run(self, query_embedding: list[float], filters: dict[str, Any] | None = None,
            top_k: int | None = None) -> dict[str, list[Document]]:
        filters = apply_filter_policy(self.filter_policy, self.filters, filters)
        docs = self.document_store._embedding_retrieval(query_embedding, filters=filters,
                                                        top_k=top_k or self.top_k,
                                                        return_embedding=self.return_embedding)
        return {"documents": docs}
