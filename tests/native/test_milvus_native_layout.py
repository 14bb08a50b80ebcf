"""``layout=native`` creation on Milvus (issue 12 item 4): the schema a Milvus user makes by hand.

Created with vecbridge, read with pymilvus's own client: the fields and their types, the values
written, and a user's own filter ``cat == 3`` on the bare key (in vecbridge's layout it would be
``metadata["n:cat"]``).  Expected answers come from the records written and from
``vecbridge.filters.evaluate`` over them, never from vecbridge's reads.  On Milvus Lite (nulls
kept) the first batch's one-type keys are nullable scalar fields; on the Milvus 2.3.5 server
(no nulls) every key is a dynamic field.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient

import vecbridge
from vecbridge import InvalidRecordError, filters
from vecbridge.validation import Batch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "layouts"))
import milvus_app

N = 12
RNG = np.random.default_rng(11)
VEC = RNG.normal(size=(N + 2, 6)).astype(np.float32)
IDS = [f"r{i}" for i in range(N)]


def _meta(i: int) -> dict[str, Any]:
    m: dict[str, Any] = {"cat": i % 4, "name": f"n{i % 3}", "score": i * 0.25, "live": i % 2 == 0,
                         "tags": [f"t{i % 2}", "all"], "odd key": i}
    if i % 3 == 0:
        del m["name"]  # a record lacking a key: null in its field
    m["mixed"] = i if i % 2 else f"s{i}"  # two types: a dynamic field
    return m


def _doc(i: int) -> str | None:
    return None if i == 5 else f"doc {i}"


class Form:
    def __init__(self, url: str, uri: str, nulls: bool):
        self.url, self.uri, self.nulls = url, uri, nulls

    def native(self) -> MilvusClient:
        return MilvusClient(uri=self.uri)


# ids "milvus-lite" / "milvus-server": tests/conftest.py's shards go by "[milvus-server"
@pytest.fixture(scope="module", params=["milvus-lite", "milvus-server"])
def form(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Form:
    if request.param == "milvus-lite":
        path = str(tmp_path_factory.mktemp("milvus-native-layout") / "n.db")
        return Form(f"milvus:///{path}", path, True)
    url, uri = milvus_app.server()
    return Form(url, uri, False)


@pytest.fixture(scope="module")
def written(form: Form) -> str:
    with vecbridge.connect(form.url + "?layout=native") as client:
        if "nat" in client.list_collections():
            client.delete_collection("nat")
        coll = client.create_collection("nat", 6, "l2")
        coll.add(IDS, VEC[:N], [_meta(i) for i in range(N)], [_doc(i) for i in range(N)])
        # a later batch: a key seen first now is a dynamic field
        coll.add(["late"], VEC[N:N + 1], [{"cat": 1, "later": "yes"}], ["late doc"])
    return "nat"


def _all_meta() -> dict[str, dict[str, Any]]:
    return {**{IDS[i]: _meta(i) for i in range(N)}, "late": {"cat": 1, "later": "yes"}}


def test_natural_schema_read_with_pymilvus(form: Form, written: str) -> None:
    native = form.native()
    try:
        desc = native.describe_collection(written)
        fields = {f["name"]: f for f in desc["fields"]}
        assert desc["enable_dynamic_field"] is True
        assert fields["id"]["type"] == DataType.VARCHAR and fields["id"]["is_primary"]
        assert fields["vector"]["type"] == DataType.FLOAT_VECTOR and fields["vector"]["params"]["dim"] == 6
        assert fields["document"]["type"] == DataType.VARCHAR
        if form.nulls:  # the first batch's one-type keys, nullable
            assert {n: (f["type"], f.get("nullable")) for n, f in fields.items()
                    if n not in ("id", "vector", "document")} == {
                "cat": (DataType.INT64, True), "name": (DataType.VARCHAR, True), "score": (DataType.DOUBLE, True),
                "live": (DataType.BOOL, True)}
        else:
            assert set(fields) == {"id", "vector", "document"}
        assert native.describe_index(written, "vector")["metric_type"] == "L2"
        rows = native.query(written, filter='id != ""', output_fields=["*"], consistency_level="Strong")
        got = {r["id"]: r for r in rows}
        want = _all_meta()
        assert set(got) == set(want)
        for id_, meta in want.items():
            row = {k: v for k, v in got[id_].items() if v is not None and k not in ("id", "vector", "document")}
            assert row == meta, id_
        for i in range(N):
            np.testing.assert_array_equal(np.asarray(got[IDS[i]]["vector"], dtype=np.float32), VEC[i])
            assert got[IDS[i]]["document"] == (_doc(i) if _doc(i) is not None or form.nulls else "")
        # the user's own filter on the bare key
        hits = native.query(written, filter="cat == 3", output_fields=["id"], consistency_level="Strong")
        assert {h["id"] for h in hits} == {k for k, m in want.items() if m.get("cat") == 3}
        hits = native.query(written, filter='later == "yes"', output_fields=["id"], consistency_level="Strong")
        assert {h["id"] for h in hits} == {"late"}
    finally:
        native.close()


def test_reopened_as_native(form: Form, written: str) -> None:
    want = _all_meta()
    with vecbridge.connect(form.url) as client:
        assert {e["name"]: e["layout"] for e in client.describe_collections()}[written] == "native"
        coll = client.get_collection(written)
        assert coll.config["layout"] == "native" and coll.metric == "l2"
        got = {r.id: r for r in coll.get(include=["vector", "metadata", "document"])}
        assert {k: r.metadata for k, r in got.items()} == want
        for i in range(N):
            assert got[IDS[i]].document == (_doc(i) if _doc(i) is not None or form.nulls else "")
            np.testing.assert_array_equal(got[IDS[i]].vector, VEC[i])
        for where in ({"cat": 3}, {"cat": {"$ne": 3}}, {"name": {"$exists": False}}, {"name": {"$nin": ["n1"]}},
                      {"live": True}, {"score": {"$gt": 1}}, {"mixed": {"$gte": 3}}, {"tags": {"$contains": "t1"}},
                      {"$not": {"name": "n2"}}, {"later": "yes"}):
            assert {r.id for r in coll.get(where=where)} == {k for k, m in want.items() if filters.evaluate(where, m)}, \
                where
        q = VEC[4] + 0.01
        order = np.argsort(((VEC[:N + 1] - q) ** 2).sum(axis=1))[:3]
        assert [h.id for h in coll.query(q, k=3)] == [(IDS + ["late"])[j] for j in order]


def test_refusals_before_writing(form: Form, written: str) -> None:
    with vecbridge.connect(form.url) as client:
        coll = client.get_collection(written)
        bad = Batch(["x1"], VEC[:1].copy(), [{"id": 1}], ["d"])  # a key the id field takes
        with pytest.raises(InvalidRecordError, match="'id'"):
            coll._vb_check_batch(bad)
        if form.nulls:  # a value the scalar field cannot hold
            with pytest.raises(InvalidRecordError, match="cat"):
                coll._vb_check_batch(Batch(["x2"], VEC[:1].copy(), [{"cat": "three"}], ["d"]))
            with pytest.raises(InvalidRecordError, match="cat"):
                coll.upsert(["x2"], VEC[:1], [{"cat": "three"}], ["d"])
        assert coll.count() == N + 1


def test_first_batch_check_and_pending(form: Form) -> None:
    """The check of a first batch runs on the fields that batch decides; nothing is created by it."""
    with vecbridge.connect(form.url + "?layout=native") as client:
        if "nat2" in client.list_collections():
            client.delete_collection("nat2")
        coll = client.create_collection("nat2", 6, "cosine")
        coll._vb_check_batch(Batch(["a", "b"], VEC[:2].copy(), [{"k": 1}, {"k": 2}], [None, None]))
        with pytest.raises(InvalidRecordError, match="vector"):
            coll._vb_check_batch(Batch(["a"], VEC[:1].copy(), [{"vector": 1}], [None]))
        assert coll.count() == 0
    native = form.native()
    try:
        assert {f["name"] for f in native.describe_collection("nat2")["fields"]} == {"id", "vector", "document"}
        native.drop_collection("nat2")
    finally:
        native.close()


def test_migrate_faiss_into_native_layout(form: Form, tmp_path: Path) -> None:
    src = f"faiss:///{tmp_path}/f"
    with vecbridge.connect(src) as fc:
        c = fc.create_collection("src", 6, "ip")
        c.add(IDS, VEC[:N], [_meta(i) for i in range(N)], [_doc(i) for i in range(N)])
    native = form.native()
    try:
        if native.has_collection("mig"):
            native.drop_collection("mig")
    finally:
        native.close()
    report = vecbridge.migrate(f"{src}?collection=src", f"{form.url}?collection=mig&layout=native", verify="full")
    v = report.verification
    assert v is not None and v.checked == N
    if form.nulls:
        assert report.ok
    else:  # the documented loss: a VARCHAR of Milvus 2.3 holds no null, a missing document arrives as ""
        assert [(m.id, m.field) for m in v.mismatches] == [("r5", "document")] and v.mismatch_count == 1
    native = form.native()
    try:
        assert native.describe_index("mig", "vector")["metric_type"] == "IP"
        rows = {r["id"]: r for r in native.query("mig", filter='id != ""', output_fields=["*"],
                                                 consistency_level="Strong")}
        assert set(rows) == set(IDS)
        for i in range(N):
            r = rows[IDS[i]]
            assert {k: v for k, v in r.items() if v is not None and k not in ("id", "vector", "document")} == _meta(i)
            np.testing.assert_array_equal(np.asarray(r["vector"], dtype=np.float32), VEC[i])
            assert r["document"] == (_doc(i) if _doc(i) is not None or form.nulls else "")
        hits = native.query("mig", filter="cat == 2", output_fields=["id"], consistency_level="Strong")
        assert {h["id"] for h in hits} == {IDS[i] for i in range(N) if _meta(i)["cat"] == 2}
        native.drop_collection("mig")
    finally:
        native.close()
