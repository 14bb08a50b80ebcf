"""Milvus collections that vecbridge did not create (CONTRACT §7, issue 12), on Milvus Lite.

Every collection is made with pymilvus here (quick setup; explicit schemas with INT64 and
VARCHAR keys, several vector fields, scalar/ARRAY/JSON/dynamic fields, a partition); every
expected answer comes from the rows written (the metadata each row must map to is written
out by hand), from ``vecbridge.filters.evaluate`` over it, from numpy brute force, and from
pymilvus reads after vecbridge wrote -- never from vecbridge's own reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import engines
import numpy as np
import pytest
from pymilvus import DataType, MilvusClient

import vecbridge
from vecbridge import InvalidRecordError, UnsupportedFeatureError, filters
from vecbridge.cli import main as cli_main

N = 20
RNG = np.random.default_rng(7)
V8 = RNG.normal(size=(N, 8)).astype(np.float32)
V4 = RNG.normal(size=(N, 4)).astype(np.float32)
COLOURS = ["red", "blue", "green"]


def _quick_meta(i: int) -> dict[str, Any]:
    """Row i of `quick`: its dynamic keys, the nested object as dotted keys."""
    return {"colour": COLOURS[i % 3], "n": i, "tags": [COLOURS[i % 3], f"t{i % 4}"], "dims.w": i % 5}


def _expl_meta(i: int) -> dict[str, Any]:
    """Row i of `expl`: real fields, the JSON field's keys (dotted), the dynamic key."""
    out: dict[str, Any] = {"count": i, "score": i * 0.5, "flag": i % 2 == 0, "labels": [f"l{i % 3}", "all"],
                           "info.size": i % 4, "info.kind.name": COLOURS[i % 3]}
    if i % 3:
        out["extra"] = f"e{i}"
    return out


class Form:
    """Where the collections are: a vecbridge URL (without a query) and the pymilvus uri."""

    def __init__(self, url: str, uri: str, multi: bool):
        # Milvus 2.3 has one vector field per collection ("multiple vector fields is not
        # supported"); Milvus Lite takes several
        self.url, self.uri, self.multi = url, uri, multi

    def native(self) -> MilvusClient:
        return MilvusClient(uri=self.uri)


@pytest.fixture(scope="module", params=["lite", "server"])
def db(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    if request.param == "lite":
        path = str(tmp_path_factory.mktemp("milvus-native") / "native.db")
        form = Form(f"milvus:///{path}", path, True)
        yield from _fill(form)
    else:
        with engines.milvus_server() as engine:
            yield from _fill(Form(engine.url, engine.native["uri"], False))


def _fill(form: Form) -> Any:
    native = form.native()
    native.create_collection("quick", dimension=8, metric_type="L2")
    native.insert("quick", [{"id": i * 10, "vector": V8[i].tolist(), "colour": COLOURS[i % 3], "n": i,
                             "tags": [COLOURS[i % 3], f"t{i % 4}"], "dims": {"w": i % 5}} for i in range(N)])
    s = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    s.add_field("pk", DataType.VARCHAR, is_primary=True, max_length=64)
    s.add_field("a", DataType.FLOAT_VECTOR, dim=8)
    if form.multi:
        s.add_field("b", DataType.FLOAT_VECTOR, dim=4)
    s.add_field("text", DataType.VARCHAR, max_length=200)
    s.add_field("count", DataType.INT64)
    s.add_field("score", DataType.DOUBLE)
    s.add_field("flag", DataType.BOOL)
    s.add_field("labels", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=8, max_length=20)
    s.add_field("info", DataType.JSON)
    ip = native.prepare_index_params()
    ip.add_index("a", index_type="FLAT", metric_type="L2")
    if form.multi:
        ip.add_index("b", index_type="FLAT", metric_type="IP")
    native.create_collection("expl", schema=s, index_params=ip)
    native.create_partition("expl", "p1")
    for i in range(N):
        row = {"pk": f'k"{i}\\', "a": V8[i].tolist(), **({"b": V4[i].tolist()} if form.multi else {}), "text": f"doc {i}", "count": i,
               "score": i * 0.5, "flag": i % 2 == 0, "labels": [f"l{i % 3}", "all"],
               "info": {"size": i % 4, "kind": {"name": COLOURS[i % 3]}}}
        if i % 3:
            row["extra"] = f"e{i}"
        native.insert("expl", [row], partition_name="p1" if i % 2 else "_default")
    s2 = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    s2.add_field("key", DataType.INT64, is_primary=True)
    s2.add_field("emb", DataType.FLOAT_VECTOR, dim=4)
    s2.add_field("content", DataType.VARCHAR, max_length=200)
    s2.add_field("metadata", DataType.JSON)
    s2.add_field("year", DataType.INT64)
    ip2 = native.prepare_index_params()
    ip2.add_index("emb", index_type="FLAT", metric_type="COSINE")
    native.create_collection("typed", schema=s2, index_params=ip2)
    native.insert("typed", [{"key": i, "emb": V4[i].tolist(), "content": f"c{i}", "metadata": {"g": i % 2},
                             "year": 2000 + i} for i in range(N)])
    native.close()
    yield form


def _url(form: Form, **q: str) -> str:
    return form.url + ("?" + "&".join(f"{k}={v}" for k, v in q.items()) if q else "")


def test_listing_never_fails_and_says_why(db: Form, capsys: pytest.CaptureFixture[str]) -> None:
    with vecbridge.connect(_url(db)) as client:
        entries = {e["name"]: e for e in client.describe_collections()}
        assert sorted(client.list_collections()) == ["expl", "quick", "typed"]
    assert entries["quick"] == {"name": "quick", "layout": "native", "error": None}
    assert entries["typed"]["error"] is None
    if db.multi:
        assert "several vector fields" in entries["expl"]["error"] and "vector_field" in entries["expl"]["error"]
    else:
        assert entries["expl"]["error"] is None
    assert cli_main(["ls", _url(db), "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["collections"]}
    assert rows["quick"]["count"] == N and rows["quick"]["layout"] == "native"
    assert ("several vector fields" in rows["expl"]["error"]) if db.multi else rows["expl"]["count"] == N


def test_quick_setup_reads(db: Form) -> None:
    with vecbridge.connect(_url(db)) as client:
        coll = client.get_collection("quick")
        assert coll.config["layout"] == "native" and coll.mapping.id_field == "id"
        assert (coll.dimension, coll.metric, coll.mapping.free_keys) == (8, "l2", True)
        assert coll.count() == N
        got = {r.id: r for r in coll.get(include=["vector", "metadata"])}
        assert set(got) == {str(i * 10) for i in range(N)}
        for i in range(N):
            assert got[str(i * 10)].metadata == _quick_meta(i)
            np.testing.assert_array_equal(got[str(i * 10)].vector, V8[i])
        for where in ({"colour": "red"}, {"n": {"$gte": 7}}, {"tags": {"$contains": "t1"}}, {"dims.w": 3},
                      {"$or": [{"colour": "blue"}, {"n": {"$lt": 2}}]}, {"missing": {"$exists": False}},
                      {"colour": {"$ne": "red"}}, {"n": "seven"}):
            want = {str(i * 10) for i in range(N) if filters.evaluate(where, _quick_meta(i))}
            assert {r.id for r in coll.get(where=where)} == want, where
            assert coll.count(where) == len(want), where
        q = V8[3] + 0.01
        want_ids = [str(i * 10) for i in np.argsort(((V8 - q) ** 2).sum(axis=1))[:5]]
        assert [h.id for h in coll.query(q, k=5)] == want_ids
        assert [r.id for r in coll.get(ids=["30", "not-an-int", "999"])] == ["30"]


def test_explicit_schema_vector_field_chooses(db: Form) -> None:
    vectors, name, metric = (V4, "b", "ip") if db.multi else (V8, "a", "l2")
    with vecbridge.connect(_url(db, vector_field=name) if db.multi else _url(db)) as client:
        coll = client.get_collection("expl")
        m = coll.mapping
        assert (m.id_field, m.id_kind, m.vector_field, m.document_field, coll.metric) == ("pk", "string", name, "text",
                                                                                        metric)
        got = {r.id: r for r in coll.get(include=["vector", "metadata", "document"])}
        assert set(got) == {f'k"{i}\\' for i in range(N)}
        for i in range(N):
            r = got[f'k"{i}\\']
            assert r.metadata == _expl_meta(i) and r.document == f"doc {i}"
            np.testing.assert_array_equal(r.vector, vectors[i])
        for where in ({"count": {"$gt": 12}}, {"flag": True}, {"labels": {"$contains": "l2"}}, {"info.size": 1},
                      {"info.kind.name": {"$in": ["red", "green"]}}, {"extra": "e4"}, {"score": {"$lte": 3}},
                      {"$not": {"count": "x"}}, {"count": "x"}, {"extra": {"$exists": True}}):
            want = {f'k"{i}\\' for i in range(N) if filters.evaluate(where, _expl_meta(i))}
            assert {r.id for r in coll.get(where=where)} == want, where
        q = vectors[5] + 0.01
        order = np.argsort(-(vectors @ q)) if metric == "ip" else np.argsort(((vectors - q) ** 2).sum(axis=1))
        assert [h.id for h in coll.query(q, k=4)] == [f'k"{i}\\' for i in order[:4]]
    with vecbridge.connect(_url(db, vector_field="a")) as client:
        coll = client.get_collection("expl")
        assert (coll.dimension, coll.metric) == (8, "l2")


def test_writes_through_the_mapping(db: Form) -> None:
    with vecbridge.connect(_url(db)) as client:
        coll = client.get_collection("typed")
        assert coll.mapping.metadata_field == "metadata" and coll.mapping.metadata_fields == ("year",)
        coll.upsert(["100"], [V4[0]], [{"year": 1999, "g": 5, "deep.x": "y"}], ["new"])
        with pytest.raises(InvalidRecordError, match="year"):
            coll.upsert(["101"], [V4[1]], [{"year": "soon"}], ["bad"])
        with pytest.raises(InvalidRecordError, match="not-a-number"):
            coll.upsert(["not-a-number"], [V4[1]], [{"year": 1}], ["bad"])
        with pytest.raises(InvalidRecordError, match="year"):
            coll.upsert(["102"], [V4[1]], [{"g": 1}], ["no year"])
        with pytest.raises(UnsupportedFeatureError):
            coll.set_config(x=1)
    native = db.native()
    try:
        rows = native.query("typed", filter="key >= 100", output_fields=["*"], consistency_level="Strong")
        assert [(r["key"], r["year"], r["metadata"], r["content"]) for r in rows] == \
            [(100, 1999, {"g": 5, "deep": {"x": "y"}}, "new")]
        native.delete("typed", filter="key >= 100")
    finally:
        native.close()


def test_migrate_to_faiss_and_back(db: Form, tmp_path: Path) -> None:
    src = _url(db, collection="quick")
    mid = f"faiss:///{tmp_path}/f?collection=quick"
    report = vecbridge.migrate(src, mid, verify="full")
    assert report.ok
    with vecbridge.connect(f"faiss:///{tmp_path}/f") as fc:
        got = {r.id: r for r in fc.get_collection("quick").get(include=["vector", "metadata"])}
    assert set(got) == {str(i * 10) for i in range(N)}
    for i in range(N):
        assert got[str(i * 10)].metadata == _quick_meta(i)
        np.testing.assert_array_equal(got[str(i * 10)].vector, V8[i])
    back = _url(db, collection="quick_back")
    assert vecbridge.migrate(mid, back, verify="full").ok
    native = db.native()
    try:
        rows = native.query("quick_back", filter='id != ""', output_fields=["id", "vector"], consistency_level="Strong")
        assert {r["id"] for r in rows} == {str(i * 10) for i in range(N)}
        native.drop_collection("quick_back")
    finally:
        native.close()
    # an explicit schema with its vector field chosen
    src2 = _url(db, collection="expl", vector_field="a") if db.multi else _url(db, collection="expl")
    assert vecbridge.migrate(src2, f"faiss:///{tmp_path}/f?collection=expl", verify="full").ok
    with vecbridge.connect(f"faiss:///{tmp_path}/f") as fc:
        got = {r.id: r for r in fc.get_collection("expl").get(include=["vector", "metadata", "document"])}
    for i in range(N):
        r = got[f'k"{i}\\']
        assert (r.metadata, r.document) == (_expl_meta(i), f"doc {i}")
        np.testing.assert_array_equal(r.vector, V8[i])
