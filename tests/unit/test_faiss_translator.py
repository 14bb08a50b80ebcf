"""The FAISS filter translator is a table keyed by operator: it covers the language exactly,
and an operator added to the language later is refused, never run as another one."""

from __future__ import annotations

import numpy as np
import pytest

import vecbridge
from vecbridge import filters

pytest.importorskip("faiss")

from vecbridge.backends.faiss import translator


def test_the_table_covers_exactly_the_languages_operators():
    assert set(translator.OPERATORS) == set(filters.COMPARISONS)


@pytest.mark.parametrize("url", ["faiss://", "faiss:///{dir}/f"])
def test_an_operator_new_to_the_language_is_refused_everywhere(url, tmp_path, monkeypatch):
    with vecbridge.connect(url.format(dir=tmp_path)) as client:
        coll = client.create_collection("ops", 2, "l2", index={"type": "hnsw"})
        ids = ["r0", "r1", "r2"]
        coll.add(ids, np.eye(3, 2, dtype=np.float32) + 0.5, [{"k": "a"}, {"k": "ab"}, {"k": "b"}])
        monkeypatch.setattr(filters, "COMPARISONS", filters.COMPARISONS + ("$startswith",))
        where = {"k": {"$startswith": "a"}}
        calls = {"get": lambda: coll.get(where=where), "get ids": lambda: coll.get(ids, where=where),
                 "count": lambda: coll.count(where), "query": lambda: coll.query([1.0, 0.0], k=3, where=where),
                 "delete": lambda: coll.delete(where=where), "delete ids": lambda: coll.delete(ids, where=where)}
        for name, call in calls.items():
            with pytest.raises(vecbridge.UnsupportedFilterError) as err:
                call()
            assert "$startswith" in str(err.value) and "faiss" in str(err.value), name
        monkeypatch.undo()
        assert sorted(r.id for r in coll.get()) == ids  # delete removed nothing


EXISTS_METAS = [{"k": 1}, {"k": []}, {"k": ["a"]}, {}, {"other": "[]"}, {"other": [], "k2": "x"},
                {"k": "[]"}, {"k": False}]


@pytest.mark.parametrize("where", [{"k": {"$exists": True}}, {"k": {"$exists": False}},
                                   {"$not": {"k": {"$exists": True}}}, {"other": {"$exists": True}},
                                   {"$or": [{"k": {"$exists": False}}, {"k": 1}]},
                                   {"k": {"$exists": True, "$ne": 1}}], ids=repr)
def test_exists_matches_the_reference_evaluator(where):
    ids = [f"r{i}" for i in range(len(EXISTS_METAS))]
    want = {i for i, m in zip(ids, EXISTS_METAS) if filters.evaluate(where, m)}
    with vecbridge.connect("faiss://") as client:
        coll = client.create_collection("exists", 2, "l2", index={"type": "flat"})
        coll.add(ids, np.random.default_rng(3).normal(size=(len(ids), 2)), EXISTS_METAS)
        assert {r.id for r in coll.get(where=where)} == want
        assert coll.count(where) == len(want)
        assert {h.id for h in coll.query([1.0, 0.0], k=len(ids), where=where)} == want
        coll.delete(where=where)
        assert {r.id for r in coll.get()} == set(ids) - want
