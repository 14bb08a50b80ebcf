"""Qdrant's filter translator is a table keyed by operator.

The table covers exactly the operators of the filter language; an operator added to the
language later is refused with UnsupportedFilterError by every call that takes a filter,
and a refused ``delete`` removes nothing (the native client's count says so).
"""

from __future__ import annotations

import numpy as np
import pytest

import vecbridge
from vecbridge import filters

pytest.importorskip("qdrant_client")

from vecbridge.backends.qdrant import translator


def test_the_table_covers_exactly_the_language():
    assert set(translator.OPERATORS) == set(filters.COMPARISONS)


@pytest.mark.parametrize("form", ["memory", "disk"])
def test_an_operator_added_to_the_language_is_refused(form, tmp_path, monkeypatch):
    url = "qdrant://" if form == "memory" else f"qdrant:///{tmp_path}/q"
    with vecbridge.connect(url) as client:
        coll = client.create_collection("newop", 4, "l2")
        coll.add(["a", "b"], np.eye(4)[:2], [{"k": "apple"}, {"k": "banana"}])
        monkeypatch.setattr(filters, "COMPARISONS", filters.COMPARISONS + ("$startswith",))
        where = {"k": {"$startswith": "a"}}
        for call in (lambda: coll.get(where=where), lambda: coll.get(["a"], where=where),
                     lambda: coll.count(where), lambda: coll.query(np.ones(4), k=2, where=where),
                     lambda: coll.delete(where=where), lambda: coll.delete(["a"], where=where)):
            with pytest.raises(vecbridge.UnsupportedFilterError, match=r"\$startswith"):
                call()
        assert client._native.count("newop", exact=True).count == 2  # delete removed nothing


EXISTS_METAS = [{}, {"k": ""}, {"k": 0}, {"k": False}, {"k": []}, {"k": ["x"]}, {"k": 0.0}, {"o": 1},
                {"a.b": []}, {'q"k': []}, {"k": [], "a.b": "v"}]
EXISTS_WHERES = [{"k": {"$exists": True}}, {"k": {"$exists": False}}, {"a.b": {"$exists": True}},
                 {'q"k': {"$exists": True}}, {"$not": {"k": {"$exists": True}}},
                 {"$or": [{"k": {"$exists": False}}, {"a.b": {"$exists": True}}]},
                 {"k": {"$exists": True}, "o": {"$exists": False}}]


@pytest.mark.parametrize("form", ["memory", "disk"])
def test_exists_answers_as_the_reference_evaluator(form, tmp_path):
    url = "qdrant://" if form == "memory" else f"qdrant:///{tmp_path}/q"
    ids = [f"r{i}" for i in range(len(EXISTS_METAS))]
    with vecbridge.connect(url) as client:
        coll = client.create_collection("exists", 4, "l2")
        coll.add(ids, np.tile(np.arange(1.0, 5.0), (len(ids), 1)), EXISTS_METAS)
        for where in EXISTS_WHERES:
            want = sorted(i for i, m in zip(ids, EXISTS_METAS) if filters.evaluate(where, m))
            assert sorted(r.id for r in coll.get(where=where)) == want, where
            assert coll.count(where) == len(want), where
            assert sorted(h.id for h in coll.query(np.ones(4), k=len(ids), where=where)) == want, where
        where = {"k": {"$exists": True}}
        coll.delete(where=where)
        assert sorted(r.id for r in coll.get()) == sorted(i for i, m in zip(ids, EXISTS_METAS)
                                                          if not filters.evaluate(where, m))
