"""Data and checks shared by the migration tests.

Expected answers come from the records the tests generate (:func:`make_records`),
never from reading back the backend under test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import vecbridge
from vecbridge.types import Record

#: Ids that trip naive backends: separators, quotes, unicode, whitespace, 256 bytes, numbers.
ODD_IDS = [
    "a/b", "../x", "with space", "quote'\"`", "ü ñ 漢字", "🙂" * 64, "x" * 256, "0", "00", "-1", "1e3",
    "null", "SELECT * FROM t; --", "%20", "back\\slash", "tab\there", "new\nline", " lead", "{}", "id:with:colons",
]


def make_records(n: int, dim: int, seed: int = 0, odd: bool = True) -> list[Record]:
    """``n`` records with exact-typed metadata, documents including ``None`` and ``""``, odd ids."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors[0, 0] = np.float32(1e-30)  # tiny and large components survive float32 exactly
    if n > 1:
        vectors[1, -1] = np.float32(1.0e18)
    ids = [f"rec-{i:06d}" for i in range(n)]
    if odd:
        for j, odd_id in enumerate(ODD_IDS[: max(n - 2, 0)]):
            ids[2 + j] = odd_id
    out = []
    for i in range(n):
        if i % 7 == 3:
            meta: dict[str, Any] = {}
        else:
            meta = {"int": i, "float": i + 0.25, "whole_float": 1.0, "bool": i % 2 == 0, "str": f"s{i} ü",
                    "tags": ["a", f"t{i % 3}"], "ints": [i, -i], "floats": [0.5, 2.0], "flags": [True, False],
                    "empty": [], "dot.key": i % 5, "space key": "v", "quote\"key": "q"}
            if i % 11 == 0:
                meta["big"] = 2**63 - 1
                meta["small"] = -(2**63)
        document = None if i % 3 == 0 else ("" if i % 3 == 1 and i % 2 else f"document {i} — ünïcode")
        out.append(Record(ids[i], vectors[i].copy(), meta, document))
    return out


def fill(coll: Any, records: list[Record], batch: int = 500) -> None:
    for k in range(0, len(records), batch):
        part = records[k:k + batch]
        coll.upsert([r.id for r in part], np.stack([r.vector for r in part]), [r.metadata for r in part],
                    [r.document for r in part])


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def assert_holds(coll: Any, records: list[Record]) -> None:
    """``coll`` holds exactly ``records``: ids, float32 vectors, exact metadata types, documents."""
    assert coll.count() == len(records)
    seen = [r for batch in coll.scan(batch_size=97) for r in batch]
    assert len(seen) == len(records), "every record exactly once"
    got = {r.id: r for r in seen}
    assert len(got) == len(records), "no id twice"
    assert set(got) == {r.id for r in records}
    for want in records:
        have = got[want.id]
        assert have.vector is not None and have.vector.dtype == np.float32
        np.testing.assert_allclose(have.vector, want.vector, rtol=1e-6, atol=0, err_msg=repr(want.id))
        assert _same(have.metadata, want.metadata), (want.id, have.metadata, want.metadata)
        assert have.document == want.document and type(have.document) is type(want.document), want.id


@dataclass
class Store:
    """A persistent source: URL of the database and the collection name."""

    url: str
    name: str

    @property
    def collection_url(self) -> str:
        return f"{self.url}?collection={self.name}"


def faiss_source(root: str, records: list[Record], name: str = "docs", metric: str = "cosine") -> Store:
    url = "faiss:///" + root  # root is absolute: faiss:////abs/path
    with vecbridge.connect(url) as client:
        fill(client.create_collection(name, records[0].vector.shape[0], metric, index={"type": "flat"}), records)
    return Store(url, name)
