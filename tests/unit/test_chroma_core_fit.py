"""Chroma fitted to the core of issue 11: its error table, its translator table, the core's
exact top-k, its configuration document and its declared capabilities.

Real engines only: an embedded folder, the in-memory engine and a real ``chroma run``
server.  Expected answers come from numpy brute force, ``vecbridge.filters.evaluate``,
the data written and chromadb's own client.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

import vecbridge
from vecbridge import filters
from vecbridge.errors import (
    BackendError,
    BackendUnavailableError,
    CollectionExistsError,
    CollectionNotFoundError,
    UnsupportedFilterError,
)

chromadb = pytest.importorskip("chromadb")

import engines  # noqa: E402  (tests/conftest.py puts tests/ on the path)

from vecbridge.backends.chroma import translator  # noqa: E402

FORMS = ["embedded", "memory", pytest.param("server", marks=pytest.mark.server)]
PERSISTENT = ["embedded", pytest.param("server", marks=pytest.mark.server)]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with engines.chroma_server() as engine:
        yield engine.url


def _url(form: str, tmp_path: Any, request: pytest.FixtureRequest) -> str:
    if form == "embedded":
        return f"chroma:///{tmp_path}/chroma"
    if form == "memory":
        return "chroma://"
    return str(request.getfixturevalue("server"))


@pytest.fixture(params=FORMS)
def url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    return _url(request.param, tmp_path, request)


@pytest.fixture(params=PERSISTENT)
def persistent_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    return _url(request.param, tmp_path, request)


def _name() -> str:
    return f"c{uuid.uuid4().hex[:12]}"


# -- errors ------------------------------------------------------------------------------
def test_a_refused_connection_is_unavailable() -> None:
    port = engines.free_port()  # nothing listens there
    with pytest.raises(BackendUnavailableError) as info:
        vecbridge.connect(f"chroma://127.0.0.1:{port}")
    assert f"127.0.0.1:{port}" in str(info.value) and info.value.__cause__ is not None


def test_other_native_failures_are_not_unavailable(url: str) -> None:
    with vecbridge.connect(url) as client:
        name = _name()
        coll = client.create_collection(name, 3)
        # a name taken: Chroma says so in words only (server: ChromaError, embedded: InternalError)
        with pytest.raises(CollectionExistsError) as exists:
            client._create_collection(name, 3, "cosine", {"type": "default"})
        assert exists.value.__cause__ is not None
        # the collection dropped behind vecbridge's back: chromadb's NotFoundError
        client.native.delete_collection(name)
        with pytest.raises(CollectionNotFoundError) as gone:
            coll.count()
        assert not isinstance(gone.value, BackendUnavailableError)


def test_a_missing_tenant_is_neither_unavailable_nor_a_missing_collection(tmp_path: Any) -> None:
    with pytest.raises(BackendError) as info:
        vecbridge.connect(f"chroma:///{tmp_path}/chroma?tenant=nobody")
    assert type(info.value) is BackendError and "nobody" in str(info.value)


# -- the translator table -------------------------------------------------------------------
def test_the_table_covers_exactly_the_language() -> None:
    assert set(translator.OPERATORS) == set(filters.COMPARISONS)


def test_exists_is_refused_not_sent(url: str) -> None:
    with vecbridge.connect(url) as client:
        coll = client.create_collection(_name(), 3)
        coll.add(["a"], [[1.0, 0.0, 0.0]], [{"k": "apple"}])
        for where in ({"k": {"$exists": True}}, {"$not": {"k": {"$exists": False}}}):
            with pytest.raises(UnsupportedFilterError, match=r"\$exists"):
                coll.count(where=where)
            with pytest.raises(UnsupportedFilterError, match=r"\$exists"):
                coll.delete(where=where)
        assert coll.native.get(include=[])["ids"] == ["a"]


def test_an_operator_added_later_is_refused_everywhere(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(filters, "COMPARISONS", filters.COMPARISONS + ("$startswith",))
    with vecbridge.connect(url) as client:
        coll = client.create_collection(_name(), 3)
        coll.add(["a", "b"], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [{"k": "apple"}, {"k": "berry"}])
        for where in ({"k": {"$startswith": "a"}}, {"$not": {"k": {"$startswith": "a"}}},
                      {"$or": [{"k": "berry"}, {"k": {"$startswith": "a"}}]}):
            with pytest.raises(UnsupportedFilterError, match=r"\$startswith"):
                coll.get(where=where)
            with pytest.raises(UnsupportedFilterError, match=r"\$startswith"):
                coll.count(where=where)
            with pytest.raises(UnsupportedFilterError, match=r"\$startswith"):
                coll.query([1.0, 0.0, 0.0], k=2, where=where)
            with pytest.raises(UnsupportedFilterError, match=r"\$startswith"):
                coll.delete(where=where)
            with pytest.raises(UnsupportedFilterError, match=r"\$startswith"):
                coll.delete(ids=["a"], where=where)
        assert sorted(coll.native.get(include=[])["ids"]) == ["a", "b"]  # nothing deleted


# -- exact top-k ---------------------------------------------------------------------------------
def _sparse_graph_data(seed: int) -> tuple[np.ndarray, list[dict[str, Any]], np.ndarray]:
    """A blob of 2,000 vectors and 20 matching ones, each alone in its own direction: with
    m=2 Chroma's filtered HNSW search reaches few or none of them (seen: 0 hits)."""
    rng = np.random.default_rng(seed)
    blob = rng.standard_normal((2000, 16))
    dirs = rng.standard_normal((20, 16))
    far = dirs / np.linalg.norm(dirs, axis=1, keepdims=True) * 3 + rng.standard_normal((20, 16)) * 0.01
    vectors = np.vstack([blob, far]).astype(np.float32)
    metas = [{"t": int(i >= 2000), "i": i} for i in range(len(vectors))]
    return vectors, metas, rng.standard_normal((6, 16)).astype(np.float32)


@pytest.mark.parametrize("metric", ["l2", "cosine", "ip"])
def test_short_filtered_rows_are_the_numpy_top_k(url: str, metric: str) -> None:
    vectors, metas, queries = _sparse_graph_data(7)
    ids = [f"r{i}" for i in range(len(vectors))]
    where = {"t": 1}
    with vecbridge.connect(url) as client:
        coll = client.create_collection(_name(), 16, metric, index={"type": "hnsw", "m": 2, "ef_construction": 2,
                                                                    "ef_search": 1})
        coll.add(ids, vectors, metas)
        native = coll.native.query(query_embeddings=queries, n_results=10, where=where, include=[])
        assert any(len(row) < 10 for row in native["ids"]), "the ANN search must come back short"
        got = coll.query(queries, k=10, where=where, include=["metadata", "vector"])
    keep = [i for i, m in enumerate(metas) if filters.evaluate(where, m)]
    q = queries.astype(np.float64)
    v = vectors[keep].astype(np.float64)
    if metric == "l2":
        dist = np.sqrt(((q[:, None, :] - v[None]) ** 2).sum(-1))
    elif metric == "ip":
        dist = -(q @ v.T)
    else:
        dist = 1.0 - (q / np.linalg.norm(q, axis=1, keepdims=True)) @ (v / np.linalg.norm(v, axis=1, keepdims=True)).T
    for row, hits in zip(dist, got):
        order = np.argsort(row, kind="stable")[:10]
        assert [h.id for h in hits] == [ids[keep[j]] for j in order]
        assert np.allclose([h.distance for h in hits], row[order], atol=1e-4)
        for h in hits:  # the records' own fields, as written
            i = int(h.id[1:])
            assert h.metadata == metas[i] and np.array_equal(h.vector, vectors[i])


def test_filtered_pages_give_the_exact_vectors(url: str) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((200, 16)).astype(np.float32)
    metas = [{"t": i % 3} for i in range(200)]
    with vecbridge.connect(url) as client:
        coll = client.create_collection(_name(), 16, "cosine")
        coll.add([str(i) for i in range(200)], vectors, metas)
        recs = coll.get(where={"t": 1}, include=["vector"])
    assert sorted(int(r.id) for r in recs) == [i for i in range(200) if i % 3 == 1]
    for r in recs:  # bit-exact, although Chroma's cosine space gives back norm x unit vector
        assert r.vector.dtype == np.float32 and np.array_equal(r.vector, vectors[int(r.id)])


# -- configuration ----------------------------------------------------------------------------
def test_the_configuration_survives_reopening(persistent_url: str) -> None:
    name = _name()
    with vecbridge.connect(persistent_url) as client:
        coll = client.create_collection(name, 4, "ip", index={"type": "hnsw", "m": 8})
        coll.set_config(embedding="x", note={"by": "test"})
    with vecbridge.connect(persistent_url) as client:
        again = client.get_collection(name)
        cfg = again.config
        stored = json.loads(again.native.metadata["vecbridge_config"])  # chromadb's own read
    assert cfg["embedding"] == "x" and cfg["note"] == {"by": "test"}
    assert cfg["dimension"] == 4 and cfg["metric"] == "ip" and cfg["layout"] == "vecbridge"
    assert cfg["index"]["type"] == "hnsw" and cfg["index"]["m"] == 8
    assert stored["embedding"] == "x" and stored["dimension"] == 4


def test_collections_of_the_old_form_open_and_take_a_configuration(url: str) -> None:
    name = _name()
    with vecbridge.connect(url) as client:
        # what earlier vecbridge versions wrote: three metadata keys, no records yet
        client.native.create_collection(name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None,
                                        metadata={"vecbridge_format": 1, "vecbridge_dimension": 3,
                                                  "vecbridge_metric": "cosine", "owner": "me"})
        coll = client.get_collection(name)
        assert (coll.dimension, coll.metric, coll.vecbridge_format) == (3, "cosine", True)
        coll.add(["a", "b"], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [{"n": 1}, {"s": "x"}])
        coll.set_config(embedding="x")
        again = client.get_collection(name)
        assert again.config["embedding"] == "x" and (again.dimension, again.vecbridge_format) == (3, True)
        assert again.native.metadata["owner"] == "me"  # the user's own keys stay
        # the _vbnum list is still trusted: a negated range runs
        assert sorted(r.id for r in again.get(where={"$not": {"n": {"$gt": 0}}})) == ["b"]


def test_a_foreign_collection_with_hnsw_metadata_takes_a_configuration(url: str) -> None:
    name = _name()
    with vecbridge.connect(url) as client:
        native = client.native.create_collection(name, metadata={"hnsw:space": "l2", "team": "data"},
                                                 embedding_function=None)
        native.add(ids=["x"], embeddings=[[1.0, 2.0]])
        coll = client.get_collection(name)
        coll.set_config(embedding="x")  # Chroma's modify refuses hnsw:* keys
        again = client.get_collection(name)
        assert again.config["embedding"] == "x" and again.metric == "l2" and again.dimension == 2
        assert not again.vecbridge_format and again.native.metadata["team"] == "data"


# -- capabilities -------------------------------------------------------------------------------
def test_declared_capabilities(url: str) -> None:
    with vecbridge.connect(url) as client:
        caps = client.capabilities
        server = client.mode == "server"
        assert caps.index_types == ("hnsw",) and set(caps.metrics) == {"cosine", "l2", "ip"}
        assert caps.max_batch_rows == client.native.get_max_batch_size()
        assert caps.wire_bytes_per_float == (20 if server else 4)
        assert caps.atomic_add is False
        assert caps.shared_between_processes is server
        assert caps.persistent is (client.mode != "memory")
