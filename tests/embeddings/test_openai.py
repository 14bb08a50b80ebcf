"""The ``openai`` provider through the real ``openai`` client against a real local HTTP server."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
from openai_server import MODEL, EmbeddingServer

import vecbridge
from vecbridge import errors
from vecbridge.embeddings import get_embedder, parse_spec

KEY = "sk-test-key-0123456789"
TEXTS = [f"sentence number {i} about {'cats' if i % 2 else 'stocks'}" for i in range(10)]


@pytest.fixture
def server(st_model):
    with EmbeddingServer(st_model, key=KEY) as srv:
        yield srv


@pytest.fixture(autouse=True)
def key_env(monkeypatch):
    monkeypatch.setenv("VB_TEST_KEY", KEY)


def spec(server, **extra):
    opts = "&".join(f"{k}={v}" for k, v in {"base_url": server.url, "api_key_env": "VB_TEST_KEY", **extra}.items())
    return f"openai:{MODEL}?{opts}"


def test_batches_order_and_vectors(server, st_model):
    emb = get_embedder(spec(server, batch_size=3, max_retries=0))
    got = emb.embed_documents(TEXTS)
    want = st_model.encode(TEXTS, normalize_embeddings=True)
    assert got.dtype == np.float32 and got.shape == (10, 384)
    np.testing.assert_allclose(got, want, atol=1e-5)  # in input order although the server shuffles
    sizes = [len(r["body"]["input"]) for r in server.requests]
    assert sizes == [3, 3, 3, 1]
    assert emb.dimension == 384
    np.testing.assert_allclose(emb.embed_query(TEXTS[4]), want[4], atol=1e-5)


def test_dimensions_are_sent_and_checked(server, st_model):
    emb = get_embedder(spec(server, dimensions=128))
    got = emb.embed_documents(TEXTS[:2])
    assert got.shape == (2, 128) and emb.dimension == 128
    assert all(r["body"]["dimensions"] == 128 for r in server.requests)
    with pytest.raises(errors.EmbeddingError, match="400"):
        get_embedder(spec(server, dimensions=4096)).embed_documents(["x"])


def test_retries_on_429_and_5xx_honour_retry_after(server, st_model):
    server.fail_next = [(429, 0.5), (503, None), (500, None)]
    emb = get_embedder(spec(server, max_retries=3))
    t0 = time.monotonic()
    got = emb.embed_documents(TEXTS[:2])
    assert time.monotonic() - t0 >= 0.5  # waited as Retry-After said
    np.testing.assert_allclose(got, st_model.encode(TEXTS[:2], normalize_embeddings=True), atol=1e-5)
    assert len(server.requests) == 4
    server.requests.clear()
    server.fail_next = [(500, 0)] * 3
    with pytest.raises(errors.EmbeddingError, match="500 after every retry"):
        get_embedder(spec(server, max_retries=2)).embed_documents(["x"])
    assert len(server.requests) == 3


def test_clear_errors_for_a_wrong_key_or_model(server, monkeypatch):
    monkeypatch.setenv("VB_TEST_KEY", "sk-wrong-secret-777")
    with pytest.raises(errors.EmbeddingError) as info:
        get_embedder(spec(server)).embed_documents(["x"])
    assert "401" in str(info.value) and "VB_TEST_KEY" in str(info.value)
    assert "sk-wrong-secret-777" not in str(info.value)
    monkeypatch.setenv("VB_TEST_KEY", KEY)
    with pytest.raises(errors.EmbeddingError, match="no such model"):
        get_embedder(spec(server).replace(MODEL, "no-such-model")).embed_documents(["x"])
    monkeypatch.delenv("VB_TEST_KEY")
    with pytest.raises(errors.EmbeddingError, match=r"\$OPENAI_API_KEY"):
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
        get_embedder(f"openai:{MODEL}")


def test_the_key_reaches_no_repr_spec_log_or_file(server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    emb = get_embedder(spec(server))
    emb.embed_documents(TEXTS[:3])
    with vecbridge.connect(f"faiss:///{tmp_path}/db") as client:
        coll = client.create_collection("docs", embedding=emb)
        coll.add(["a"], documents=["a cat"])
        assert coll.config["embedding"]["spec"] == emb.spec
    for text in (repr(emb), emb.spec, caplog.text):
        assert KEY not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert server.requests[0]["headers"]["authorization"] == f"Bearer {KEY}"  # it was sent, though


def test_a_spec_never_holds_a_secret():
    with pytest.raises(errors.InvalidURLError, match="api_key_env"):
        parse_spec("openai:m?api_key=sk-123")
