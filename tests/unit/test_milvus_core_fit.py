"""Milvus in the new core: the error table, the operator table, exact top-k completed by the
core, the configuration document, and capabilities that say what the engine holds.

Every test runs on Milvus Lite (a fresh ``.db``) and on a real Milvus 2.3.5 server
(tests/engines.py, or ``VECBRIDGE_TEST_MILVUS_URL``).  Expected answers come from numpy
(the test's own ranking), the reference
evaluator, the data written, and pymilvus's own reads.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import engines
import numpy as np
import pytest

import vecbridge
from vecbridge import filters
from vecbridge.base import classify

pytest.importorskip("pymilvus")

from vecbridge.backends.milvus import MilvusClient, translator


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    given = os.environ.get("VECBRIDGE_TEST_MILVUS_URL")
    if given:
        yield given
        return
    with engines.milvus_server() as engine:
        yield engine.url


@pytest.fixture(params=["lite", "server"])
def url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    if request.param == "lite":
        return f"milvus:///{tmp_path}/milvus.db"
    return str(request.getfixturevalue("server_url"))


@pytest.fixture
def name() -> str:
    return "t" + uuid.uuid4().hex[:12]


# -- errors: one table ---------------------------------------------------------------------
def test_a_collection_dropped_behind_the_backends_back_is_collection_not_found(url: str, name: str) -> None:
    with vecbridge.connect(url) as client:
        coll = client.create_collection(name, 4, "l2")
        coll.add(["a"], np.ones((1, 4)))
        client.native.drop_collection(name)
        with pytest.raises(vecbridge.CollectionNotFoundError) as info:
            coll.count()
        assert not isinstance(info.value, vecbridge.BackendUnavailableError)  # a retry cures nothing here
        assert name in str(info.value) and info.value.__cause__ is not None


def test_an_expression_the_engine_refuses_is_an_unsupported_filter_not_unavailable(url: str, name: str) -> None:
    with vecbridge.connect(url) as client:
        client.create_collection(name, 4, "l2")
        with pytest.raises(Exception) as info:
            client.native.query(name, filter="id >>> 3", consistency_level="Strong")
        assert classify(info.value, MilvusClient.error_map) is vecbridge.UnsupportedFilterError
        client.delete_collection(name)


def test_other_native_failures_stay_plain_backend_errors(url: str, name: str) -> None:
    with vecbridge.connect(url) as client:
        client.create_collection(name, 4, "l2")
        with pytest.raises(Exception) as info:  # a vector of the wrong dimension, past vecbridge's checks
            client.native.upsert(name, [{"id": "a", "vector": [1.0, 2.0], "document": "", "metadata": {}}])
        assert classify(info.value, MilvusClient.error_map) is vecbridge.BackendError
        client.delete_collection(name)


# -- filters: a table keyed by operator ------------------------------------------------------
def test_operator_table_covers_the_language() -> None:
    assert set(translator.OPERATORS) == set(filters.COMPARISONS)


def test_an_operator_added_to_the_language_is_refused(url: str, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with vecbridge.connect(url) as client:
        coll = client.create_collection(name, 4, "l2")
        coll.add(["a", "b"], np.eye(4)[:2], [{"k": "abc"}, {"k": "xyz"}])
        monkeypatch.setattr(filters, "COMPARISONS", filters.COMPARISONS + ("$startswith",))
        where = {"k": {"$startswith": "a"}}
        for call in (lambda: coll.get(where=where), lambda: coll.count(where), lambda: coll.get(["a"], where=where),
                     lambda: coll.query(np.ones(4), k=2, where=where), lambda: coll.delete(where=where),
                     lambda: coll.delete(["a"], where=where)):
            with pytest.raises(vecbridge.UnsupportedFilterError, match=r"\$startswith"):
                call()
        monkeypatch.undo()
        assert sorted(r.id for r in coll.get()) == ["a", "b"]  # delete removed nothing
        client.delete_collection(name)


# -- exact top-k: a short ANN row is completed by the core ------------------------------------
def _numpy_l2_top_k(q: np.ndarray, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = np.sqrt(((x[None, :, :].astype(np.float64) - q[:, None, :]) ** 2).sum(-1))
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, 1), order


def test_short_filtered_ivf_rows_are_answered_exactly(url: str, name: str) -> None:
    # IVF with nprobe=1: the search looks into one list, and the few matching records spread
    # over all lists are mostly elsewhere, so the native search comes back short
    n, dim, k = 3000, 16, 10
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, dim)).astype(np.float32)
    metas = [{"g": 1 if i % 250 == 0 else 0} for i in range(n)]
    ids = [f"r{i}" for i in range(n)]
    q = rng.normal(size=(5, dim)).astype(np.float32)
    with vecbridge.connect(url) as client:
        coll = client.create_collection(name, dim, "l2", index={"type": "ivf", "nlist": 64, "nprobe": 1})
        coll.add(ids, x, metas)
        client.native.flush(name)  # a sealed segment gets its IVF index (searches of unindexed rows are exact)
        native_filter = 'metadata["n:g"] == 1'  # the stored layout (translator.py), written out by hand
        deadline, lens = time.monotonic() + 120, [k]
        while time.monotonic() < deadline:
            res = client.native.search(name, data=q, filter=native_filter, limit=k, anns_field="vector",
                                       search_params={"metric_type": "L2", "params": {"nprobe": 1}},
                                       consistency_level="Strong")
            lens = [len(r) for r in res]
            if min(lens) < k:
                break
            time.sleep(2)
        assert min(lens) < k, f"the native search never came back short: {lens}"
        keep = [i for i, m in enumerate(metas) if filters.evaluate({"g": 1}, m)]
        assert len(keep) == 12
        want_d, want_i = _numpy_l2_top_k(q, x[keep], k)
        hits = coll.query(q, k=k, where={"g": 1})
        for row, d, i in zip(hits, want_d, want_i):
            assert [h.id for h in row] == [ids[keep[j]] for j in i]
            np.testing.assert_allclose([h.distance for h in row], d, atol=1e-4)
            assert all(h.metadata == {"g": 1} for h in row)
        client.delete_collection(name)


# -- configuration -----------------------------------------------------------------------------
def test_configuration_survives_reopening(url: str, name: str) -> None:
    with vecbridge.connect(url) as client:
        coll = client.create_collection(name, 4, "ip", index={"type": "hnsw", "m": 8, "ef_construction": 64,
                                                              "ef_search": 33})
        coll.set_config(embedding="x", note={"a": [1, 2]})
    with vecbridge.connect(url) as client:
        coll = client.get_collection(name)
        cfg = coll.config
        assert cfg["embedding"] == "x" and cfg["note"] == {"a": [1, 2]}
        assert (cfg["dimension"], cfg["metric"], cfg["layout"]) == (4, "ip", "vecbridge")
        assert cfg["index"] == {"type": "hnsw", "m": 8, "ef_construction": 64, "ef_search": 33}
        coll.set_config(note=None)
        props = client.native.describe_collection(name)["properties"]
        stored = json.loads(props["vecbridge.config"])  # one property, read natively
        assert stored == {"embedding": "x", "index": cfg["index"]}
        client.delete_collection(name)


def test_a_collection_with_the_old_index_property_still_opens(url: str, name: str) -> None:
    from pymilvus import DataType
    from pymilvus import MilvusClient as Native

    spec = {"type": "hnsw", "m": 8, "ef_construction": 64, "ef_search": 41}  # ef_search: in the property only
    with vecbridge.connect(url) as client:
        n = client.native
        schema = Native.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=256)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
        schema.add_field("document", DataType.VARCHAR, max_length=65535)
        schema.add_field("metadata", DataType.JSON)
        params = Native.prepare_index_params()
        params.add_index("vector", index_type="HNSW", metric_type="L2", params={"M": 8, "efConstruction": 64})
        n.create_collection(name, schema=schema, index_params=params, properties={"vecbridge.index": json.dumps(spec)})
        coll = client.get_collection(name)
        assert coll.index == spec and coll.config["index"] == spec
        coll.set_config(embedding="y")
        assert client.get_collection(name).config["embedding"] == "y"
        assert client.get_collection(name).index == spec
        client.delete_collection(name)


# -- capabilities ------------------------------------------------------------------------------
def test_capabilities_per_form(url: str) -> None:
    with vecbridge.connect(url) as client:
        caps = client.capabilities
        assert caps.shared_between_processes is (client.mode == "server")
        assert caps.ordered_scan and not caps.atomic_add and caps.persistent
        assert (caps.max_dimension, caps.max_document_bytes, caps.max_metadata_bytes) == (32768, 65535, 65536)


def test_metadata_is_measured_as_milvus_stores_it(url: str, name: str) -> None:
    meta = {"k": "é" * 10, "n": 3, "f": 0.5, "b": True, "tags": ["a", "b"], 'odd "key"': 1}
    with vecbridge.connect(url) as client:
        coll = client.create_collection(name, 4, "l2")
        coll.add(["a", "b"], np.ones((2, 4)), [meta, meta], ["doc", None])
        rows = client.native.query(name, filter='id in ["a", "b"]', output_fields=["metadata"], consistency_level="Strong")
        stored = {r["id"]: len(json.dumps(r["metadata"], separators=(",", ":"), ensure_ascii=False).encode()) for r in rows}
        measure = client.capabilities.metadata_bytes
        assert measure is not None
        assert measure(meta, "doc") == stored["a"] and measure(meta, None) == stored["b"]
        assert stored["b"] > stored["a"] > len(json.dumps(meta, ensure_ascii=False).encode())
        # a record within the limit as plain JSON but over it as stored: refused before any write
        big = {"k": "v" * 65_520}
        assert len(json.dumps(big).encode()) <= 65536 < measure(big, None)
        with pytest.raises(vecbridge.InvalidRecordError, match="65,536"):
            coll.add(["c", "d"], np.ones((2, 4)), [{}, big])
        assert coll.count() == 2
        client.delete_collection(name)
