"""An application's side of PostgreSQL: write and read with the official LangChain and LlamaIndex
packages (langchain-postgres ``PGVector``, llama-index-vector-stores-postgres ``PGVectorStore``).

Plain functions taking a database (``db``: the libpq parts ``host``, ``port``, ``user``,
``password``, ``dbname`` -- ``tests/engines.py``'s ``Engine.native`` has them) and returning
plain data, so that the cross-database tests can call them.  Vectors come from
:class:`FixedEmbedding`: the same text gives the same vector on every side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import numpy as np
from langchain_core.embeddings import Embeddings

DIM = 8


def vector(text: str, dim: int = DIM) -> list[float]:
    """A deterministic vector for ``text`` (seeded by its SHA-256)."""
    seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return np.random.default_rng(seed).normal(size=dim).astype(np.float32).astype(float).tolist()


class FixedEmbedding(Embeddings):
    """LangChain embeddings by :func:`vector`."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [vector(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return vector(text)


def sqlalchemy_url(db: Mapping[str, Any], driver: str = "psycopg", dbname: str | None = None) -> str:
    """``postgresql+DRIVER://user:pass@/db?host=SOCKETDIR`` (or ``@host:port``) for SQLAlchemy."""
    auth = quote(str(db.get("user") or "postgres")) + (f":{quote(str(db['password']))}" if db.get("password") else "")
    host = str(db.get("host") or "localhost")
    name = dbname or db.get("dbname") or "postgres"
    if host.startswith("/"):
        return f"postgresql+{driver}://{auth}@/{name}?host={quote(host)}&port={db.get('port') or 5432}"
    return f"postgresql+{driver}://{auth}@{host}:{db.get('port') or 5432}/{name}"


# -- LangChain ------------------------------------------------------------------------------
def _langchain(db: Mapping[str, Any], collection: str, dbname: str | None, distance: str) -> Any:
    from langchain_postgres import PGVector
    from langchain_postgres.vectorstores import DistanceStrategy

    return PGVector(FixedEmbedding(), connection=sqlalchemy_url(db, "psycopg", dbname), collection_name=collection,
                    distance_strategy=DistanceStrategy(distance), use_jsonb=True)


def langchain_write(db: Mapping[str, Any], collection: str, texts: Sequence[str],
                    metadatas: Sequence[dict[str, Any]], ids: Sequence[str], dbname: str | None = None,
                    distance: str = "cosine") -> None:
    store = _langchain(db, collection, dbname, distance)
    try:
        store.add_texts(list(texts), list(metadatas), ids=list(ids))
    finally:
        store._engine.dispose()


def langchain_query(db: Mapping[str, Any], collection: str, queries: Sequence[str], k: int = 4,
                    filter: dict[str, Any] | None = None, dbname: str | None = None,
                    distance: str = "cosine") -> list[list[tuple[str, str, dict[str, Any], float]]]:
    """Per query text: ``(id, text, metadata, score)`` of ``similarity_search_with_score``."""
    store = _langchain(db, collection, dbname, distance)
    try:
        return [[(str(d.id), d.page_content, dict(d.metadata), float(s))
                 for d, s in store.similarity_search_with_score(q, k=k, filter=filter)] for q in queries]
    finally:
        store._engine.dispose()


# -- LlamaIndex -----------------------------------------------------------------------------
def _llamaindex(db: Mapping[str, Any], table: str, dbname: str | None) -> Any:
    from llama_index.vector_stores.postgres import PGVectorStore

    return PGVectorStore(connection_string=sqlalchemy_url(db, "psycopg2", dbname),
                         async_connection_string=sqlalchemy_url(db, "asyncpg", dbname),
                         table_name=table, embed_dim=DIM)


def _dispose(store: Any) -> None:
    """PGVectorStore's close() is async; only its sync engine was used here."""
    if getattr(store, "_engine", None) is not None:
        store._engine.dispose()


def llamaindex_write(db: Mapping[str, Any], table: str, nodes: Sequence[dict[str, Any]],
                     dbname: str | None = None) -> None:
    """``nodes``: ``{"id", "text", "metadata", "source"}`` (``source``: the SOURCE document's id)."""
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

    store = _llamaindex(db, table, dbname)
    made = []
    for n in nodes:
        rel = {NodeRelationship.SOURCE: RelatedNodeInfo(node_id=n["source"])} if n.get("source") else {}
        made.append(TextNode(id_=n["id"], text=n["text"], metadata=dict(n.get("metadata") or {}),
                             relationships=rel, embedding=vector(n["text"])))
    try:
        store.add(made)
    finally:
        _dispose(store)


def llamaindex_query(db: Mapping[str, Any], table: str, queries: Sequence[str], k: int = 4,
                     dbname: str | None = None) -> list[list[dict[str, Any]]]:
    """Per query text: each hit's ``id``, ``text``, ``metadata``, ``ref_doc_id``, ``score``."""
    from llama_index.core.vector_stores.types import VectorStoreQuery

    store = _llamaindex(db, table, dbname)
    out = []
    try:
        for q in queries:
            res = store.query(VectorStoreQuery(query_embedding=vector(q), similarity_top_k=k))
            out.append([{"id": node.node_id, "text": node.get_content(), "metadata": dict(node.metadata),
                         "ref_doc_id": node.ref_doc_id, "score": float(score)}
                        for node, score in zip(res.nodes, res.similarities)])
    finally:
        _dispose(store)
    return out
