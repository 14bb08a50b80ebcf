"""An application's side of Chroma: chromadb itself, langchain-chroma and
llama-index-vector-stores-chroma, writing and reading as an application does.

Plain functions taking a vecbridge ``chroma`` URL (or a chromadb client) and returning plain
data, so that other tests (the cross-database ones) can call them:

* :func:`chromadb_client` -- chromadb's own client of the database a ``chroma`` URL names;
* :func:`langchain_write` / :func:`langchain_query` / :func:`langchain_get` -- langchain-chroma;
* :func:`llamaindex_write` / :func:`llamaindex_query` / :func:`llamaindex_nodes` --
  llama-index-vector-stores-chroma (nodes carry their own embeddings).

Query answers are ``[(id, text, metadata, score), ...]`` per query, in the package's order.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import parse_qs, urlsplit

import chromadb
from chromadb.config import Settings

__all__ = ["FixedEmbedding", "chromadb_client", "langchain_get", "langchain_query", "langchain_write",
           "llamaindex_nodes", "llamaindex_query", "llamaindex_write", "open_chromadb"]


class FixedEmbedding:
    """A LangChain ``Embeddings`` with a fixed vector per text (a table; unknown texts get a
    vector from their hash), the same on the source and the target side."""

    def __init__(self, table: dict[str, Sequence[float]], dimension: int):
        self.table = {k: [float(x) for x in v] for k, v in table.items()}
        self.dimension = dimension

    def _one(self, text: str) -> list[float]:
        if text in self.table:
            return list(self.table[text])
        import hashlib

        digest = hashlib.sha256(text.encode()).digest()
        return [(digest[i % len(digest)] - 127.5) / 127.5 for i in range(self.dimension)]

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._one(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._one(text)


def chromadb_client(url: str) -> Any:
    """chromadb's own client of what the vecbridge URL ``url`` names: ``chroma://host:port``
    (a server), ``chroma:///path`` (a folder), or ``chroma://?database=NAME`` (a named database
    of the in-memory engine, created if missing).  Close it with ``.close()`` when done."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    database = query.get("database", chromadb.DEFAULT_DATABASE)
    if parts.hostname:
        return chromadb.HttpClient(host=parts.hostname, port=parts.port or 8000, database=database,
                                   settings=Settings(anonymized_telemetry=False))
    path = parts.path.removeprefix("/")
    if path:
        return chromadb.PersistentClient(path=path, database=database)
    # the process has one in-memory engine, and chromadb refuses a client of it with other
    # settings than the first one's (an earlier test's vecbridge client, or application): take those
    from vecbridge.backends.chroma.client import _engine_settings

    settings = _engine_settings(None)[1]
    settings.is_persistent = False
    if database != chromadb.DEFAULT_DATABASE:
        admin = chromadb.AdminClient(settings)
        with contextlib.suppress(Exception):  # exists already
            admin.create_database(database)
    return chromadb.EphemeralClient(settings=settings, database=database)


@contextlib.contextmanager
def open_chromadb(url: str) -> Iterator[Any]:
    client = chromadb_client(url)
    try:
        yield client
    finally:
        close = getattr(client, "close", None)
        if close is not None and urlsplit(url).path not in ("", "/"):
            close()  # the in-memory engine is shared by the process: never stopped here


# -- LangChain ---------------------------------------------------------------------------------
def _langchain(client: Any, name: str, embedding: Any, metric: str | None = None) -> Any:
    from langchain_chroma import Chroma

    config = {"hnsw": {"space": metric}} if metric else None
    return Chroma(collection_name=name, embedding_function=embedding, client=client,
                  collection_configuration=config)  # type: ignore[arg-type]


def langchain_write(client: Any, name: str, embedding: Any, texts: list[str], metadatas: list[dict[str, Any]],
                    ids: list[str], metric: str | None = None) -> None:
    """``Chroma.add_texts`` as an application calls it (``metric=None``: the collection made as
    langchain-chroma makes it by default, Chroma's l2)."""
    _langchain(client, name, embedding, metric).add_texts(texts, metadatas=metadatas, ids=ids)


def langchain_get(client: Any, name: str, embedding: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every record as LangChain reads it: ``{id: (page_content, metadata)}``."""
    got = _langchain(client, name, embedding).get(include=["documents", "metadatas"])
    return {id_: (doc, meta or {}) for id_, doc, meta in zip(got["ids"], got["documents"], got["metadatas"])}


def langchain_query(client: Any, name: str, embedding: Any, queries: list[str], k: int,
                    filter: dict[str, Any] | None = None) -> list[list[tuple[str, str, dict[str, Any], float]]]:
    """``similarity_search_with_score`` per query text."""
    store = _langchain(client, name, embedding)
    return [[(doc.id, doc.page_content, dict(doc.metadata), float(score))
             for doc, score in store.similarity_search_with_score(q, k=k, filter=filter)] for q in queries]


# -- LlamaIndex --------------------------------------------------------------------------------
def _llama(client: Any, name: str, metric: str | None = None) -> Any:
    from llama_index.vector_stores.chroma import ChromaVectorStore

    kwargs = {"configuration": {"hnsw": {"space": metric}}} if metric else {}
    return ChromaVectorStore(chroma_collection=client.get_or_create_collection(name, **kwargs))


def llamaindex_write(client: Any, name: str, nodes: list[Any], metric: str | None = None) -> list[str]:
    """``ChromaVectorStore.add(nodes)`` (each node carries its embedding)."""
    return list(_llama(client, name, metric).add(nodes))


def llamaindex_query(client: Any, name: str, vectors: list[list[float]], k: int, filters: Any = None
                     ) -> list[list[tuple[str, str, dict[str, Any], float]]]:
    """``ChromaVectorStore.query`` per query vector: ``(id, text, node metadata, similarity)``."""
    from llama_index.core.vector_stores.types import VectorStoreQuery

    store = _llama(client, name)
    out = []
    for vec in vectors:
        res = store.query(VectorStoreQuery(query_embedding=list(vec), similarity_top_k=k, filters=filters))
        out.append([(n.node_id, n.get_content(), dict(n.metadata), float(s))
                    for n, s in zip(res.nodes, res.similarities)])
    return out


def llamaindex_nodes(client: Any, name: str, ids: list[str] | None = None) -> dict[str, Any]:
    """The nodes as LlamaIndex rebuilds them (``get_nodes``): ``{id: node}``."""
    return {n.node_id: n for n in _llama(client, name).get_nodes(ids)}
