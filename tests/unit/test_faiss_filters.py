"""FAISS filters with integers beyond SQLite's 64 bits: a clear error, never a raw OverflowError."""

from __future__ import annotations

import numpy as np
import pytest

import vecbridge
from vecbridge.filters import evaluate

pytest.importorskip("faiss")

LO, HI = -(2**63), 2**63 - 1
METAS = [{"n": HI}, {"n": LO}, {"n": 0}, {"n": [1, HI]}]


@pytest.fixture
def coll():
    with vecbridge.connect("faiss://") as client:
        c = client.create_collection("ints", 2, "l2", index={"type": "flat"})
        c.add([f"r{i}" for i in range(len(METAS))], np.eye(2, dtype=np.float32)[[0, 1, 0, 1]] + 0.1, METAS)
        yield c


TOO_BIG = [{"n": 2**64}, {"n": {"$ne": HI + 1}}, {"n": {"$in": [1, HI + 1]}}, {"n": {"$nin": [LO - 1]}},
           {"n": {"$gt": LO - 1}}, {"n": {"$lte": 2**100}}, {"n": {"$contains": -(2**70)}},
           {"$or": [{"n": 0}, {"n": {"$gte": HI + 1}}]}]


@pytest.mark.parametrize("where", TOO_BIG, ids=repr)
@pytest.mark.parametrize("call", ["query", "count", "get", "delete"])
def test_integer_beyond_int64_is_an_unsupported_filter(coll, where, call):
    run = {"query": lambda: coll.query([1.0, 0.0], k=4, where=where), "count": lambda: coll.count(where),
           "get": lambda: coll.get(where=where), "delete": lambda: coll.delete(where=where)}[call]
    with pytest.raises(vecbridge.UnsupportedFilterError) as err:
        run()
    msg = str(err.value)
    assert "faiss" in msg and str(LO) in msg and str(HI) in msg
    bad = [v for v in (2**64, HI + 1, LO - 1, 2**100, -(2**70)) if str(v) in msg]
    assert bad, f"the message names the value: {msg}"
    assert coll.count() == len(METAS)  # nothing deleted


@pytest.mark.parametrize("where", [{"n": HI}, {"n": LO}, {"n": {"$gte": HI}}, {"n": {"$lt": LO + 1}},
                                   {"n": {"$contains": HI}}, {"n": {"$nin": [HI, LO]}}], ids=repr)
def test_the_limits_themselves_work(coll, where):
    want = {f"r{i}" for i, m in enumerate(METAS) if evaluate(where, m)}
    assert {r.id for r in coll.get(where=where)} == want
    assert {h.id for h in coll.query([1.0, 0.0], k=4, where=where)} == want
    assert coll.count(where) == len(want)
