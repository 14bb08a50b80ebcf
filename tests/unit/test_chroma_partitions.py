"""Chroma's native partitions: offset ranges of its own scan order (internal sequence id).

Expected answers: the records written and chromadb's own ``get`` order (read with the
chromadb client underneath, not with vecbridge's reads).
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
import pytest

import vecbridge
from vecbridge import Partition
from vecbridge.errors import BackendError

pytest.importorskip("chromadb")

FORMS = ["embedded", "memory"]


def _client(form: str, tmp_path: Any) -> Any:
    return vecbridge.connect(f"chroma:///{tmp_path}/chroma" if form == "embedded" else "chroma://")


def _written(coll: Any, n: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = [f"r{int(x)}" for x in rng.permutation(10 * n)[:n]]  # no order Chroma could sort by
    vecs = rng.standard_normal((n, 4)).astype(np.float32)
    if n:
        coll.add(ids, vecs, [{"i": i} for i in range(n)], [f"doc {i}" for i in range(n)])
    return ids, vecs


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("size", [0, 1, 2, 5, 23])
def test_offset_partitions_hold_every_record_once_in_chromas_order(form, tmp_path, size):
    with _client(form, tmp_path) as client:
        coll = client.create_collection(f"p{uuid.uuid4().hex[:8]}", dimension=4, metric="l2")
        ids, vecs = _written(coll, size)
        native_order = coll.native.get(include=[])["ids"]  # chromadb's own order
        for n in (1, 2, 3, 7, 50):
            parts = coll.partitions(n)
            assert 1 <= len(parts) <= max(1, min(n, size))
            assert all(p.kind == "offset" and p.count == len(parts) for p in parts)
            seen: list[str] = []
            for p in parts:
                p = Partition.from_json(p.to_json())
                for batch in coll.scan(batch_size=3, include=["vector", "metadata"], partition=p):
                    assert 0 < len(batch) <= 3
                    for r in batch:
                        i = ids.index(r.id)
                        np.testing.assert_array_equal(r.vector, vecs[i])
                        assert r.metadata == {"i": i}
                        seen.append(r.id)
            assert seen == native_order  # each once, contiguous ranges of Chroma's order
            assert sorted(seen) == sorted(ids)


@pytest.mark.parametrize("form", FORMS)
def test_a_partition_of_a_changed_collection_is_refused(form, tmp_path):
    with _client(form, tmp_path) as client:
        coll = client.create_collection(f"p{uuid.uuid4().hex[:8]}", dimension=4, metric="l2")
        ids, _ = _written(coll, 10)
        parts = coll.partitions(3)
        coll.delete([ids[0]])  # every later position shifts by one
        with pytest.raises(BackendError, match="cut for 10 records.*now holds 9"):
            list(coll.scan(partition=parts[1]))
