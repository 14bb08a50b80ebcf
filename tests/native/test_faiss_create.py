"""``layout=native`` on FAISS: vecbridge writes a FAISS index file (issue 12 item 4).

The file is checked with faiss's own ``read_index`` (never vecbridge): an ``IndexIDMap2`` over
a flat index of the metric, the written int64 ids and vectors (cosine: their unit vectors),
faiss's own search against numpy brute force.  Records the file cannot hold (string ids,
metadata, documents) are refused before anything is written, and the file reopened by
vecbridge is ``layout native`` with the same records.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import vecbridge
from vecbridge.errors import CollectionExistsError, InvalidRecordError, UnsupportedFeatureError
from vecbridge.validation import Batch

faiss = pytest.importorskip("faiss")

N, DIM = 30, 5
METRICS = {"l2": 1, "ip": 0, "cosine": 0}  # faiss's metric_type of each


def _data(seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    return [str(i * 7 - 50) for i in range(N)], rng.standard_normal((N, DIM)).astype(np.float32)


def _read(path: Path) -> tuple[object, dict[int, np.ndarray]]:
    index = faiss.read_index(str(path))
    labels = faiss.vector_to_array(index.id_map).astype(np.int64)
    vectors = index.index.reconstruct_n(0, index.ntotal)
    return index, dict(zip(labels.tolist(), vectors))


@pytest.mark.parametrize("metric", list(METRICS))
def test_native_layout_writes_a_faiss_index_file(tmp_path, metric):
    ids, vecs = _data(len(metric))
    url = f"faiss:///{tmp_path}?layout=native"
    with vecbridge.connect(url) as vb:
        coll = vb.create_collection("vectors", DIM, metric)
        assert coll.config["layout"] == "native"
        coll.add(ids[:10], vecs[:10])
        coll.upsert(ids[10:], vecs[10:])
        coll.upsert([ids[0]], [vecs[1]])  # replaces
        coll.delete([ids[2]])
        coll.update([ids[3]], vectors=[vecs[4]])
    expected = {int(i): v for i, v in zip(ids, vecs)}
    expected[int(ids[0])], expected[int(ids[3])] = vecs[1], vecs[4]
    del expected[int(ids[2])]
    if metric == "cosine":
        expected = {k: v / np.linalg.norm(v) for k, v in expected.items()}
    index, stored = _read(tmp_path / "vectors.faiss")
    assert type(index).__name__ == "IndexIDMap2" and type(faiss.downcast_index(index.index)).__name__ == (
        "IndexFlatL2" if metric == "l2" else "IndexFlatIP")
    assert index.metric_type == METRICS[metric] and index.d == DIM
    assert set(stored) == set(expected)
    for label, vec in expected.items():
        np.testing.assert_allclose(stored[label], vec, rtol=1e-6, atol=1e-7)
    # faiss's own search ranks as numpy does
    labels = np.asarray(sorted(expected))
    matrix = np.stack([expected[k] for k in labels]).astype(np.float64)
    q = (vecs[5] + 0.2).astype(np.float32)
    qn = q / np.linalg.norm(q) if metric == "cosine" else q
    order = np.argsort(((matrix - qn) ** 2).sum(1)) if metric == "l2" else np.argsort(-(matrix @ qn))
    _, found = index.search(qn[None, :].astype(np.float32), 5)
    assert found[0].tolist() == labels[order[:5]].tolist()
    # reopened by vecbridge: the index file, read-only
    reopen = f"faiss:///{tmp_path}/vectors.faiss" + ("?metric=cosine" if metric == "cosine" else "")
    with vecbridge.connect(reopen) as vb:
        coll = vb.get_collection("vectors.faiss")
        assert (coll.config["layout"], coll.metric, coll.count()) == ("native", metric, len(expected))
        for r in coll.get(include=["vector"]):
            np.testing.assert_allclose(r.vector, expected[int(r.id)], rtol=1e-6, atol=1e-7)
        with pytest.raises(UnsupportedFeatureError, match="read-only"):
            coll.add(["1000"], [vecs[0]])
    with vecbridge.connect(url) as vb:  # ?layout=native: the collection "vectors" is that file
        assert vb.get_collection("vectors").count() == len(expected)
        with pytest.raises(CollectionExistsError):
            vb.create_collection("vectors", DIM, metric)


@pytest.mark.parametrize("ids,metas,docs,match", [
    (["1", "x"], None, None, "'x' is not a whole number"),
    (["1", "042"], None, None, "'042'"),
    (["1", "2"], [{}, {"lang": "en", "n": 1}], None, r"record '2' carries metadata \(lang, n\)"),
    (["1", "2"], None, [None, "text"], "record '2' carries a document"),
])
def test_what_an_index_file_cannot_hold_is_refused_before_writing(tmp_path, ids, metas, docs, match):
    with vecbridge.connect(f"faiss:///{tmp_path}?layout=native") as vb:
        coll = vb.create_collection("refusals", 2, "l2")
        coll.add(["7"], [[7.0, 7.0]])
        before = (tmp_path / "refusals.faiss").read_bytes()
        vectors = np.ones((2, 2), np.float32)
        batch = Batch(ids, vectors, metas or [{}, {}], docs or [None, None])
        with pytest.raises(InvalidRecordError, match=match):
            coll._vb_check_batch(batch)  # the planner's look-ahead: the same error
        for write in (coll.add, coll.upsert):
            with pytest.raises(InvalidRecordError, match=match):
                write(ids, vectors, metas, docs)
    assert (tmp_path / "refusals.faiss").read_bytes() == before  # the file untouched
    assert faiss.read_index(str(tmp_path / "refusals.faiss")).ntotal == 1


def test_layout_native_needs_a_folder(tmp_path):
    with vecbridge.connect("faiss://?layout=native") as vb, pytest.raises(UnsupportedFeatureError, match="folder"):
        vb.create_collection("mem", 2, "l2")
    with vecbridge.connect(f"faiss:///{tmp_path}?layout=native") as vb, \
            pytest.raises(InvalidRecordError, match="zero vector"):
        vb.create_collection("cos", 2, "cosine").add(["1"], [[0.0, 0.0]])


def test_an_hnsw_index_file_takes_new_ids_and_refuses_removals(tmp_path):
    ids, vecs = _data(5)
    with vecbridge.connect(f"faiss:///{tmp_path}?layout=native") as vb:
        coll = vb.create_collection("graph", DIM, "l2", {"type": "hnsw", "m": 8})
        coll.upsert(ids, vecs)
        before = (tmp_path / "graph.faiss").read_bytes()
        with pytest.raises(UnsupportedFeatureError, match="cannot remove ids"):
            coll.upsert([ids[0]], [vecs[1]])
        with pytest.raises(UnsupportedFeatureError, match="cannot remove ids"):
            coll.delete([ids[0]])
    assert (tmp_path / "graph.faiss").read_bytes() == before
    index, stored = _read(tmp_path / "graph.faiss")
    assert type(faiss.downcast_index(index.index)).__name__ == "IndexHNSWFlat"
    assert faiss.downcast_index(index.index).hnsw.nb_neighbors(1) == 8
    for id_, vec in zip(ids, vecs):
        np.testing.assert_array_equal(stored[int(id_)], vec)


def test_migrate_faiss_into_native_layout(tmp_path):
    ids, vecs = _data(3)
    src = f"faiss:///{tmp_path}/src"
    with vecbridge.connect(src) as vb:
        vb.create_collection("plain", DIM, "ip").upsert(ids, vecs)
    report = vecbridge.migrate(f"{src}?collection=plain", f"faiss:///{tmp_path}/out?collection=plain&layout=native")
    assert report.ok and report.records_copied == N
    index, stored = _read(tmp_path / "out" / "plain.faiss")
    assert index.metric_type == METRICS["ip"]
    assert set(stored) == {int(i) for i in ids}
    for id_, vec in zip(ids, vecs):
        np.testing.assert_array_equal(stored[int(id_)], vec)
