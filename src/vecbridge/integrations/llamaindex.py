"""LlamaIndex on any vecbridge URL: ``VecbridgeVectorStore`` and ``VecbridgeEmbedding``.

    from llama_index.core import StorageContext, VectorStoreIndex
    from vecbridge.integrations.llamaindex import VecbridgeEmbedding, VecbridgeVectorStore

    store = VecbridgeVectorStore("qdrant:///data/qdrant?collection=docs")
    index = VectorStoreIndex.from_documents(
        documents, storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=VecbridgeEmbedding("sentence-transformers:all-MiniLM-L6-v2"))

Records are written in the layout of LlamaIndex's own vector stores, so that a node comes
back whole: the text is the record's document; the metadata holds the node's metadata
plus ``_node_content`` (the node as JSON, without text and embedding: relationships,
ids, templates, node type), ``_node_type`` and ``document_id``/``doc_id``/``ref_doc_id``
(what ``delete(ref_doc_id)`` finds). A metadata value vecbridge cannot hold (``None``, a
nested dict, a list of mixed types, an empty list) is left out of the flat metadata; it
survives in ``_node_content``, and a filter sees that key as missing, which is what
LlamaIndex's rules say for ``None`` (and ``IS_EMPTY`` says for an empty list).

Filters: :func:`to_where` translates ``MetadataFilters`` into vecbridge's language with
the semantics of LlamaIndex's reference evaluator
(``llama_index.core.vector_stores.utils.build_metadata_filter_fn``): a missing key fails
every operator but ``!=`` and ``nin``; ``NOT`` holds when none of its filters does;
Python's ``True == 1`` (see :mod:`vecbridge.integrations._common`). An operator or value
that has no meaning in vecbridge's language (``text_match``, ranges over strings, ``==``
against a list, ``None`` values) raises ``UnsupportedFilterError`` naming it: a condition
is never dropped. ``contains``/``any``/``all`` test list membership, their documented
meaning; on a string field the reference evaluator tests a substring (Python's ``in``),
which vecbridge's language cannot say (docs/frameworks/llamaindex.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.indices.query.embedding_utils import get_top_k_mmr_embeddings
from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from vecbridge.errors import InvalidMetadataError, UnsupportedFeatureError, UnsupportedFilterError
from vecbridge.scores import exact_top_k
from vecbridge.validation import validate_metadata

from ._common import CollectionHandle, Where, and_, not_, or_, py_contains, py_eq, py_in, py_range

__all__ = ["VecbridgeEmbedding", "VecbridgeVectorStore", "to_where"]

_RANGES = {FilterOperator.GT: "$gt", FilterOperator.GTE: "$gte", FilterOperator.LT: "$lt", FilterOperator.LTE: "$lte"}
_LIST_OPS = (FilterOperator.IN, FilterOperator.NIN, FilterOperator.ANY, FilterOperator.ALL)


class VecbridgeEmbedding(BaseEmbedding):
    """A vecbridge embedder (``"sentence-transformers:…"``, ``"openai:…"``, or an ``Embedder``)
    as a LlamaIndex embedding model."""

    _embedder: Any = PrivateAttr()

    def __init__(self, embedder: Any, **kwargs: Any) -> None:
        from vecbridge.embeddings import get_embedder

        emb = get_embedder(embedder)
        kwargs.setdefault("model_name", emb.spec)
        super().__init__(**kwargs)
        self._embedder = emb

    @classmethod
    def class_name(cls) -> str:
        return "VecbridgeEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return [float(x) for x in self._embedder.embed_query(query)]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embeddings([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return np.asarray(self._embedder.embed_documents(texts), dtype=np.float64).tolist()  # type: ignore[no-any-return]

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return self._get_text_embedding(text)


# -- filters ----------------------------------------------------------------------------------


def _unsupported(f: MetadataFilter, why: str) -> UnsupportedFilterError:
    return UnsupportedFilterError(
        f"LlamaIndex filter {f.key!r} {f.operator.value} {f.value!r}: {why}; vecbridge's filter language "
        "(docs/filters.md) has no counterpart, so it is refused rather than dropped")


def _leaf(f: MetadataFilter) -> Where:
    op, key, value = f.operator, f.key, f.value
    if not key or key.startswith("$") or key.startswith("_vb"):
        raise _unsupported(f, "vecbridge metadata keys are non-empty and do not start with '$' or '_vb'")
    if op == FilterOperator.IS_EMPTY:  # None, "" or [] — and None / [] are never stored (see the module doc)
        return or_([{key: {"$exists": False}}, {key: {"$eq": ""}}])
    if value is None:
        raise _unsupported(f, "a None value (use the is_empty operator to test for a missing value)")
    if op in (FilterOperator.TEXT_MATCH, FilterOperator.TEXT_MATCH_INSENSITIVE):
        raise _unsupported(f, "substring matching")
    if op in _LIST_OPS:
        if not isinstance(value, list):
            raise _unsupported(f, f"{op.value} takes a list (on a string Python's `in` would test a substring)")
        if op == FilterOperator.IN:
            return py_in(key, value)
        if op == FilterOperator.NIN:
            return not_(py_in(key, value))
        if not value and op == FilterOperator.ALL:
            # all([]) is true of any stored value, even one this store leaves out (an empty list)
            raise _unsupported(f, "all with an empty list")
        parts = [py_contains(key, v) for v in value]
        return or_(parts) if op == FilterOperator.ANY else and_(parts)
    if isinstance(value, list):
        raise _unsupported(f, f"{op.value} against a list")
    if op == FilterOperator.EQ:
        return py_eq(key, value)
    if op == FilterOperator.NE:
        return not_(py_eq(key, value))
    if op == FilterOperator.CONTAINS:
        return py_contains(key, value)
    if op in _RANGES:
        if isinstance(value, str):
            raise _unsupported(f, "a range over strings (vecbridge's ranges take numbers)")
        return py_range(key, _RANGES[op], value)
    raise _unsupported(f, f"the operator {op.value!r}")


def _node(filters: MetadataFilters) -> Where:
    if not filters.filters:
        return True  # LlamaIndex: no filters match every node, whatever the condition
    parts = [_node(f) if isinstance(f, MetadataFilters) else _leaf(f) for f in filters.filters]
    cond = filters.condition or FilterCondition.AND
    if cond == FilterCondition.AND:
        return and_(parts)
    if cond == FilterCondition.OR:
        return or_(parts)
    if cond == FilterCondition.NOT:
        return not_(or_(parts))  # LlamaIndex: NOT holds when none of its filters does
    raise UnsupportedFilterError(f"LlamaIndex filter condition {cond!r} has no counterpart in vecbridge")


def to_where(filters: MetadataFilters | None) -> Where:
    """``MetadataFilters`` as a vecbridge ``where``: a dict, or ``True`` (every record) / ``False`` (none).

    An empty ``MetadataFilters`` matches every record, as in LlamaIndex's reference evaluator.
    """
    return True if filters is None else _node(filters)


# -- the store --------------------------------------------------------------------------------


def _flat(metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata values vecbridge can hold (see the module docstring for the rest)."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if value is None or (isinstance(value, list) and not value):
            continue
        try:
            out.update(validate_metadata({key: value}))
        except InvalidMetadataError:
            continue
    return out


class VecbridgeVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store over any vecbridge URL (or an open ``Collection``).

    A URL naming a collection that does not exist yet creates it on the first ``add``, with
    the nodes' embedding dimension, ``metric`` and ``index``. Scores are the contract's
    (cosine similarity for cosine, ``-distance`` for l2, the dot product for ip).
    """

    stores_text: bool = True
    flat_metadata: bool = False
    url: str | None = None
    metric: str = "cosine"
    mmr_prefetch_factor: float = 4.0

    _handle: CollectionHandle = PrivateAttr()

    def __init__(self, url_or_collection: Any, *, metric: str = "cosine", index: dict[str, Any] | None = None,
                 mmr_prefetch_factor: float = 4.0, **kwargs: Any) -> None:
        handle = CollectionHandle(url_or_collection, metric=metric, index=index)
        super().__init__(url=str(handle.url) if handle.url is not None else None, metric=metric,  # type: ignore[call-arg]
                         mmr_prefetch_factor=mmr_prefetch_factor, **kwargs)
        self._handle = handle

    @classmethod
    def class_name(cls) -> str:
        return "VecbridgeVectorStore"

    @property
    def client(self) -> Any:
        """The vecbridge collection (``None`` until it exists)."""
        return self._handle.get()

    def close(self) -> None:
        self._handle.close()

    # writing

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        if not nodes:
            return []
        ids, vectors, metadatas, texts = [], [], [], []
        for node in nodes:
            ids.append(node.node_id)
            vectors.append(node.get_embedding())
            metadatas.append(_flat(node_to_metadata_dict(node, remove_text=True, flat_metadata=False)))
            texts.append(node.get_content(metadata_mode=MetadataMode.NONE))
        coll = self._handle.for_write(len(vectors[0]))
        coll.upsert(ids, vectors, metadatas, texts)  # LlamaIndex's add replaces a node of the same id
        return ids

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        coll = self._handle.get()
        if coll is not None:
            coll.delete(where={"ref_doc_id": ref_doc_id})

    def delete_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None,
                     **delete_kwargs: Any) -> None:
        coll = self._handle.get()
        where = to_where(filters)
        if coll is None or where is False or (node_ids is not None and not node_ids):
            return
        if node_ids is None and where is True:
            self._handle.clear()
            return
        coll.delete(ids=node_ids, where=None if where is True else where)

    def clear(self) -> None:
        self._handle.clear()

    # reading

    def get_nodes(self, node_ids: list[str] | None = None, filters: MetadataFilters | None = None,
                  **kwargs: Any) -> list[BaseNode]:
        coll = self._handle.get()
        where = to_where(filters)
        if coll is None or where is False or (node_ids is not None and not node_ids):
            return []
        records = coll.get(ids=node_ids, where=None if where is True else where)
        return [_to_node(r.id, r.metadata, r.document) for r in records]

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        if query.mode not in (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR):
            raise UnsupportedFeatureError(
                f"VecbridgeVectorStore answers the default and MMR query modes, not {query.mode.value!r}")
        if query.query_embedding is None:
            raise ValueError("VecbridgeVectorStore.query needs query.query_embedding")
        coll = self._handle.get()
        where = to_where(query.filters)
        if query.doc_ids is not None:
            where = and_([where, py_in("ref_doc_id", query.doc_ids)])
        k = query.similarity_top_k
        if coll is None or where is False or k <= 0:
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        mmr = query.mode == VectorStoreQueryMode.MMR
        fetch = max(k, int(k * float(kwargs.get("mmr_prefetch_factor", self.mmr_prefetch_factor)))) if mmr else k
        include = ("metadata", "document", "vector") if mmr else ("metadata", "document")
        if query.node_ids:  # LlamaIndex passes [] for "no restriction" (VectorStoreIndex.as_retriever does)
            hits = self._among(coll, query.query_embedding, query.node_ids, where, fetch)
        else:
            hits = [(h.id, h.score, h.metadata, h.document, h.vector) for h in
                    coll.query(query.query_embedding, k=fetch, where=None if where is True else where,
                               include=include)]
        if mmr:
            threshold = kwargs.get("mmr_threshold", query.mmr_threshold)
            sims, order = get_top_k_mmr_embeddings(
                list(query.query_embedding), [np.asarray(h[4], dtype=np.float64).tolist() for h in hits],
                similarity_top_k=k, embedding_ids=list(range(len(hits))), mmr_threshold=threshold)
            hits = [hits[i] for i in order]
            scores = [float(s) for s in sims]
        else:
            scores = [float(h[1]) for h in hits]
        return VectorStoreQueryResult(nodes=[_to_node(h[0], h[2], h[3]) for h in hits],
                                      similarities=scores, ids=[h[0] for h in hits])

    def _among(self, coll: Any, vector: Any, node_ids: list[str], where: Where, k: int) -> list[tuple[Any, ...]]:
        """The best ``k`` of the named nodes: vecbridge's queries take no id list, so these few
        records are read and ranked exactly, with the contract's scores."""
        records = coll.get(ids=node_ids, where=None if where is True else where,
                           include=("metadata", "document", "vector"))
        if not records:
            return []
        vectors = np.stack([r.vector for r in records])
        dist, order = exact_top_k(coll.metric, np.asarray([vector], dtype=np.float32), vectors, k)
        out = []
        for j, d in zip(order[0], dist[0]):
            r = records[int(j)]
            score = 1.0 - float(d) if coll.metric == "cosine" else -float(d)
            out.append((r.id, score, r.metadata, r.document, r.vector))
        return out


def _to_node(id_: str, metadata: dict[str, Any] | None, text: str | None) -> BaseNode:
    metadata = metadata or {}
    if "_node_content" in metadata:
        return metadata_dict_to_node(metadata, text=text)
    # a record another client wrote: a text node of its document and metadata
    return TextNode(id_=id_, text=text or "", metadata=dict(metadata))
