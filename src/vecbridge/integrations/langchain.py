"""LangChain's ``VectorStore`` over any vecbridge URL.

    from vecbridge.integrations.langchain import VecbridgeVectorStore

    store = VecbridgeVectorStore.from_texts(texts, embeddings, url="qdrant://localhost:6333?collection=docs")
    store.similarity_search("where is the cat?", k=4, filter={"topic": "pets"})

One class for every backend, with vecbridge's filter language (``filter=`` takes a
``where``, docs/filters.md) and vecbridge's score (higher is closer, the same on every
backend).  ``page_content`` is the record's document, ``metadata`` its metadata,
``Document.id`` its id.  The async methods drive :mod:`vecbridge.aio`, not a thread
around the sync method.

Why the workarounds:

- A URL may name a collection that does not exist yet: it is created on the first write,
  with the dimension of the first embedded text (LangChain's ``from_texts`` gives the
  texts and the embedding model, never a dimension).  Until then reads answer empty.
- An async collection lives on one event loop (a backend's native async client is bound
  to the loop it was made on), so the store keeps one :class:`~vecbridge.aio.AsyncClient`
  per loop, wrapping the same sync client (an in-memory database has no second
  connection to the same data).
"""

from __future__ import annotations

import asyncio
import functools
import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

import vecbridge
import vecbridge.aio
from vecbridge import filters
from vecbridge.embeddings import Embedder, check_same, get_embedder
from vecbridge.errors import (
    BackendNotInstalledError,
    CollectionExistsError,
    CollectionNotFoundError,
    InvalidMetadataError,
    InvalidRecordError,
    InvalidURLError,
    UnsupportedFeatureError,
)
from vecbridge.types import Hit
from vecbridge.url import URL
from vecbridge.validation import validate_metadata

try:
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import VectorStore
    from langchain_core.vectorstores.utils import maximal_marginal_relevance
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise BackendNotInstalledError('vecbridge.integrations.langchain needs langchain-core, which is not installed; '
                                   'run: pip install "vecbridge[langchain]"') from exc

__all__ = ["VecbridgeEmbeddings", "VecbridgeVectorStore", "relevance"]

_DOC_FIELDS = ["metadata", "document"]
_MMR_FIELDS = ["vector", "metadata", "document"]


class VecbridgeEmbeddings(Embeddings):
    """A vecbridge :class:`~vecbridge.embeddings.Embedder` (or its spec) as LangChain ``Embeddings``.

    >>> emb = VecbridgeEmbeddings("sentence-transformers:/models/all-MiniLM-L6-v2")  # doctest: +SKIP
    >>> emb.embed_query("hello")[:3]                                                # doctest: +SKIP
    """

    def __init__(self, embedder: str | Embedder):
        self.embedder: Embedder = get_embedder(embedder)

    @property
    def spec(self) -> str:
        return str(self.embedder.spec)

    @property
    def dimension(self) -> int:
        return int(self.embedder.dimension)

    def __repr__(self) -> str:
        return f"VecbridgeEmbeddings({self.spec!r})"

    # numpy in and out, for the store (no round trip through Python floats)
    def _documents(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self.embedder.embed_documents(list(texts)), dtype=np.float32)

    def _query(self, text: str) -> np.ndarray:
        return np.asarray(self.embedder.embed_query(text), dtype=np.float32)

    async def _adocuments(self, texts: Sequence[str]) -> np.ndarray:
        native = getattr(self.embedder, "aembed_documents", None)  # an embedder with an async API
        if native is not None:
            return np.asarray(await native(list(texts)), dtype=np.float32)
        return await asyncio.get_running_loop().run_in_executor(None, self._documents, list(texts))

    async def _aquery(self, text: str) -> np.ndarray:
        native = getattr(self.embedder, "aembed_query", None)
        if native is not None:
            return np.asarray(await native(text), dtype=np.float32)
        return await asyncio.get_running_loop().run_in_executor(None, self._query, text)

    # LangChain's interface: lists of floats
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._documents(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        return self._query(text).tolist()  # type: ignore[no-any-return]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return (await self._adocuments(texts)).tolist()  # type: ignore[no-any-return]

    async def aembed_query(self, text: str) -> list[float]:
        return (await self._aquery(text)).tolist()  # type: ignore[no-any-return]


# -- relevance in [0, 1] from the contract's score --------------------------------------------
def _cosine_relevance(score: float) -> float:
    return min(1.0, max(0.0, (1.0 + score) / 2.0))  # clamp: float rounding can leave cos a hair past 1


def _l2_relevance(score: float) -> float:
    return 1.0 / (1.0 - score) if score <= 0 else 1.0  # score = -distance


def _ip_relevance(score: float) -> float:
    if score >= 0:  # the logistic function, written so that exp never overflows
        return 1.0 / (1.0 + math.exp(-score))
    e = math.exp(score)
    return e / (1.0 + e)


_RELEVANCE: dict[str, Callable[[float], float]] = {"cosine": _cosine_relevance, "l2": _l2_relevance,
                                                    "ip": _ip_relevance}


def relevance(metric: str) -> Callable[[float], float]:
    """The function from a :class:`~vecbridge.Hit` ``score`` to LangChain's relevance in [0, 1].

    - cosine: ``(1 + cos) / 2`` -- 1 for the same direction, 0.5 orthogonal, 0 opposite;
    - l2: ``1 / (1 + distance)`` -- 1 for the same point, towards 0 far away;
    - ip: the logistic ``1 / (1 + exp(-dot))`` -- 0.5 for a zero dot product.

    Each is strictly increasing in the score, so the order of the hits is kept.
    """
    return _RELEVANCE[metric]


def _refuse(kwargs: dict[str, Any], method: str) -> None:
    if kwargs:
        raise TypeError(f"VecbridgeVectorStore.{method}() got unexpected keyword argument(s) "
                        f"{', '.join(sorted(kwargs))}; a filter goes in filter= as a vecbridge where "
                        "(such as {'topic': 'pets'}, see docs/filters.md)")


def _metadata(metadata: Any, i: int, id_: str) -> dict[str, Any]:
    """Checked before anything is embedded or created, with the LangChain context in the message."""
    try:
        return validate_metadata({} if metadata is None else metadata, f"metadatas[{i}]")
    except InvalidMetadataError as exc:
        raise InvalidMetadataError(f"{exc} (the LangChain metadata of text {i}, id {id_!r}; drop that key or "
                                   "convert its value; nothing was written)") from exc


def _document(hit: Any) -> Document:
    return Document(id=hit.id, page_content=hit.document if hit.document is not None else "",
                    metadata=hit.metadata if hit.metadata is not None else {})


class _PerLoop:
    """The async client and collection of one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: vecbridge.aio.AsyncClient):
        self.loop = loop
        self.client = client
        self.coll: vecbridge.aio.AsyncCollection | None = None

    def release(self) -> None:
        # The loop has ended: free the thread pool and the native connections; the sync client
        # underneath is the store's, closed by the store.
        self.client.abandon()


class VecbridgeVectorStore(VectorStore):
    """A LangChain ``VectorStore`` on the vecbridge collection that a URL names, on any backend.

    Parameters
    ----------
    url_or_collection
        A vecbridge URL naming a collection (``"chroma:///data?collection=docs"``), or an open
        :class:`vecbridge.Collection`.  A URL naming a collection that does not exist yet is
        created on the first write, with the embedding's dimension and ``metric``/``index``.
    embedding
        A LangChain ``Embeddings``; or a vecbridge embedder or spec
        (``"sentence-transformers:all-MiniLM-L6-v2"``), which is also stored with a collection
        the store creates; or ``None`` for the collection's own vecbridge embedder.
    metric, index
        For a collection the store creates (``"cosine"``, ``"l2"``, ``"ip"``; see the contract).
    options
        Backend options, as for :func:`vecbridge.connect` (they win over the URL's).

    Scores: ``similarity_search_with_score`` gives vecbridge's ``Hit.score`` (higher is
    closer: cos for cosine, ``-distance`` for l2, the dot product for ip) on every backend;
    ``similarity_search_with_relevance_scores`` maps it into [0, 1] by :func:`relevance`:
    cosine ``(1 + cos) / 2``, l2 ``1 / (1 + distance)``, ip ``1 / (1 + exp(-dot))``.
    ``filter=`` takes vecbridge's filter language; ``delete()`` without ids deletes every
    record (LangChain's meaning of ``None``).  Metadata values vecbridge cannot hold (None,
    nested dicts, dates…) raise :class:`~vecbridge.InvalidMetadataError` naming the key.
    """

    def __init__(self, url_or_collection: str | URL | vecbridge.Collection, embedding: Any = None, *,
                 metric: str = "cosine", index: dict[str, Any] | None = None, **options: Any):
        self._metric, self._index = metric, index
        self._async: _PerLoop | None = None
        self._collection: Any = None
        if isinstance(url_or_collection, (str, URL)):
            parsed = URL.parse(url_or_collection)
            name = options.pop("collection", None) or parsed.query.get("collection")
            if not name:
                raise InvalidURLError(f"{parsed} names no collection: add '?collection=NAME' to the URL")
            self._client: Any = vecbridge.connect(parsed, **options)
            self._owns_client, self._name = True, str(name)
            try:
                self._collection = self._opened(self._client.get_collection(self._name))
            except CollectionNotFoundError:
                pass
            except BaseException:
                self._client.close()
                raise
        elif hasattr(url_or_collection, "query") and hasattr(url_or_collection, "_client"):
            if options:
                raise TypeError(f"options ({', '.join(sorted(options))}) apply to a URL, not to an open collection")
            self._client, self._owns_client = url_or_collection._client, False
            self._collection = self._opened(url_or_collection)
            self._name = self._collection.name
        else:
            raise TypeError("VecbridgeVectorStore takes a vecbridge URL ('scheme://…?collection=NAME') or a "
                            f"vecbridge Collection, not {type(url_or_collection).__name__}")
        try:
            self._embedding = self._resolve(embedding)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _opened(coll: Any) -> Any:
        coll.config  # noqa: B018 - read once here, off any event loop: every flow consults it
        return coll

    def _resolve(self, embedding: Any) -> Embeddings:
        if isinstance(embedding, Embeddings) and not isinstance(embedding, VecbridgeEmbeddings):
            return embedding
        coll = self._collection
        if embedding is None:
            if coll is not None and coll.has_embedder:
                return VecbridgeEmbeddings(coll.embedder)
            why = "has no embedder of its own" if coll is not None else "does not exist yet"
            raise UnsupportedFeatureError(
                f"collection {self._name!r} {why}: give embedding= (a LangChain Embeddings, or a vecbridge "
                "embedding spec such as 'sentence-transformers:all-MiniLM-L6-v2') so that texts can be embedded")
        adapter = embedding if isinstance(embedding, VecbridgeEmbeddings) else VecbridgeEmbeddings(embedding)
        if coll is not None and coll.config.get("embedding"):
            check_same(coll.config["embedding"], adapter.embedder, self._name)
        return adapter

    # -- what LangChain reads ---------------------------------------------------------------
    @property
    def embeddings(self) -> Embeddings:
        return self._embedding

    @property
    def client(self) -> Any:
        """The vecbridge client of the store's database."""
        return self._client

    @property
    def collection(self) -> Any:
        """The vecbridge collection underneath (``None`` until the first write created it)."""
        return self._collection

    def __repr__(self) -> str:
        return f"<VecbridgeVectorStore {self._name!r} on {self._client.url}>"

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return relevance(self._collection.metric if self._collection is not None else self._metric)

    # -- the collection: opened, or made on the first write -----------------------------------
    def _create_args(self, vectors: Any) -> tuple[int, dict[str, Any]]:
        emb = self._embedding
        if isinstance(emb, VecbridgeEmbeddings):
            return emb.dimension, {"embedding": emb.embedder}  # the spec is stored with the collection
        return len(vectors[0]), {}

    def _readable(self) -> Any:
        if self._collection is None:  # another store or process may have made it since
            try:
                self._collection = self._opened(self._client.get_collection(self._name))
            except CollectionNotFoundError:
                return None
        return self._collection

    def _writable(self, vectors: Any) -> Any:
        if self._readable() is None:
            dim, extra = self._create_args(vectors)
            self._collection = self._opened(self._client.get_or_create_collection(
                self._name, dim, self._metric, self._index, **extra))
        return self._collection

    async def _acoll(self, vectors: Any = None) -> vecbridge.aio.AsyncCollection | None:
        """The async collection for the running loop; made (with ``vectors``' dimension) when
        ``vectors`` is given and the collection does not exist."""
        loop = asyncio.get_running_loop()
        state = self._async
        if state is None or state.loop is not loop:
            if state is not None:
                state.release()
            # LangChain gives no hook at the end of an event loop, so nothing native can be closed
            # in time: the collection's sync hooks run on the async client's thread pool
            state = self._async = _PerLoop(loop, vecbridge.aio.wrap(self._client, native=False))
        if state.coll is not None:
            return state.coll
        if self._collection is not None:
            state.coll = vecbridge.aio.AsyncCollection(state.client, self._collection)
            return state.coll
        try:
            acoll = await state.client.get_collection(self._name)
        except CollectionNotFoundError:
            if vectors is None:
                return None
            dim, extra = self._create_args(vectors)
            try:
                acoll = await state.client.get_or_create_collection(self._name, dim, self._metric, self._index,
                                                                    **extra)
            except CollectionExistsError:  # made by a concurrent first write
                acoll = await state.client.get_collection(self._name)
        self._collection = acoll.sync
        state.coll = acoll
        return acoll

    # -- embedding --------------------------------------------------------------------------
    def _embed_documents(self, texts: list[str]) -> Any:
        emb = self._embedding
        return emb._documents(texts) if isinstance(emb, VecbridgeEmbeddings) else emb.embed_documents(texts)

    def _embed_query(self, text: str) -> Any:
        emb = self._embedding
        return emb._query(text) if isinstance(emb, VecbridgeEmbeddings) else emb.embed_query(text)

    async def _aembed_documents(self, texts: list[str]) -> Any:
        emb = self._embedding
        if isinstance(emb, VecbridgeEmbeddings):
            return await emb._adocuments(texts)
        return await emb.aembed_documents(texts)

    async def _aembed_query(self, text: str) -> Any:
        emb = self._embedding
        return await emb._aquery(text) if isinstance(emb, VecbridgeEmbeddings) else await emb.aembed_query(text)

    # -- writes -----------------------------------------------------------------------------
    def _batch(self, texts: Iterable[str], metadatas: Any, ids: Any, method: str, kwargs: dict[str, Any]
               ) -> tuple[list[str], list[str], list[dict[str, Any]] | None]:
        """Ids (generated where missing) and metadata checked before anything is embedded or made."""
        _refuse(kwargs, method)
        texts = list(texts)
        n = len(texts)
        if ids is None:
            ids = [None] * n
        ids = list(ids)
        if len(ids) != n:
            raise InvalidRecordError(f"{method}: {len(ids)} ids for {n} texts; give one id (or None) per text")
        ids = [str(uuid.uuid4()) if i is None else i for i in ids]
        if metadatas is not None:
            metadatas = list(metadatas)
            if len(metadatas) != n:
                raise InvalidRecordError(f"{method}: {len(metadatas)} metadatas for {n} texts")
            metadatas = [_metadata(m, i, ids[i]) for i, m in enumerate(metadatas)]
        return texts, ids, metadatas

    def add_texts(self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None, *,
                  ids: list[str] | None = None, **kwargs: Any) -> list[str]:
        """Embed ``texts`` and upsert them (an id that exists is replaced); ids are generated
        (UUID4 strings) where ``ids`` is None or holds None."""
        texts, ids, metadatas = self._batch(texts, metadatas, ids, "add_texts", kwargs)
        if not texts:
            return []
        vectors = self._embed_documents(texts)
        self._writable(vectors).upsert(ids, vectors, metadatas, texts)
        return ids

    async def aadd_texts(self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None, *,
                         ids: list[str] | None = None, **kwargs: Any) -> list[str]:
        texts, ids, metadatas = self._batch(texts, metadatas, ids, "aadd_texts", kwargs)
        if not texts:
            return []
        vectors = await self._aembed_documents(texts)
        acoll = await self._acoll(vectors)
        assert acoll is not None
        await acoll.upsert(ids, vectors, metadatas, texts)
        return ids

    @staticmethod
    def _split(documents: list[Document], kwargs: dict[str, Any]) -> tuple[list[str], list[Any], Any]:
        ids = kwargs.pop("ids", None)  # LangChain's rule: ids given win over Document.id
        if ids is None:
            ids = [d.id for d in documents]
        return [d.page_content for d in documents], [d.metadata for d in documents], ids

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Upsert ``documents``: ``page_content`` -> document, ``metadata`` -> metadata,
        ``Document.id`` (or ``ids=``) -> id, generated where missing."""
        texts, metadatas, ids = self._split(documents, kwargs)
        return self.add_texts(texts, metadatas, ids=ids, **kwargs)

    async def aadd_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        texts, metadatas, ids = self._split(documents, kwargs)
        return await self.aadd_texts(texts, metadatas, ids=ids, **kwargs)

    @staticmethod
    def _delete_args(ids: Any, filter: Any, kwargs: dict[str, Any], method: str) -> tuple[Any, Any]:
        _refuse(kwargs, method)
        if ids is None and filter is None:
            return None, {}  # LangChain: None deletes everything
        if filter is not None:
            filters.parse(filter)  # an invalid filter is refused even where nothing exists yet
        return (None if ids is None else list(ids)), filter

    def delete(self, ids: list[str] | None = None, filter: dict[str, Any] | None = None, **kwargs: Any) -> bool:
        """Delete by ids, by ``filter``, or both (AND); neither deletes every record.  Ids that
        do not exist are ignored."""
        ids, where = self._delete_args(ids, filter, kwargs, "delete")
        coll = self._readable()
        if coll is not None and ids != []:
            coll.delete(ids=ids, where=where)
        return True

    async def adelete(self, ids: list[str] | None = None, filter: dict[str, Any] | None = None,
                      **kwargs: Any) -> bool:
        ids, where = self._delete_args(ids, filter, kwargs, "adelete")
        acoll = await self._acoll()
        if acoll is not None and ids != []:
            await acoll.delete(ids=ids, where=where)
        return True

    # -- reads ------------------------------------------------------------------------------
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents of ``ids`` that exist, in the order given (each id once)."""
        wanted = list(dict.fromkeys(ids))
        coll = self._readable()
        if coll is None or not wanted:
            return []
        return [_document(r) for r in coll.get(ids=wanted, include=_DOC_FIELDS)]

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        wanted = list(dict.fromkeys(ids))
        acoll = await self._acoll()
        if acoll is None or not wanted:
            return []
        return [_document(r) for r in await acoll.get(ids=wanted, include=_DOC_FIELDS)]

    @staticmethod
    def _empty(filter: Any) -> list[Any]:
        if filter is not None:
            filters.parse(filter)
        return []

    def _hits(self, vector: Any, k: int, filter: Any, include: list[str]) -> list[Hit]:
        coll = self._readable()
        if coll is None:
            return self._empty(filter)
        return coll.query(vector, k=k, where=filter, include=include)  # type: ignore[no-any-return]

    async def _ahits(self, vector: Any, k: int, filter: Any, include: list[str]) -> list[Hit]:
        acoll = await self._acoll()
        if acoll is None:
            return self._empty(filter)
        return await acoll.query(vector, k=k, where=filter, include=include)  # type: ignore[return-value]

    def similarity_search(self, query: str, k: int = 4, filter: dict[str, Any] | None = None,
                          **kwargs: Any) -> list[Document]:
        """The ``k`` documents closest to ``query`` that match ``filter`` (a vecbridge where), best first."""
        _refuse(kwargs, "similarity_search")
        return [_document(h) for h in self._hits(self._embed_query(query), k, filter, _DOC_FIELDS)]

    async def asimilarity_search(self, query: str, k: int = 4, filter: dict[str, Any] | None = None,
                                 **kwargs: Any) -> list[Document]:
        _refuse(kwargs, "asimilarity_search")
        return [_document(h) for h in await self._ahits(await self._aembed_query(query), k, filter, _DOC_FIELDS)]

    def similarity_search_with_score(self, query: str, k: int = 4, filter: dict[str, Any] | None = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        """Like :meth:`similarity_search`, with vecbridge's score (higher is closer; see the class)."""
        _refuse(kwargs, "similarity_search_with_score")
        return [(_document(h), h.score) for h in self._hits(self._embed_query(query), k, filter, _DOC_FIELDS)]

    async def asimilarity_search_with_score(self, query: str, k: int = 4, filter: dict[str, Any] | None = None,
                                            **kwargs: Any) -> list[tuple[Document, float]]:
        _refuse(kwargs, "asimilarity_search_with_score")
        hits = await self._ahits(await self._aembed_query(query), k, filter, _DOC_FIELDS)
        return [(_document(h), h.score) for h in hits]

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, filter: dict[str, Any] | None = None,
                                    **kwargs: Any) -> list[Document]:
        _refuse(kwargs, "similarity_search_by_vector")
        return [_document(h) for h in self._hits(embedding, k, filter, _DOC_FIELDS)]

    async def asimilarity_search_by_vector(self, embedding: list[float], k: int = 4,
                                           filter: dict[str, Any] | None = None, **kwargs: Any) -> list[Document]:
        _refuse(kwargs, "asimilarity_search_by_vector")
        return [_document(h) for h in await self._ahits(embedding, k, filter, _DOC_FIELDS)]

    # -- maximal marginal relevance ---------------------------------------------------------
    @staticmethod
    def _mmr(vector: Any, hits: list[Hit], k: int, lambda_mult: float) -> list[Document]:
        if not hits:
            return []
        vectors: Any = [h.vector for h in hits]  # float32 arrays; LangChain's helper is typed for lists
        picked = maximal_marginal_relevance(np.asarray(vector, dtype=np.float32), vectors, lambda_mult=lambda_mult, k=k)
        return [_document(hits[i]) for i in picked]

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4, fetch_k: int = 20,
                                                lambda_mult: float = 0.5, filter: dict[str, Any] | None = None,
                                                **kwargs: Any) -> list[Document]:
        """``fetch_k`` nearest matches of ``filter``, then ``k`` of them picked by LangChain's
        ``maximal_marginal_relevance`` (``lambda_mult``: 1 relevance only, 0 diversity only)."""
        _refuse(kwargs, "max_marginal_relevance_search_by_vector")
        return self._mmr(embedding, self._hits(embedding, fetch_k, filter, _MMR_FIELDS), k, lambda_mult)

    async def amax_marginal_relevance_search_by_vector(self, embedding: list[float], k: int = 4, fetch_k: int = 20,
                                                       lambda_mult: float = 0.5, filter: dict[str, Any] | None = None,
                                                       **kwargs: Any) -> list[Document]:
        _refuse(kwargs, "amax_marginal_relevance_search_by_vector")
        return self._mmr(embedding, await self._ahits(embedding, fetch_k, filter, _MMR_FIELDS), k, lambda_mult)

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
                                      filter: dict[str, Any] | None = None, **kwargs: Any) -> list[Document]:
        return self.max_marginal_relevance_search_by_vector(self._embed_query(query), k, fetch_k, lambda_mult,
                                                            filter, **kwargs)

    async def amax_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                             lambda_mult: float = 0.5, filter: dict[str, Any] | None = None,
                                             **kwargs: Any) -> list[Document]:
        return await self.amax_marginal_relevance_search_by_vector(await self._aembed_query(query), k, fetch_k,
                                                                   lambda_mult, filter, **kwargs)

    # -- construction from texts --------------------------------------------------------------
    @classmethod
    def from_texts(cls, texts: list[str], embedding: Any, metadatas: list[dict[str, Any]] | None = None, *,
                   ids: list[str] | None = None, url: str | URL | vecbridge.Collection | None = None,
                   **kwargs: Any) -> VecbridgeVectorStore:
        """A store on ``url`` (made on this first write when it does not exist) holding ``texts``.

        ``kwargs`` are the constructor's: ``metric``, ``index`` and backend options.
        """
        store = cls(cls._target(url), embedding, **kwargs)
        try:
            store.add_texts(texts, metadatas, ids=ids)
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    async def afrom_texts(cls, texts: list[str], embedding: Any, metadatas: list[dict[str, Any]] | None = None, *,
                          ids: list[str] | None = None, url: str | URL | vecbridge.Collection | None = None,
                          **kwargs: Any) -> VecbridgeVectorStore:
        # connecting is sync in vecbridge.aio too: it runs off the loop, as vecbridge.aio.connect does
        loop = asyncio.get_running_loop()
        store = await loop.run_in_executor(None, functools.partial(cls, cls._target(url), embedding, **kwargs))
        try:
            await store.aadd_texts(texts, metadatas, ids=ids)
        except BaseException:
            await store.aclose()
            raise
        return store

    @staticmethod
    def _target(url: Any) -> Any:
        if url is None:
            raise InvalidURLError("from_texts needs url= a vecbridge URL naming a collection "
                                  "('scheme://…?collection=NAME') or an open vecbridge Collection")
        return url

    # -- closing ----------------------------------------------------------------------------
    def close(self) -> None:
        """Close the client the store opened from a URL (a collection given is left open)."""
        state, self._async = self._async, None
        if state is not None:
            state.release()
        if self._owns_client:
            self._client.close()

    async def aclose(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def __enter__(self) -> VecbridgeVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
