"""Qdrant: two threads adding the same id; exactly one succeeds, the other gets DuplicateIdError.

``add`` checks for existing ids, then writes.  The first test forces the bad interleaving
on the real engine: the native ``retrieve`` (the check) is wrapped so that each thread,
after its check, waits up to a second for the other thread to finish its check too.
Without a lock over check and write both threads pass their checks and both "succeed";
with it, the second thread's check waits for the first one's write and sees the id.
The second test runs the race as it comes, without any wrapping.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import vecbridge

pytest.importorskip("qdrant_client")


@pytest.fixture(params=["memory", "disk"])
def url(request, tmp_path):
    return "qdrant://" if request.param == "memory" else f"qdrant:///{tmp_path}/q"


def _race(coll, ids, n_threads):
    """Each thread adds ``ids`` with vectors full of its number; returns the winners' numbers."""
    start = threading.Barrier(n_threads)
    outcome: dict[int, str] = {}

    def add(t):
        start.wait()
        try:
            coll.add(ids, np.full((len(ids), coll.dimension), t + 1.0), [{"t": t}] * len(ids))
            outcome[t] = "ok"
        except vecbridge.DuplicateIdError:
            outcome[t] = "duplicate"
        except BaseException as exc:  # reported by the assertion below, not lost in the thread
            outcome[t] = repr(exc)

    threads = [threading.Thread(target=add, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert sorted(outcome.values()) == ["duplicate"] * (n_threads - 1) + ["ok"], outcome
    return [t for t, o in outcome.items() if o == "ok"]


def _check_stored(coll, ids, winner):
    recs = coll.get(ids, include=["vector", "metadata"])
    assert [r.id for r in recs] == ids
    for r in recs:  # the winner's record, whole: nobody's write was mixed in
        assert r.metadata == {"t": winner}
        np.testing.assert_array_equal(r.vector, np.full(coll.dimension, winner + 1.0, dtype=np.float32))


def test_add_of_one_id_from_two_threads_checked_at_the_same_time(url, monkeypatch):
    with vecbridge.connect(url) as client:
        coll = client.create_collection("race", 4, "l2")
        native = coll._native
        real_retrieve = native.retrieve
        checked = threading.Barrier(2)

        def retrieve(*args, **kwargs):
            points = real_retrieve(*args, **kwargs)
            try:
                checked.wait(timeout=1.0)  # both checks done before either write, if nothing prevents it
            except threading.BrokenBarrierError:
                pass
            return points

        monkeypatch.setattr(native, "retrieve", retrieve)
        for round_ in range(3):
            checked.reset()
            ids = [f"id{round_}-{j}" for j in range(5)]
            (winner,) = _race(coll, ids, 2)
            _check_stored(coll, ids, winner)
        assert coll.count() == 15


def test_add_of_one_batch_from_four_threads(url):
    with vecbridge.connect(url) as client:
        coll = client.create_collection("race", 4, "l2")
        for round_ in range(10):
            ids = [f"r{round_}-{j}" for j in range(300)]
            (winner,) = _race(coll, ids, 4)
            _check_stored(coll, ids, winner)
        assert coll.count() == 3000
