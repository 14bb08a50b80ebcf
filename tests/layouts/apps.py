"""One application per database and framework, written with the official packages only: the
uniform adapters of the cross-database layout tests (test_cross.py).

A :class:`Database` is one place data lives (a Chroma folder, a Qdrant local-mode folder, a
PostgreSQL database); ``database.store(framework, name)`` is the official integration package's
store of one collection there, behind one interface:

* :meth:`Store.write` -- LangChain ``add_texts(texts, metadatas, ids)``; LlamaIndex ``add(nodes)``
  of ``TextNode`` s (each with its embedding, and a SOURCE relationship where a source is given);
* :meth:`Store.search` -- the package's own similarity search per query text, as plain
  :class:`Hit` rows ``(id, text, metadata, score)`` (LlamaIndex: also the node's ``ref_doc_id``
  and relationships), best first, in the package's order;
* :meth:`Store.get` -- the package's own read by id (``get_by_ids`` / ``get_nodes``);
* :attr:`Store.url` -- the vecbridge URL of that collection in that framework's layout.

Every package embeds with the same deterministic :class:`pgvector_app.FixedEmbedding` (a text's
vector is seeded by its SHA-256), so a query embeds identically on the source and the target.

Scores are the package's own numbers, which follow no common rule (Chroma gives distances, the
LlamaIndex Chroma store ``exp(-distance)``, Qdrant similarities ...); :meth:`Store.closeness`
turns one into the contract's score (cosine: cos; l2: minus the Euclidean distance) by the
package's documented rule, so that two packages' scores can be compared.

Every call opens the database for its own length and closes it again: Qdrant's local mode
admits one client per folder, and vecbridge opens the same folders between the calls.

A database joins the cross tests as one more :class:`Database` subclass.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import chroma_app
import engines
import pgvector_app
import qdrant_app
from pgvector_app import DIM, FixedEmbedding, vector

__all__ = [
    "DATABASES",
    "DIM",
    "FRAMEWORKS",
    "ChromaFolder",
    "Database",
    "Hit",
    "MilvusDatabase",
    "PostgresDatabase",
    "QdrantFolder",
    "Servers",
    "Store",
    "typed",
    "vector",
]

FRAMEWORKS = ("langchain", "llamaindex")
Meta = dict[str, Any]


def typed(value: Any) -> str:
    """``value`` as JSON with sorted keys: ``1``, ``1.0`` and ``True`` stay apart (``==`` mixes them)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


class Hit(NamedTuple):
    """One answer of a package: what the application sees of a record."""

    id: str
    text: str
    metadata: Meta
    score: float = math.nan
    ref_doc_id: str | None = None  # LlamaIndex only
    relationships: dict[str, str] | None = None  # LlamaIndex only: {relationship: node id}

    def same(self) -> tuple[Any, ...]:
        """What must be equal on the source and the target: all but the score, types kept."""
        return self.id, self.text, typed(self.metadata), self.ref_doc_id, typed(self.relationships)


def _node_hit(node: Any, score: float = math.nan) -> Hit:
    d = qdrant_app.node_data(node)
    return Hit(d["id"], d["text"], d["metadata"], score, d["ref_doc_id"], d["relationships"])


def _nodes(texts: Sequence[str], metadatas: Sequence[Meta], ids: Sequence[str],
           sources: Sequence[str | None] | None) -> list[Any]:
    """TextNodes as an application makes them: id, text, metadata, embedding, SOURCE document."""
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

    out = []
    for i, (id_, text, meta) in enumerate(zip(ids, texts, metadatas)):
        source = sources[i] if sources else None
        rel = {NodeRelationship.SOURCE: RelatedNodeInfo(node_id=source)} if source else {}
        out.append(TextNode(id_=id_, text=text, metadata=dict(meta), relationships=rel, embedding=vector(text)))
    return out


def _llama_filters(where: Mapping[str, Any] | None) -> Any:
    from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters

    return MetadataFilters(filters=[MetadataFilter(key=k, value=v) for k, v in where.items()]) if where else None


def _llama_search(store: Any, queries: Sequence[str], k: int, where: Mapping[str, Any] | None) -> list[list[Hit]]:
    from llama_index.core.vector_stores.types import VectorStoreQuery

    out = []
    for q in queries:
        res = store.query(VectorStoreQuery(query_embedding=vector(q), similarity_top_k=k,
                                           filters=_llama_filters(where)))
        out.append([_node_hit(n, float(s)) for n, s in zip(res.nodes or [], res.similarities or [])])
    return out


def _doc_hit(doc: Any, score: float = math.nan) -> Hit:
    return Hit(str(doc.id), doc.page_content, dict(doc.metadata), score)


class Servers:
    """The servers of a test module, each started when first needed and stopped with ``stack``."""

    def __init__(self, stack: contextlib.ExitStack):
        self.stack = stack
        self.running: dict[str, Any] = {}

    def get(self, name: str, start: Any) -> Any:
        """The running server ``name``, started by the context manager ``start()`` if not yet."""
        if name not in self.running:
            self.running[name] = self.stack.enter_context(start())
        return self.running[name]


# -- the interface -----------------------------------------------------------------------------
class Store:
    """One collection as one framework's official package sees it on one database.

    ``metric``: the space the collection has (``None``: the package's default, :attr:`DEFAULT`);
    a package that is told the metric (langchain-qdrant's ``distance``, langchain-postgres's
    ``distance_strategy``, the Chroma packages' HNSW space when they create the collection)
    is told this one.
    """

    framework: ClassVar[str]
    DEFAULT: ClassVar[str] = "cosine"
    #: metric -> the package's score as the contract's score (cosine: cos; l2: -distance)
    CLOSENESS: ClassVar[Mapping[str, Any]] = {}

    def __init__(self, db: Database, name: str, metric: str | None = None):
        self.db, self.name, self.metric = db, name, metric or self.DEFAULT
        self.metric_given = metric is not None

    @property
    def url(self) -> str:
        """The vecbridge URL of this collection in this framework's layout."""
        return self.db.url(self.name, self.framework)

    def closeness(self, score: float) -> float:
        if self.metric not in self.CLOSENESS:
            raise ValueError(f"{type(self).__name__} has no {self.metric} scores")
        return float(self.CLOSENESS[self.metric](score))

    def write(self, texts: Sequence[str], metadatas: Sequence[Meta], ids: Sequence[str],
              sources: Sequence[str | None] | None = None) -> None:
        raise NotImplementedError

    def search(self, queries: Sequence[str], k: int, filter: Mapping[str, Any] | None = None) -> list[list[Hit]]:
        raise NotImplementedError

    def get(self, ids: Sequence[str]) -> dict[str, Hit]:
        raise NotImplementedError

    def _cosine_only(self) -> None:
        if self.metric != "cosine":
            raise ValueError(f"{type(self).__name__}: the package makes cosine collections only, not {self.metric}")

    def _langchain_only(self, sources: Sequence[str | None] | None) -> None:
        if sources and any(sources):
            raise ValueError("LangChain keeps no source documents: pass sources to a LlamaIndex store")


class _LlamaIndexStore(Store):
    """A LlamaIndex vector store the package opens itself (:meth:`store`), searched by cosine;
    writing creates the collection as the package does."""

    framework = "llamaindex"

    def store(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def write(self, texts, metadatas, ids, sources=None):
        self._cosine_only()
        with self.store() as store:
            store.add(_nodes(texts, metadatas, ids, sources))

    def search(self, queries, k, filter=None):
        with self.store() as store:
            return _llama_search(store, queries, k, filter)

    def get(self, ids):
        with self.store() as store:
            return {n.node_id: _node_hit(n) for n in store.get_nodes(list(ids))}


class Database:
    """Where collections live; :meth:`store` gives a package's store of one of them."""

    name: ClassVar[str]
    stores: ClassVar[Mapping[str, type[Store]]]

    @classmethod
    def open(cls, root: Path, servers: Servers) -> Database:
        """A new, empty database under the new folder ``root`` (or on a server of ``servers``)."""
        raise NotImplementedError

    def store(self, framework: str, name: str, metric: str | None = None) -> Store:
        return self.stores[framework](self, name, metric)

    def url(self, name: str, framework: str) -> str:
        raise NotImplementedError

    def exists(self, name: str, framework: str) -> bool:
        """Whether the collection is there, by the database's own client."""
        raise NotImplementedError


class _LocalFolder(Database):
    """A database in a folder of its own under the test's root, named by its scheme."""

    def __init__(self, folder: str):
        self.folder = folder

    @classmethod
    def open(cls, root: Path, servers: Servers) -> Database:
        return cls(str(root / cls.name))

    def url(self, name: str, framework: str) -> str:
        query = f"?collection={name}&layout={framework}" if name else ""
        return f"{self.name}:///{self.folder}{query}"


# -- Chroma: a folder (chromadb.PersistentClient) -------------------------------------------------
class _ChromaStore(Store):
    DEFAULT = "l2"  # both packages create the collection without an HNSW space: Chroma's default

    @contextlib.contextmanager
    def client(self) -> Iterator[Any]:
        with chroma_app.open_chromadb(self.db.url("", "")) as client:
            yield client


class ChromaLangChain(_ChromaStore):
    framework = "langchain"
    CLOSENESS: ClassVar[Mapping[str, Any]] = {"cosine": lambda s: 1 - s, "l2": lambda s: -math.sqrt(max(s, 0.0))}  # 1 - cos; squared l2

    def write(self, texts, metadatas, ids, sources=None):
        self._langchain_only(sources)
        with self.client() as c:
            chroma_app.langchain_write(c, self.name, FixedEmbedding(), list(texts), list(metadatas), list(ids),
                                       self.metric if self.metric_given else None)

    def search(self, queries, k, filter=None):
        where = None if not filter else ({"$and": [{k_: v} for k_, v in filter.items()]} if len(filter) > 1
                                         else dict(filter))
        with self.client() as c:
            return [[Hit(*row) for row in hits]
                    for hits in chroma_app.langchain_query(c, self.name, FixedEmbedding(), list(queries), k, where)]

    def get(self, ids):
        # Chroma.get, not get_by_ids: that one fails on a record without metadata (langchain-chroma 1.1
        # hands Document the None that Chroma returns), where similarity_search gives {}
        with self.client() as c:
            got = chroma_app._langchain(c, self.name, FixedEmbedding()).get(ids=list(ids),
                                                                            include=["documents", "metadatas"])
        return {i: Hit(i, doc, meta or {}) for i, doc, meta in zip(got["ids"], got["documents"], got["metadatas"])}


class ChromaLlamaIndex(_ChromaStore):
    framework = "llamaindex"
    # similarity = exp(-distance); the distance is 1 - cos, or the squared l2
    CLOSENESS: ClassVar[Mapping[str, Any]] = {"cosine": lambda s: 1 + math.log(s), "l2": lambda s: -math.sqrt(max(-math.log(s), 0.0))}

    def write(self, texts, metadatas, ids, sources=None):
        with self.client() as c:
            chroma_app.llamaindex_write(c, self.name, _nodes(texts, metadatas, ids, sources),
                                        self.metric if self.metric_given else None)

    def search(self, queries, k, filter=None):
        with self.client() as c:
            return _llama_search(chroma_app._llama(c, self.name), queries, k, filter)

    def get(self, ids):
        with self.client() as c:
            return {n.node_id: _node_hit(n) for n in chroma_app._llama(c, self.name).get_nodes(list(ids))}


class ChromaFolder(_LocalFolder):
    name = "chroma"
    stores: ClassVar[Mapping[str, type[Store]]] = {"langchain": ChromaLangChain, "llamaindex": ChromaLlamaIndex}

    def exists(self, name: str, framework: str) -> bool:
        with chroma_app.open_chromadb(self.url("", "")) as c:
            return name in {col.name for col in c.list_collections()}


# -- Qdrant: a local-mode folder ----------------------------------------------------------------
class QdrantLangChain(Store):
    framework = "langchain"
    CLOSENESS: ClassVar[Mapping[str, Any]] = {"cosine": lambda s: s, "l2": lambda s: -s}  # Qdrant's own: cos, or the distance

    def _distance(self) -> Any:
        from qdrant_client import models

        return {"cosine": models.Distance.COSINE, "l2": models.Distance.EUCLID, "ip": models.Distance.DOT}[self.metric]

    @contextlib.contextmanager
    def store(self) -> Iterator[Any]:
        from langchain_qdrant import QdrantVectorStore

        with qdrant_app.native(self.db.url("", "")) as client:
            yield QdrantVectorStore(client=client, collection_name=self.name, embedding=FixedEmbedding(),
                                    distance=self._distance())

    def write(self, texts, metadatas, ids, sources=None):
        from langchain_qdrant import QdrantVectorStore

        self._langchain_only(sources)
        # from_texts: the collection made as the package makes it; its client closed at once (the folder's lock)
        store = QdrantVectorStore.from_texts(list(texts), FixedEmbedding(), metadatas=list(metadatas), ids=list(ids),
                                             path=self.db.folder, collection_name=self.name,
                                             distance=self._distance())
        store.client.close()

    @staticmethod
    def _hit(doc: Any, score: float = math.nan) -> Hit:
        meta = dict(doc.metadata)
        id_ = str(meta.pop("_id"))  # langchain-qdrant puts the point id and the collection into the metadata
        meta.pop("_collection_name", None)
        return Hit(id_, doc.page_content, meta, score)

    def search(self, queries, k, filter=None):
        with self.store() as store:
            return [[self._hit(d, float(s)) for d, s in store.similarity_search_with_score(
                q, k=k, filter=qdrant_app._lc_filter(filter))] for q in queries]

    def get(self, ids):
        with self.store() as store:
            return {h.id: h for h in map(self._hit, store.get_by_ids(list(ids)))}


class QdrantLlamaIndex(_LlamaIndexStore):
    CLOSENESS: ClassVar[Mapping[str, Any]] = QdrantLangChain.CLOSENESS

    @contextlib.contextmanager
    def store(self) -> Iterator[Any]:
        with qdrant_app.native(self.db.url("", "")) as client:
            yield qdrant_app.llamaindex_store(client, self.name)


class QdrantFolder(_LocalFolder):
    name = "qdrant"
    stores: ClassVar[Mapping[str, type[Store]]] = {"langchain": QdrantLangChain, "llamaindex": QdrantLlamaIndex}

    def exists(self, name: str, framework: str) -> bool:
        with qdrant_app.native(self.url("", "")) as c:
            return bool(c.collection_exists(name))


# -- PostgreSQL: one database of a server (tests/engines.py postgres_server) ----------------------
class PostgresLangChain(Store):
    framework = "langchain"
    CLOSENESS: ClassVar[Mapping[str, Any]] = {"cosine": lambda s: 1 - s, "l2": lambda s: -s}  # the distance of its distance_strategy

    def _strategy(self) -> str:
        return {"cosine": "cosine", "l2": "l2", "ip": "inner"}[self.metric]

    def write(self, texts, metadatas, ids, sources=None):
        self._langchain_only(sources)
        pgvector_app.langchain_write(self.db.native, self.name, texts, metadatas, ids, self.db.dbname,
                                     self._strategy())

    def search(self, queries, k, filter=None):
        where = {k_: {"$eq": v} for k_, v in (filter or {}).items()} or None
        return [[Hit(*row) for row in hits] for hits in pgvector_app.langchain_query(
            self.db.native, self.name, queries, k, where, self.db.dbname, self._strategy())]

    def get(self, ids):
        store = pgvector_app._langchain(self.db.native, self.name, self.db.dbname, self._strategy())
        try:
            return {str(d.id): _doc_hit(d) for d in store.get_by_ids(list(ids))}
        finally:
            store._engine.dispose()


class PostgresLlamaIndex(_LlamaIndexStore):
    CLOSENESS: ClassVar[Mapping[str, Any]] = {"cosine": lambda s: s}  # 1 - cosine distance: the package searches by cosine only

    @contextlib.contextmanager
    def store(self) -> Iterator[Any]:
        store = pgvector_app._llamaindex(self.db.native, self.name, self.db.dbname)
        try:
            yield store
        finally:
            pgvector_app._dispose(store)


class PostgresDatabase(Database):
    """``native``: ``tests/engines.py``'s ``Engine.native`` (libpq parts); ``dbname``: the database."""

    name = "pgvector"
    stores: ClassVar[Mapping[str, type[Store]]] = {"langchain": PostgresLangChain, "llamaindex": PostgresLlamaIndex}

    def __init__(self, native: Mapping[str, Any], dbname: str):
        self.native, self.dbname = dict(native), dbname

    @classmethod
    def open(cls, root: Path, servers: Servers) -> Database:
        """A database of its own on the one server: LangChain's PGVector keeps every collection in
        one table whose primary key is the id, so two collections of one database cannot hold the
        same ids (a copy beside its source could not be made)."""
        import psycopg

        native = servers.get("postgres", engines.postgres_server).native
        dbname = "db_" + "".join(ch if ch.isalnum() else "_" for ch in root.name.lower())
        with psycopg.connect(native["conninfo"], autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')
        return cls(native, dbname)

    def url(self, name: str, framework: str) -> str:
        return (f"pgvector://{self.native.get('user') or 'postgres'}@/{self.dbname}?host={self.native['host']}"
                f"&collection={name}&layout={framework}")

    def exists(self, name: str, framework: str) -> bool:
        import psycopg

        conninfo = pgvector_app.sqlalchemy_url(self.native, "psycopg", self.dbname).replace("postgresql+psycopg",
                                                                                           "postgresql")
        with psycopg.connect(conninfo, autocommit=True) as conn:
            if framework == "llamaindex":
                return conn.execute("SELECT to_regclass(%s)", (f"data_{name}",)).fetchone()[0] is not None
            if conn.execute("SELECT to_regclass('langchain_pg_collection')").fetchone()[0] is None:
                return False
            return conn.execute("SELECT count(*) FROM langchain_pg_collection WHERE name = %s",
                                (name,)).fetchone()[0] > 0


# -- Milvus: LangChain on a Milvus Lite file, LlamaIndex on the server (milvus_app.py) ------------
_MILVUS_METRICS = {"cosine": "COSINE", "l2": "L2", "ip": "IP"}


class _Vectors(dict):  # type: ignore[type-arg]
    """milvus_app's embedding table: every text's vector by :func:`vector`."""

    def __missing__(self, text: str) -> list[float]:
        return vector(text)


class MilvusLangChain(Store):
    """langchain-milvus 0.4 with its default schema: a scalar field per metadata key of the first
    record (so every record needs the same keys), ``pk`` in each answer's metadata."""

    framework = "langchain"
    DEFAULT = "l2"
    CLOSENESS: ClassVar[Mapping[str, Any]] = {"cosine": lambda s: s, "l2": lambda s: -math.sqrt(max(s, 0.0)),
                                              "ip": lambda s: s}  # Milvus's own: cos, the squared l2, dot

    def _kw(self) -> dict[str, Any]:
        # the metric of a collection it makes; of an existing one it reads the index's
        return {"index_params": {"metric_type": _MILVUS_METRICS[self.metric], "index_type": "FLAT"}} \
            if self.metric_given else {}

    @staticmethod
    def _hit(doc: Any, score: float = math.nan) -> Hit:
        meta = dict(doc.metadata)
        return Hit(str(meta.pop("pk")), doc.page_content, meta, score)

    def write(self, texts, metadatas, ids, sources=None):
        import milvus_app

        self._langchain_only(sources)
        milvus_app.langchain_write(self.db.lite, self.name, list(texts), list(metadatas), list(ids), _Vectors(),
                                   **self._kw())

    @contextlib.contextmanager
    def store(self) -> Iterator[Any]:
        import milvus_app

        store = milvus_app.langchain_store(self.db.lite, self.name, _Vectors(), **self._kw())
        try:
            yield store
        finally:
            store.client.close()

    def search(self, queries, k, filter=None):
        expr = " and ".join(f"{k_} == {json.dumps(v)}" for k_, v in (filter or {}).items()) or None
        with self.store() as store:
            return [[self._hit(d, float(s)) for d, s in store.similarity_search_with_score(q, k=k, expr=expr)]
                    for q in queries]

    def get(self, ids):
        with self.store() as store:
            fields = [f for f in store.fields if f not in store.vector_fields]  # the metadata without the vector
            docs = store.search_by_metadata(f"pk in {json.dumps(list(ids))}", fields, limit=max(len(ids), 1))
        # search_by_metadata leaves the text in the metadata too (similarity_search does not)
        return {h.id: h._replace(metadata={k: v for k, v in h.metadata.items() if k != store._text_field})
                for h in map(self._hit, docs)}


class MilvusLlamaIndex(Store):
    """llama-index-vector-stores-milvus 1.2 in its own virtualenv (milvus_app.LlamaIndexWorker),
    on the Milvus server; told the metric (``similarity_metric``) as an application is."""

    framework = "llamaindex"
    DEFAULT = "ip"
    CLOSENESS = MilvusLangChain.CLOSENESS

    def _call(self, op: str, **kw: Any) -> Any:
        return self.db.worker()({"op": op, "uri": self.db.server()[1], "collection": self.name, "dim": DIM,
                                 "metric": _MILVUS_METRICS[self.metric], **kw})

    @staticmethod
    def _hit(d: Mapping[str, Any]) -> Hit:
        score = math.nan if d.get("score") is None else float(d["score"])
        return Hit(d["id"], d["text"], d["metadata"], score, d["ref_doc_id"], {"1": d["source"]} if d["source"] else {})

    def write(self, texts, metadatas, ids, sources=None):
        nodes = [{"id": i, "text": t, "metadata": dict(m), "embedding": vector(t), "source": sources[n] if sources
                  else None} for n, (i, t, m) in enumerate(zip(ids, texts, metadatas))]
        self._call("write", overwrite=True, nodes=nodes)

    def search(self, queries, k, filter=None):
        got = self._call("query", queries=[vector(q) for q in queries], k=k, filters=dict(filter or {}) or None)
        return [[self._hit(d) for d in hits] for hits in got]

    def get(self, ids):
        return {d["id"]: self._hit(d) for d in self._call("get", ids=list(ids))}


class MilvusDatabase(Database):
    """A Milvus Lite file (LangChain) and the Milvus server of the test process (LlamaIndex, whose
    package cannot open a Lite file of pymilvus 3); names on the server get a tag of this database."""

    name = "milvus"
    stores: ClassVar[Mapping[str, type[Store]]] = {"langchain": MilvusLangChain, "llamaindex": MilvusLlamaIndex}

    def __init__(self, lite: str, servers: Servers):
        import uuid

        self.lite, self.servers, self.tag = lite, servers, uuid.uuid4().hex[:6]

    @classmethod
    def open(cls, root: Path, servers: Servers) -> Database:
        root.mkdir(parents=True, exist_ok=True)
        return cls(str(root / "milvus.db"), servers)

    def server(self) -> tuple[str, str]:
        import milvus_app

        return milvus_app.server()

    def worker(self) -> Any:
        import milvus_app

        return self.servers.get("llamaindex-milvus", lambda: contextlib.closing(milvus_app.LlamaIndexWorker()))

    def store(self, framework: str, name: str, metric: str | None = None) -> Store:
        return super().store(framework, f"{name}_{self.tag}" if framework == "llamaindex" else name, metric)

    def url(self, name: str, framework: str) -> str:
        if framework == "llamaindex":
            return f"{self.server()[0]}?collection={name}&layout=llamaindex"
        return f"milvus:///{self.lite}?collection={name}&layout={framework}"

    def exists(self, name: str, framework: str) -> bool:
        from pymilvus import MilvusClient

        client = MilvusClient(uri=self.server()[1] if framework == "llamaindex" else self.lite)
        try:
            return bool(client.has_collection(name))
        finally:
            client.close()


#: The databases of the cross tests, by vecbridge backend name.
DATABASES: dict[str, type[Database]] = {cls.name: cls for cls in (ChromaFolder, MilvusDatabase, PostgresDatabase,
                                                                  QdrantFolder)}
