"""Haystack's own DocumentStore test suite for VecbridgeDocumentStore, on every backend form.

``DocumentStoreBaseTests`` is Haystack's (haystack.testing.document_store), run unchanged but
for what it asks an implementation to provide: the ``document_store`` fixture,
``test_write_documents`` (the suite leaves the default policy to the store) and, where a
store differs, ``assert_documents_are_equal``. Ours differs in two ways, both of the storage,
not of the filters: vectors are float32 (the contract), so an embedding comes back as the
float32 value of what was written; and records come back in the backend's order, not in
the order written, so both lists are compared sorted by id. Expected answers are the
suite's own list comprehensions and, below, Haystack's reference evaluator
``document_matches_filter``.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest
from haystack import Document, Pipeline
from haystack.dataclasses import ByteStream, SparseEmbedding
from haystack.document_stores.errors import DuplicateDocumentError
from haystack.document_stores.types import DuplicatePolicy
from haystack.errors import FilterError
from haystack.testing.document_store import (
    CountDocumentsByFilterTest,
    DeleteAllTest,
    DeleteByFilterTest,
    DocumentStoreBaseTests,
)
from haystack.utils import Secret
from haystack.utils.filters import document_matches_filter

import vecbridge
from vecbridge.integrations.haystack import VecbridgeDocumentStore, VecbridgeEmbeddingRetriever
from vecbridge.scores import exact_top_k
from vecbridge.testing.plugin import unique_name
from vecbridge.url import URL


def _store_url(base: str, name: str) -> str:
    return URL.parse(base).with_query(collection=name).render(hide_secrets=False)


@pytest.fixture
def store_factory(vb_backend):
    made: list[VecbridgeDocumentStore] = []

    def make(**kwargs: Any) -> VecbridgeDocumentStore:
        store = VecbridgeDocumentStore(_store_url(vb_backend.url, unique_name("hs")), **kwargs)
        made.append(store)
        return store

    yield make
    for store in made:
        store.delete_collection()
        store.close()


def _f32(embedding: list[float] | None) -> list[float] | None:
    return None if embedding is None else np.asarray(embedding, dtype=np.float32).tolist()


# Comparisons with None are the filter language's $exists (a key present / absent), which some
# backends do not translate yet: strict xfails, so that each one is noticed when it closes.
NO_EXISTS = ["chroma"]
needs_exists = pytest.mark.notimpl(NO_EXISTS, reason="Chroma cannot test that a key exists whatever its value (vecbridge.testing.gaps: the $exists operator)")


class TestHaystackDocumentStore(DocumentStoreBaseTests):
    @pytest.fixture
    def document_store(self, store_factory):
        return store_factory(embedding_dim=768)

    def assert_documents_are_equal(self, received: list[Document], expected: list[Document]) -> None:
        got = sorted(received, key=lambda d: d.id)
        want = [Document(id=d.id, content=d.content, blob=d.blob, meta=d.meta, score=d.score,
                         embedding=_f32(d.embedding), sparse_embedding=d.sparse_embedding)
                for d in sorted(expected, key=lambda d: d.id)]
        assert got == want

    @needs_exists
    def test_comparison_equal_with_none(self, document_store, filterable_docs):
        super().test_comparison_equal_with_none(document_store, filterable_docs)

    @needs_exists
    def test_comparison_not_equal_with_none(self, document_store, filterable_docs):
        super().test_comparison_not_equal_with_none(document_store, filterable_docs)

    def test_write_documents(self, document_store):
        """The default policy (NONE) is FAIL, as in Haystack's in-memory store."""
        doc = Document(content="test doc", embedding=[0.5] * 768)
        assert document_store.write_documents([doc]) == 1
        with pytest.raises(DuplicateDocumentError):
            document_store.write_documents([doc])
        self.assert_documents_are_equal(document_store.filter_documents(), [doc])


class TestHaystackOptionalMethods(DeleteAllTest, DeleteByFilterTest, CountDocumentsByFilterTest):
    """Haystack's own tests of the optional methods this store has (it has no update_by_filter)."""

    @pytest.fixture
    def document_store(self, store_factory):
        return store_factory(embedding_dim=8)


# -- beyond Haystack's suite ------------------------------------------------------------------


def _docs(n: int = 40, dim: int = 8, seed: int = 3) -> list[Document]:
    rng = random.Random(seed)
    zones = ["", "+00:00", "+02:00", "-05:30"]
    out = []
    for i in range(n):
        meta: dict[str, Any] = {}
        if rng.random() < 0.8:
            meta["n"] = rng.choice([0, 1, 2, -3, 1.0, 0.5, True, False, None, 100])
        if rng.random() < 0.8:
            meta["s"] = rng.choice(["a", "b", "", "A", None])
        if rng.random() < 0.8:
            day = rng.choice(["1969-07-21T20:17:40", "1972-12-11T19:54:58", "1972-12-11T19:54:58.000001",
                              "1989-11-09", "2024-02-29T23:59:59"])
            meta["date"] = day + (rng.choice(zones) if "T" in day else "")
        if rng.random() < 0.3:
            meta["nested"] = {"x": rng.choice([1, 2])}
        vec = [rng.uniform(-1, 1) for _ in range(dim)] if i % 7 else None
        out.append(Document(id=f"d{i}", content=f"doc {i}", meta=meta, embedding=vec))
    return out


# Hand-picked filters over the cases where the bridge spells out Python's and Haystack's rules:
# bool/number equality, None, dates with and without zones, microseconds, nested keys, NOT.
FILTERS = [
    {"field": "meta.n", "operator": "==", "value": 1},
    {"field": "meta.n", "operator": "==", "value": True},
    {"field": "meta.n", "operator": "!=", "value": 0},
    {"field": "meta.n", "operator": ">", "value": 0},
    {"field": "meta.n", "operator": "<=", "value": 0.5},
    {"field": "meta.n", "operator": ">=", "value": True},
    {"field": "meta.n", "operator": "in", "value": [1, "a"]},
    {"field": "meta.n", "operator": "not in", "value": [0, 2]},
    {"field": "meta.n", "operator": "in", "value": []},
    {"field": "meta.s", "operator": "==", "value": ""},
    {"field": "meta.s", "operator": "not in", "value": ["a", "b"]},
    {"field": "meta.date", "operator": ">", "value": "1972-12-11T19:54:58"},
    {"field": "meta.date", "operator": ">=", "value": "1972-12-11T19:54:58.000001"},
    {"field": "meta.date", "operator": "<", "value": "1972-12-11T21:00:00+02:00"},
    {"field": "meta.date", "operator": ">", "value": "2024-02-29T20:00:00-05:00"},
    {"field": "meta.date", "operator": "==", "value": "1969-07-21T20:17:40"},
    {"field": "meta.date", "operator": "==", "value": "1969-07-21T22:17:40+02:00"},
    {"field": "meta.date", "operator": "!=", "value": "1989-11-09T00:00:00"},
    {"field": "meta.date", "operator": "in", "value": ["1989-11-09", "2024-02-29T23:59:59+00:00"]},
    {"field": "meta.nested.x", "operator": "==", "value": 2},
    {"operator": "NOT", "conditions": [{"field": "meta.n", "operator": ">", "value": 0},
                                       {"field": "meta.s", "operator": "==", "value": "a"}]},
    {"operator": "OR", "conditions": [{"field": "meta.n", "operator": "<", "value": None},
                                      {"field": "meta.date", "operator": "<=", "value": "1969-07-21T20:17:40"}]},
    {"operator": "AND", "conditions": []},
    {"operator": "OR", "conditions": []},
]


NONE_FILTERS = [
    {"field": "meta.n", "operator": "==", "value": None},
    {"field": "meta.n", "operator": "!=", "value": None},
    {"field": "meta.n", "operator": "in", "value": [1, "a", None]},
    {"field": "meta.nested.x", "operator": "not in", "value": [None, 1]},
]


def _same_answers(store_factory, flt):
    docs = _docs()
    store = store_factory()
    store.write_documents(docs)
    want = sorted(d.id for d in docs if document_matches_filter(flt, d))
    assert sorted(d.id for d in store.filter_documents(flt)) == want
    assert store.count_documents_by_filter(flt) == len(want)


@pytest.mark.parametrize("flt", FILTERS, ids=[str(i) for i in range(len(FILTERS))])
def test_filters_answer_as_haystacks_reference_evaluator(store_factory, flt):
    _same_answers(store_factory, flt)


@needs_exists
@pytest.mark.parametrize("flt", NONE_FILTERS, ids=[str(i) for i in range(len(NONE_FILTERS))])
def test_none_filters_answer_as_haystacks_reference_evaluator(store_factory, flt):
    _same_answers(store_factory, flt)


def test_filters_vecbridge_cannot_say_raise_a_filter_error(store_factory):
    store = store_factory()
    store.write_documents(_docs(5))
    for flt in ({"field": "content", "operator": "==", "value": "doc 1"},
                {"field": "meta.s", "operator": ">", "value": "a"},
                {"field": "meta.n", "operator": "==", "value": [1]},
                {"field": "meta.n", "operator": "~", "value": 1}):
        with pytest.raises(FilterError) as info:
            store.filter_documents(flt)
        assert isinstance(info.value, vecbridge.UnsupportedFilterError)


def test_documents_round_trip_whole(store_factory):
    store = store_factory()
    docs = [Document(id="a", content="x", meta={"none": None, "nested": {"k": [1, 2]}, "mixed": [1, "a"]},
                     embedding=[0.25, 0.5, 1.0], blob=ByteStream(b"\x00\x01bytes", mime_type="application/x",
                                                                   meta={"m": 1}),
                     sparse_embedding=SparseEmbedding(indices=[1, 5], values=[0.5, 0.25])),
            Document(id="b", content=None, meta={"plain": 1, "date": "2020-01-01T00:00:00"})]
    assert store.write_documents(docs) == 2
    got = {d.id: d for d in store.filter_documents()}
    assert got["a"] == docs[0]
    assert got["b"] == docs[1]  # no embedding: comes back without one


def test_every_duplicate_policy_inside_one_batch(store_factory):
    store = store_factory()
    first, second = Document(id="1", content="one", embedding=[1.0, 0.0]), Document(id="1", content="two",
                                                                                       embedding=[0.0, 1.0])
    with pytest.raises(DuplicateDocumentError):
        store.write_documents([first, second], policy=DuplicatePolicy.FAIL)
    assert store.count_documents() == 0
    assert store.write_documents([first, second], policy=DuplicatePolicy.SKIP) == 1
    assert [d.content for d in store.filter_documents()] == ["one"]
    assert store.write_documents([first, second], policy=DuplicatePolicy.OVERWRITE) == 2
    assert [d.content for d in store.filter_documents()] == ["two"]
    assert store.write_documents([first, Document(id="2", content="x", embedding=[1.0, 1.0])],
                                 policy=DuplicatePolicy.SKIP) == 1


def test_retriever_in_a_pipeline_ranks_as_numpy(store_factory):
    docs = _docs(30)
    store = store_factory()
    store.write_documents(docs)
    with_vec = [d for d in docs if d.embedding is not None]
    q = np.random.default_rng(5).normal(size=8)
    where = {"field": "meta.s", "operator": "!=", "value": "a"}
    keep = [d for d in with_vec if document_matches_filter(where, d)]
    dist, idx = exact_top_k("cosine", q[None, :], np.asarray([d.embedding for d in keep]), 5)
    pipe = Pipeline()
    pipe.add_component("retriever", VecbridgeEmbeddingRetriever(document_store=store, top_k=5))
    out = pipe.run({"retriever": {"query_embedding": q.tolist(), "filters": where}})["retriever"]["documents"]
    assert [d.id for d in out] == [keep[i].id for i in idx[0]]
    np.testing.assert_allclose([d.score for d in out], 1.0 - dist[0], atol=1e-4)
    assert all(d.embedding is None for d in out)


def test_to_dict_from_dict(vb_backend, monkeypatch):
    url = _store_url(vb_backend.url, unique_name("hs"))
    store = VecbridgeDocumentStore(url, embedding_dim=4, metric="l2")
    retriever = VecbridgeEmbeddingRetriever(document_store=store, top_k=3,
                                            filters={"field": "meta.a", "operator": "==", "value": 1})
    again = VecbridgeEmbeddingRetriever.from_dict(retriever.to_dict())
    assert again.to_dict() == retriever.to_dict()
    assert again.document_store.metric == "l2" and again.document_store.embedding_dim == 4
    monkeypatch.setenv("VB_TEST_URL", url)
    secret = VecbridgeDocumentStore(Secret.from_env_var("VB_TEST_URL"))
    assert "VB_TEST_URL" in str(secret.to_dict())
    assert VecbridgeDocumentStore.from_dict(secret.to_dict())._handle.name == store._handle.name
    with pytest.raises(ValueError, match="password"):
        VecbridgeDocumentStore("pgvector://u:hunter2@localhost:5432/db?collection=docs").to_dict()
    for s in (store, again.document_store, secret):
        s.close()


def test_import_vecbridge_imports_no_framework():
    import subprocess
    import sys

    code = ("import sys, vecbridge, vecbridge.integrations; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'haystack', 'llama_index', 'langchain_core'}))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"
