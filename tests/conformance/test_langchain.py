"""vecbridge inside LangChain, on every backend form of the conformance suite.

``TestLangChainStandard`` is LangChain's own standard suite
(``langchain_tests.integration_tests.VectorStoreIntegrationTests``, sync and async), run
unchanged: none of its tests is overridden or skipped.  The tests below it check what
that suite does not: filters, scores, relevance, MMR, retrievers, delete-all, metadata
LangChain may hold and vecbridge cannot, lazy creation, the embedder adapter.  Expected
answers come from numpy over the vectors the embedding model gives and from
``vecbridge.filters.evaluate``, never from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import VectorStoreIntegrationTests

import vecbridge
from vecbridge.integrations.langchain import VecbridgeVectorStore
from vecbridge.testing.plugin import unique_name


def store_url(base: str, name: str) -> str:
    return f"{base}{'&' if '?' in base else '?'}collection={name}"


@contextlib.contextmanager
def fresh_store(vb_backend, embedding, **kwargs) -> Iterator[VecbridgeVectorStore]:
    """A store on a collection that does not exist yet; the collection is dropped afterwards."""
    name = unique_name("lc")
    store = VecbridgeVectorStore(store_url(vb_backend.url, name), embedding, **kwargs)
    try:
        yield store
    finally:
        if name in store.client.list_collections():
            store.client.delete_collection(name)
        store.close()


# pytest-asyncio runs the suite's async tests; its sync tests carry the mark harmlessly
@pytest.mark.asyncio
@pytest.mark.filterwarnings("ignore:The test <Function .* is marked with '@pytest.mark.asyncio'")
class TestLangChainStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, vb_backend) -> Iterator[VectorStore]:
        with fresh_store(vb_backend, self.get_embeddings()) as store:
            yield store


# -- beyond the standard suite ---------------------------------------------------------------
DIM = 16
N = 40
TEXTS = [f"record {i}: {' '.join(['alpha', 'beta', 'gamma', 'delta', 'eps'][j % 5] for j in range(i % 7 + 1))}"
         for i in range(N)]
METAS = [{"g": i % 3, "n": i, "tags": ["x", "y"] if i % 4 == 0 else ["y"], "name": f"r{i}"} for i in range(N)]
IDS = [f"id{i}" for i in range(N)]
QUERIES = ["what about gamma", "beta beta", "record 7"]
WHERES = [None, {"g": 1}, {"n": {"$gte": 10, "$lt": 30}}, {"$or": [{"g": 0}, {"tags": {"$contains": "x"}}]},
          {"$not": {"name": {"$in": ["r1", "r2", "r3"]}}}]


def fake_embeddings():
    from langchain_core.embeddings import DeterministicFakeEmbedding

    return DeterministicFakeEmbedding(size=DIM)


class HashEmbedder:
    """A real (tiny, deterministic) vecbridge embedder: the sum of one pseudo-random vector per
    character trigram (seeded by its CRC-32), unit length."""

    def __init__(self, model: str = "16", **options):
        self.dimension = int(model)
        self.spec = f"lchash:{self.dimension}"

    def embed_documents(self, texts):
        import zlib

        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            padded = f"  {text}  "
            for j in range(len(padded) - 2):
                seed = zlib.crc32(padded[j:j + 3].encode())
                out[row] += np.random.default_rng(seed).standard_normal(self.dimension, dtype=np.float32)
            out[row] /= np.linalg.norm(out[row]) or 1.0
        return out

    def embed_query(self, text):
        return self.embed_documents([text])[0]


def numpy_scores(metric: str, q: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    if metric == "cosine":
        return (vectors @ q) / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(q))
    if metric == "l2":
        return -np.linalg.norm(vectors - q, axis=1)
    return vectors @ q


def expected(metric: str, q, vectors, where, k):
    keep = [i for i in range(N) if where is None or vecbridge.filters.evaluate(where, METAS[i])]
    s = numpy_scores(metric, np.asarray(q, dtype=np.float64), vectors[keep].astype(np.float64))
    order = np.argsort(-s, kind="stable")[:k]
    return [IDS[keep[j]] for j in order], s[order]


def relevance_formula(metric: str, score: np.ndarray) -> np.ndarray:
    if metric == "cosine":
        return (1 + score) / 2
    if metric == "l2":
        return 1 / (1 - score)
    return 1 / (1 + np.exp(-score))


@pytest.fixture
def exact(vb_backend):
    from vecbridge.testing._helpers import exact_index

    return exact_index(vb_backend)


@pytest.fixture(params=["cosine", "l2", "ip"])
def filled_store(request, vb_backend, exact):
    emb = fake_embeddings()
    with fresh_store(vb_backend, emb, metric=request.param, index=exact) as store:
        store.add_texts(TEXTS, METAS, ids=IDS)
        yield store, np.asarray(emb.embed_documents(TEXTS), dtype=np.float32), request.param


def test_search_filters_scores_and_relevance(filled_store):
    store, vectors, metric = filled_store
    emb = store.embeddings
    for text in QUERIES:
        q = emb.embed_query(text)
        for where in WHERES:
            want_ids, want_scores = expected(metric, q, vectors, where, 5)
            got = store.similarity_search_with_score(text, k=5, filter=where)
            assert [d.id for d, _ in got] == want_ids, (text, where)
            np.testing.assert_allclose([s for _, s in got], want_scores, atol=1e-4)
            for d, _ in got:
                i = IDS.index(d.id)
                assert (d.page_content, d.metadata) == (TEXTS[i], METAS[i])
            rel = store.similarity_search_with_relevance_scores(text, k=5, filter=where)
            assert [d.id for d, _ in rel] == want_ids
            values = np.array([r for _, r in rel])
            assert ((values >= 0) & (values <= 1)).all()
            np.testing.assert_allclose(values, relevance_formula(metric, want_scores), atol=1e-4)
            assert [d.id for d in store.similarity_search_by_vector(q, k=5, filter=where)] == want_ids

            async def both(text=text, q=q, where=where):
                a = await store.asimilarity_search_with_score(text, k=5, filter=where)
                b = await store.asimilarity_search_with_relevance_scores(text, k=5, filter=where)
                c = await store.asimilarity_search_by_vector(q, k=5, filter=where)
                return a, b, c

            a, b, c = asyncio.run(both())
            assert [d.id for d, _ in a] == want_ids
            np.testing.assert_allclose([s for _, s in a], want_scores, atol=1e-4)
            np.testing.assert_allclose([r for _, r in b], values, atol=1e-6)
            assert [d.id for d in c] == want_ids


def test_mmr_and_every_retriever_search_type(vb_backend, exact):
    from langchain_core.vectorstores.utils import maximal_marginal_relevance

    emb = fake_embeddings()
    vectors = np.asarray(emb.embed_documents(TEXTS), dtype=np.float32)
    with fresh_store(vb_backend, emb, index=exact) as store:
        store.add_documents([__import__("langchain_core.documents").documents.Document(
            id=IDS[i], page_content=TEXTS[i], metadata=METAS[i]) for i in range(N)])
        for text in QUERIES:
            q = emb.embed_query(text)
            for where in WHERES[:3]:
                cand, _ = expected("cosine", q, vectors, where, 12)
                picked = maximal_marginal_relevance(np.asarray(q), [vectors[IDS.index(c)] for c in cand],
                                                    lambda_mult=0.3, k=4)
                want_mmr = [cand[j] for j in picked]
                got = store.max_marginal_relevance_search(text, k=4, fetch_k=12, lambda_mult=0.3, filter=where)
                assert [d.id for d in got] == want_mmr
                got = asyncio.run(store.amax_marginal_relevance_search(text, k=4, fetch_k=12, lambda_mult=0.3,
                                                                       filter=where))
                assert [d.id for d in got] == want_mmr

                top, scores = expected("cosine", q, vectors, where, 4)
                threshold = float((relevance_formula("cosine", scores[1]) + relevance_formula("cosine", scores[2])) / 2)
                retrievers = {
                    "similarity": (store.as_retriever(search_kwargs={"k": 4, "filter": where}), top),
                    "similarity_score_threshold": (store.as_retriever(
                        search_type="similarity_score_threshold",
                        search_kwargs={"k": 4, "filter": where, "score_threshold": threshold}), top[:2]),
                    "mmr": (store.as_retriever(search_type="mmr", search_kwargs={
                        "k": 4, "fetch_k": 12, "lambda_mult": 0.3, "filter": where}), want_mmr),
                }
                for kind, (retriever, want) in retrievers.items():
                    assert [d.id for d in retriever.invoke(text)] == want, kind
                    assert [d.id for d in asyncio.run(retriever.ainvoke(text))] == want, kind


def test_delete_by_filter_and_none_deletes_everything(vb_backend):
    with fresh_store(vb_backend, fake_embeddings()) as store:
        store.add_texts(TEXTS, METAS, ids=IDS)
        assert store.delete(filter={"g": 1}) is True
        kept = [IDS[i] for i in range(N) if not vecbridge.filters.evaluate({"g": 1}, METAS[i])]
        assert sorted(d.id for d in store.get_by_ids(IDS)) == sorted(kept)
        assert asyncio.run(store.adelete(["id0", "id3"], filter={"g": 0})) is True  # both: AND
        kept = [i for i in kept if i not in ("id0", "id3")]
        assert sorted(d.id for d in store.get_by_ids(IDS)) == sorted(kept)
        assert store.delete() is True
        assert store.get_by_ids(IDS) == [] and store.collection.count() == 0
        store.add_texts(TEXTS[:3], ids=IDS[:3])
        assert asyncio.run(store.adelete()) is True
        assert store.collection.count() == 0


@pytest.mark.parametrize("bad, key", [({"source": None}, "source"), ({"ok": 1, "nested": {"a": 1}}, "nested"),
                                      ({"when": __import__("datetime").date(2024, 1, 2)}, "when")])
def test_metadata_vecbridge_cannot_hold_is_refused_naming_the_key(vb_backend, bad, key):
    from langchain_core.documents import Document

    with fresh_store(vb_backend, fake_embeddings()) as store:
        docs = [Document(page_content="fine", metadata={"a": 1}), Document(page_content="bad", metadata=bad)]
        with pytest.raises(vecbridge.InvalidMetadataError, match=f"metadatas\\[1\\]\\['{key}'\\]"):
            store.add_documents(docs)
        with pytest.raises(vecbridge.InvalidMetadataError, match=f"'{key}'"):
            asyncio.run(store.aadd_documents(docs))
        assert store.collection is None  # refused before the collection was made: nothing written
        assert store.similarity_search("fine", k=3) == []


def test_from_texts_makes_the_collection_with_the_embeddings_dimension(vb_backend):
    from langchain_core.embeddings import DeterministicFakeEmbedding

    name = unique_name("lc")
    url = store_url(vb_backend.url, name)
    store = VecbridgeVectorStore.from_texts(TEXTS[:5], DeterministicFakeEmbedding(size=12), METAS[:5],
                                            ids=IDS[:5], url=url, metric="l2")
    try:
        coll = store.client.get_collection(name)
        assert (coll.dimension, coll.metric, coll.count()) == (12, "l2", 5)
        got = coll.get(IDS[:5])
        assert [(r.id, r.document, r.metadata) for r in got] == list(zip(IDS[:5], TEXTS[:5], METAS[:5]))
    finally:
        store.client.delete_collection(name)
        store.close()

    async def from_async():
        s = await VecbridgeVectorStore.afrom_texts(TEXTS[:4], DeterministicFakeEmbedding(size=10), url=url)
        return s, await s.aget_by_ids(["nope"])

    store, missing = asyncio.run(from_async())
    try:
        assert missing == []
        coll = store.client.get_collection(name)
        assert (coll.dimension, coll.metric, coll.count()) == (10, "cosine", 4)
        assert sorted(r.document for r in coll.get(limit=10)) == sorted(TEXTS[:4])
    finally:
        store.client.delete_collection(name)
        store.close()


def test_a_vecbridge_embedder_is_stored_and_used_by_default(vb_backend, exact):
    from vecbridge.embeddings import register_embedder
    from vecbridge.integrations.langchain import VecbridgeEmbeddings

    register_embedder("lchash", HashEmbedder)
    model = HashEmbedder("16")
    vectors = model.embed_documents(TEXTS)
    with fresh_store(vb_backend, "lchash:16", index=exact) as store:
        store.add_texts(TEXTS, METAS, ids=IDS)
        assert store.collection.config["embedding"]["spec"] == "lchash:16"
        again = VecbridgeVectorStore(store.collection)  # no embedding=: the collection's own embedder
        assert isinstance(again.embeddings, VecbridgeEmbeddings)
        for text in QUERIES:
            want, scores = expected("cosine", model.embed_query(text), vectors, {"g": 2}, 4)
            got = again.similarity_search_with_score(text, k=4, filter={"g": 2})
            assert [d.id for d, _ in got] == want
            np.testing.assert_allclose([s for _, s in got], scores, atol=1e-4)
            # the collection embeds the query itself when asked for text: the same answer
            assert [h.id for h in store.collection.query(text=text, k=4, where={"g": 2})] == want
        with pytest.raises(vecbridge.EmbeddingMismatchError):
            VecbridgeVectorStore(store.collection, "lchash:8")


def test_embeddings_adapter_is_a_langchain_embeddings():
    from langchain_core.embeddings import Embeddings

    from vecbridge.integrations.langchain import VecbridgeEmbeddings

    model = HashEmbedder("16")
    emb = VecbridgeEmbeddings(model)
    assert isinstance(emb, Embeddings) and (emb.dimension, emb.spec) == (16, "lchash:16")
    got = emb.embed_documents(TEXTS[:3])
    assert isinstance(got, list) and all(isinstance(v, float) for v in got[0])
    np.testing.assert_array_equal(np.asarray(got, dtype=np.float32), model.embed_documents(TEXTS[:3]))
    np.testing.assert_array_equal(np.asarray(asyncio.run(emb.aembed_query("q")), dtype=np.float32),
                                  model.embed_query("q"))


def test_empty_store_reads_refuse_bad_arguments(vb_backend):
    with fresh_store(vb_backend, fake_embeddings()) as store:
        assert store.similarity_search("x", k=2, filter={"g": 1}) == []
        with pytest.raises(vecbridge.InvalidFilterError):
            store.similarity_search("x", filter={"g": {"$regex": "a"}})
        with pytest.raises(TypeError, match="where"):
            store.similarity_search("x", where={"g": 1})
        with pytest.raises(vecbridge.InvalidRecordError, match="2 ids for 1 texts"):
            store.add_texts(["a"], ids=["1", "2"])


def test_async_methods_run_on_vecbridge_aio_in_each_event_loop(vb_backend):
    """Two loops one after the other (asyncio.run twice): each gets its own async collection."""
    with fresh_store(vb_backend, fake_embeddings()) as store:
        ids = asyncio.run(store.aadd_texts(TEXTS[:6], METAS[:6]))
        first = store._async
        assert isinstance(first.coll, vecbridge.aio.AsyncCollection)
        got = asyncio.run(store.aget_by_ids(ids))
        assert store._async is not first and [d.id for d in got] == ids
        assert [d.page_content for d in got] == TEXTS[:6]


def test_import_vecbridge_imports_no_framework():
    import subprocess
    import sys

    code = ("import sys, vecbridge, vecbridge.integrations, vecbridge.aio; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('langchain_core', 'langchain')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
