"""The contract's partition rule (CONTRACT.md section 9) on every configured backend form.

``collection.partitions(n)`` gives at most ``n`` partitions; ``scan(partition=p)`` over them
returns every record exactly once, with its vector, metadata and document, in batches of at
most ``batch_size``; a partition survives ``to_json``/``from_json`` and pickle and reads the
same records afterwards.  Expected answers are the records written (the suite's dataset).
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from vecbridge import Partition
from vecbridge.testing._helpers import assert_same_metadata, exact_index
from vecbridge.testing.data import make_dataset

NS = [1, 2, 3, 7]


def _read(coll, parts, batch_size=7):
    got = {}
    per_part = []
    for p in parts:
        ids = []
        for batch in coll.scan(batch_size=batch_size, partition=p):
            assert 0 < len(batch) <= batch_size
            for r in batch:
                assert r.id not in got, f"{r.id!r} in two partitions (or twice in one)"
                got[r.id] = r
                ids.append(r.id)
        per_part.append(ids)
    return got, per_part


def _check_shape(parts, n, name, records=True):
    assert len(parts) <= n and (len(parts) >= 1 or not records), parts
    assert [p.index for p in parts] == list(range(len(parts)))
    assert all(p.count == len(parts) and p.collection == name for p in parts)


@pytest.mark.parametrize("n", NS)
def test_partitions_hold_every_record_once(shared_collection, n):
    coll, ds = shared_collection("cosine")
    parts = coll.partitions(n)
    _check_shape(parts, n, coll.name)
    got, _ = _read(coll, parts)
    assert set(got) == set(ds.ids)
    for i, id_ in enumerate(ds.ids):
        r = got[id_]
        np.testing.assert_array_equal(np.asarray(r.vector), np.asarray(ds.vectors[i], dtype=np.float32))
        assert_same_metadata(r.metadata, ds.metadatas[i])
        assert r.document == ds.documents[i]


def test_partitions_survive_json_and_pickle(shared_collection):
    coll, _ = shared_collection("cosine")
    parts = coll.partitions(3)
    _, direct = _read(coll, parts)
    for p, ids in zip(parts, direct):
        for copy in (Partition.from_json(p.to_json()), pickle.loads(pickle.dumps(p))):
            assert copy == p
            json.loads(copy.to_json())  # plain JSON all the way down
            again = [r.id for batch in coll.scan(batch_size=50, include=[], partition=copy) for r in batch]
            assert sorted(again) == sorted(ids)


@pytest.mark.parametrize("size", [0, 1, 3])
def test_empty_and_tiny_collections(vb_backend, make_collection, size):
    ds = make_dataset(max(size, 1), 8, seed=size)
    coll = make_collection(dimension=8, index=exact_index(vb_backend))
    if size:
        coll.add(ds.ids[:size], ds.vectors[:size], ds.metadatas[:size], ds.documents[:size])
    for n in (1, 2, 8):
        parts = coll.partitions(n)
        _check_shape(parts, n, coll.name, records=size > 0)
        got, _ = _read(coll, parts)
        assert set(got) == set(ds.ids[:size])


def test_partitions_refuse_a_bad_n(shared_collection):
    coll, _ = shared_collection("cosine")
    for bad in (0, -1):
        with pytest.raises(ValueError):
            coll.partitions(bad)
