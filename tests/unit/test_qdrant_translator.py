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
