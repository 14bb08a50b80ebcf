"""A LangChain and a LlamaIndex application on Qdrant, written with the official packages only
(langchain-qdrant 1.1, llama-index-vector-stores-qdrant 0.10): the writers and readers that
the layout tests (and the cross-database tests) compare vecbridge with.

Each function takes a ``qdrant_client.QdrantClient`` (or a vecbridge ``qdrant://`` URL, opened
with :func:`native` for the length of the call) and returns plain data: ids, texts, metadata,
scores.  Qdrant's local mode admits one client per folder: close vecbridge's client before
calling these on a folder, and let them return before vecbridge opens it again.  In memory
pass vecbridge's own engine (``vecbridge_client._native``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from qdrant_client import QdrantClient, models

DIM = 16


def embedding(size: int = DIM) -> Any:
    """The deterministic fake embedding both sides use (LangChain's own)."""
    from langchain_core.embeddings import DeterministicFakeEmbedding

    return DeterministicFakeEmbedding(size=size)


@contextlib.contextmanager
def native(where: str | QdrantClient) -> Iterator[QdrantClient]:
    """qdrant-client for a vecbridge ``qdrant://`` URL (local folder or server), or the client given."""
    if isinstance(where, QdrantClient):
        yield where
        return
    from vecbridge.url import URL

    u = URL.parse(where) if isinstance(where, str) else where
    if u.host is None:
        if not u.path:
            raise ValueError("an in-memory database is private to its client: pass that client")
        client = QdrantClient(path=u.path)
    else:
        client = QdrantClient(url=f"{'https' if u.driver == 'https' else 'http'}://{u.host}:{u.port or 6333}")
    try:
        yield client
    finally:
        client.close()


def _lc_filter(where: Mapping[str, Any] | None) -> models.Filter | None:
    """Equality on metadata keys, as a LangChain user writes it for langchain-qdrant."""
    if not where:
        return None
    return models.Filter(must=[models.FieldCondition(key=f"metadata.{k}", match=models.MatchValue(value=v))
                               for k, v in where.items()])


# -- LangChain -------------------------------------------------------------------------
def langchain_store(client: QdrantClient, collection: str, vector_name: str = "") -> Any:
    from langchain_qdrant import QdrantVectorStore

    return QdrantVectorStore(client=client, collection_name=collection, embedding=embedding(),
                             vector_name=vector_name)


def langchain_write(where: str | QdrantClient, collection: str, texts: Sequence[str],
                    metadatas: Sequence[dict[str, Any]] | None, ids: Sequence[str] | None = None,
                    vector_name: str = "") -> list[str]:
    """``add_texts`` into a collection created as ``QdrantVectorStore.construct_instance`` creates
    it (dense, cosine, the vector named ``vector_name``); the ids LangChain gives back.
    ``metadatas=None``: LangChain stores ``"metadata": None``."""
    with native(where) as client:
        if not client.collection_exists(collection):
            size = len(embedding().embed_documents(["dummy_text"])[0])
            client.create_collection(collection, vectors_config={
                vector_name: models.VectorParams(size=size, distance=models.Distance.COSINE)}, sparse_vectors_config={})
        return list(langchain_store(client, collection, vector_name).add_texts(
            list(texts), None if metadatas is None else list(metadatas),
                                                                               ids=None if ids is None else list(ids)))


def langchain_search(where: str | QdrantClient, collection: str, queries: Sequence[str], k: int = 4,
                     filter: Mapping[str, Any] | None = None, vector_name: str = "") -> list[list[dict[str, Any]]]:
    """``similarity_search_with_score`` per query: ``{"id", "text", "metadata", "score"}`` per hit
    (the metadata without the ``_id``/``_collection_name`` LangChain adds)."""
    out = []
    with native(where) as client:
        store = langchain_store(client, collection, vector_name)
        for q in queries:
            hits = store.similarity_search_with_score(q, k=k, filter=_lc_filter(filter))
            out.append([{"id": str(d.metadata["_id"]), "text": d.page_content,
                         "metadata": {m: v for m, v in d.metadata.items() if m not in ("_id", "_collection_name")},
                         "score": float(s)} for d, s in hits])
    return out


# -- LlamaIndex ------------------------------------------------------------------------
def llamaindex_store(client: QdrantClient, collection: str) -> Any:
    from llama_index.vector_stores.qdrant import QdrantVectorStore

    return QdrantVectorStore(collection_name=collection, client=client)


def llamaindex_nodes(specs: Sequence[Mapping[str, Any]]) -> list[Any]:
    """TextNodes from ``{"id", "text", "metadata", "source"}`` (``source``: the SOURCE
    relationship's document id), embedded with :func:`embedding`."""
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

    emb = embedding()
    nodes = []
    for s in specs:
        node = TextNode(id_=s["id"], text=s["text"], metadata=dict(s.get("metadata") or {}),
                        embedding=emb.embed_query(s["text"]))
        if s.get("source"):
            node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=s["source"])
        nodes.append(node)
    return nodes


def llamaindex_write(where: str | QdrantClient, collection: str, specs: Sequence[Mapping[str, Any]],
                     dense_vector_name: str | None = None) -> list[str]:
    """``QdrantVectorStore.add`` of :func:`llamaindex_nodes`; ``dense_vector_name``: a collection
    made beforehand with that named vector (the hybrid store's ``text-dense`` form)."""
    from llama_index.vector_stores.qdrant import QdrantVectorStore

    with native(where) as client:
        if dense_vector_name and not client.collection_exists(collection):
            client.create_collection(collection, vectors_config={dense_vector_name: models.VectorParams(
                size=DIM, distance=models.Distance.COSINE)})
        store = QdrantVectorStore(collection_name=collection, client=client,
                                  **({"dense_vector_name": dense_vector_name} if dense_vector_name else {}))
        return list(store.add(llamaindex_nodes(specs)))


def node_data(node: Any) -> dict[str, Any]:
    """A node as plain data: what the application sees of it."""
    rel = {str(k.value if hasattr(k, "value") else k): v.node_id for k, v in node.relationships.items()
           if hasattr(v, "node_id")}
    return {"id": node.node_id, "text": node.get_content(), "metadata": json.loads(json.dumps(node.metadata)),
            "ref_doc_id": node.ref_doc_id, "relationships": rel, "type": type(node).__name__}


def llamaindex_get(where: str | QdrantClient, collection: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``get_nodes(node_ids)``: per id, :func:`node_data`."""
    with native(where) as client:
        return {n.node_id: node_data(n) for n in llamaindex_store(client, collection).get_nodes(list(ids))}


def llamaindex_query(where: str | QdrantClient, collection: str, queries: Sequence[str], k: int = 4,
                     filter: Mapping[str, Any] | None = None) -> list[list[dict[str, Any]]]:
    """``vector_store.query`` per query text (embedded with :func:`embedding`): per hit
    :func:`node_data` with its ``score``."""
    from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters, VectorStoreQuery

    filters = None if not filter else MetadataFilters(filters=[MetadataFilter(key=k_, value=v)
                                                               for k_, v in filter.items()])
    emb = embedding()
    out = []
    with native(where) as client:
        store = llamaindex_store(client, collection)
        for q in queries:
            res = store.query(VectorStoreQuery(query_embedding=emb.embed_query(q), similarity_top_k=k,
                                               filters=filters))
            out.append([{**node_data(n), "score": float(s)} for n, s in zip(res.nodes, res.similarities)])
    return out
