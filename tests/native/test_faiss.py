"""FAISS index files written by ``faiss.write_index`` (flat, HNSW, IVF, with and without an IDMap)
open read-only by URL: listed, read, counted and queried with filters, partitioned, migrated into
a vecbridge FAISS collection and into Qdrant.  Expected answers come from the data written and
from FAISS's own reads of the file (``reconstruct_n`` and friends), distances from numpy."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import vecbridge
from vecbridge import cli
from vecbridge.errors import BackendError, UnsupportedFeatureError
from vecbridge.scores import brute_force_distances

faiss = pytest.importorskip("faiss")

DIM = 8
N = 120


def _data(seed: int = 0, normalise: bool = False) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(N, DIM)).astype(np.float32)
    if normalise:
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def _ivf(metric: int, x: np.ndarray) -> object:
    ivf = faiss.IndexIVFFlat(faiss.IndexFlat(DIM, metric), DIM, 4, metric)
    ivf.train(x)
    return ivf


# name -> (build(x) -> (index, ids or None for positions), metric, exact search)
SHAPES = {
    "flat_l2": (lambda x: (faiss.IndexFlatL2(DIM), None), "l2", True),
    "flat_ip_idmap": (lambda x: (faiss.IndexIDMap(faiss.IndexFlatIP(DIM)), np.arange(N) * 7 - 300), "ip", True),
    "hnsw_ip": (lambda x: (faiss.IndexHNSWFlat(DIM, 16, faiss.METRIC_INNER_PRODUCT), None), "ip", False),
    "hnsw_l2_idmap2": (lambda x: (faiss.IndexIDMap2(faiss.IndexHNSWFlat(DIM, 16)), np.arange(N) + 10**12), "l2",
                       False),
    "ivf_l2_own_ids": (lambda x: (_ivf(faiss.METRIC_L2, x), (np.arange(N) * 13) % 1009), "l2", False),
    "ivf_ip_idmap": (lambda x: (faiss.IndexIDMap(_ivf(faiss.METRIC_INNER_PRODUCT, x)), np.arange(N)[::-1] * 3),
                     "ip", False),
}


def _write(path: Path, shape: str, x: np.ndarray) -> np.ndarray:
    """Write the index with FAISS; return the ids it holds, in the order written."""
    index, ids = SHAPES[shape][0](x)
    if ids is None:
        index.add(x)
        ids = np.arange(N)
    else:
        index.add_with_ids(x, np.asarray(ids, dtype=np.int64))
    faiss.write_index(index, str(path))
    return np.asarray(ids, dtype=np.int64)


def _native_read(path: Path) -> dict[str, np.ndarray]:
    """id -> vector, as FAISS itself reads the file (never vecbridge)."""
    index = faiss.read_index(str(path))
    if hasattr(index, "id_map"):
        ids = faiss.vector_to_array(index.id_map)
        inner = faiss.downcast_index(index.index)
        try:
            faiss.extract_index_ivf(inner).make_direct_map()
        except RuntimeError:
            pass
        vecs = inner.reconstruct_n(0, inner.ntotal)
    else:
        try:
            ivf = faiss.extract_index_ivf(index)
        except RuntimeError:
            ids, vecs = np.arange(index.ntotal), index.reconstruct_n(0, index.ntotal)
        else:
            ivf.set_direct_map_type(faiss.DirectMap.Hashtable)
            lists = ivf.invlists
            ids = np.concatenate([faiss.rev_swig_ptr(lists.get_ids(i), lists.list_size(i)).copy()
                                  for i in range(ivf.nlist)])
            vecs = np.stack([index.reconstruct(int(i)) for i in ids])
    return {str(int(i)): np.asarray(v, dtype=np.float32) for i, v in zip(ids, vecs)}


@pytest.fixture(params=list(SHAPES))
def written(request, tmp_path):
    x = _data(1)
    path = tmp_path / f"{request.param}.faiss"
    ids = _write(path, request.param, x)
    return request.param, path, x, ids


def test_open_get_count_query(written):
    shape, path, x, ids = written
    native = _native_read(path)
    assert sorted(native) == sorted(str(i) for i in ids)
    metric, exact = SHAPES[shape][1], SHAPES[shape][2]
    with vecbridge.open_collection(f"faiss:///{path}?collection={path.name}") as coll:
        assert coll.config["layout"] == "native" and coll.mapping.id_kind == "int"
        assert coll.dimension == DIM and coll.metric == metric and coll.count() == N
        # every record, by scan and by id, equals what FAISS reads and what was written
        scanned = {r.id: r for batch in coll.scan(17) for r in batch}
        assert sorted(scanned) == sorted(native)
        for i, id_ in enumerate(ids.tolist()):
            np.testing.assert_array_equal(scanned[str(id_)].vector, native[str(id_)])
            np.testing.assert_array_equal(native[str(id_)], x[i])
            assert scanned[str(id_)].metadata == {} and scanned[str(id_)].document is None
        some = [str(ids[5]), "no-such", str(ids[0]), "007", str(ids[42])]
        got = coll.get(ids=some, include=["vector"])
        assert [r.id for r in got] == [some[0], some[2], some[4]]
        for r in got:
            np.testing.assert_array_equal(r.vector, native[r.id])
        # filters: no record has metadata, so $ne is true for all and $eq for none (the reference rule)
        assert coll.count({"k": {"$ne": 1}}) == N and coll.count({"k": 1}) == 0
        assert coll.get(where={"k": 1}) == [] and len(coll.get(where={"$not": {"k": 1}}, limit=7)) == 7
        # queries: distances as numpy computes them for the ids returned; exact indexes return numpy's ranking
        q = _data(2)[:5]
        order = list(native)
        mat = np.stack([native[i] for i in order])
        for row, qv in zip(coll.query(q, k=6, include=["vector"]), q):
            assert len(row) == 6
            d = brute_force_distances(metric, qv[None, :], np.stack([h.vector for h in row]))[0]
            np.testing.assert_allclose([h.distance for h in row], d, atol=1e-4)
            assert [h.distance for h in row] == sorted(h.distance for h in row)
            if exact:
                want = np.argsort(brute_force_distances(metric, qv[None, :], mat)[0], kind="stable")[:6]
                assert [h.id for h in row] == [order[j] for j in want]
        assert coll.query(q[0], k=3, where={"k": 1}) == []
        assert len(coll.query(q[0], k=3, where={"k": {"$nin": [1]}})) == 3


def test_writes_are_refused_and_the_file_is_unchanged(written):
    _, path, x, ids = written
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with vecbridge.connect(f"faiss:///{path.parent}") as client:
        coll = client.get_collection(path.name)
        calls = [lambda: coll.add(["new"], x[:1]), lambda: coll.upsert([str(ids[0])], x[:1]),
                 lambda: coll.update([str(ids[0])], metadatas=[{"a": 1}]), lambda: coll.delete(ids=[str(ids[0])]),
                 lambda: coll.delete(where={"a": 1}), lambda: coll.set_config(note="x"),
                 lambda: client.delete_collection(path.name)]
        for call in calls:
            with pytest.raises(UnsupportedFeatureError, match="read-only"):
                call()
        assert coll.count() == N
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("n", [1, 3, 7])
def test_partitions_return_every_record_once(written, n):
    _, path, _, _ = written
    native = _native_read(path)
    with vecbridge.connect(f"faiss:///{path}") as client:
        coll = client.get_collection(path.name)
        seen: list[str] = []
        for p in coll.partitions(n):
            for batch in coll.scan(11, partition=vecbridge.Partition.from_json(p.to_json())):
                seen += [r.id for r in batch]
                for r in batch:
                    np.testing.assert_array_equal(r.vector, native[r.id])
        assert sorted(seen) == sorted(native) and len(seen) == len(native)


def test_empty_index(tmp_path):
    path = tmp_path / "empty.index"
    faiss.write_index(faiss.IndexFlatIP(DIM), str(path))
    with vecbridge.connect(f"faiss:///{path}") as client:
        coll = client.get_collection("empty.index")
        assert coll.count() == 0 and list(coll.scan()) == [] and coll.query(_data()[0], k=3) == []
        parts = coll.partitions(4)
        assert len(parts) == 1 and [b for p in parts for b in coll.scan(partition=p)] == []


def test_metric_cosine_only_when_asked_and_normalised(tmp_path):
    x = _data(3, normalise=True)
    path = tmp_path / "cos.faiss"
    index = faiss.IndexFlatIP(DIM)
    index.add(x)
    faiss.write_index(index, str(path))
    with vecbridge.connect(f"faiss:///{path}") as client:
        assert client.get_collection("cos.faiss").metric == "ip"  # nothing in the file says cosine
    with vecbridge.connect(f"faiss:///{path}?metric=cosine") as client:
        coll = client.get_collection("cos.faiss")
        assert coll.metric == "cosine"
        q = _data(4)[0] * 3.0  # an unnormalised query: cosine does not care
        hits = coll.query(q, k=5)
        d = brute_force_distances("cosine", q[None, :], x)[0]
        assert [h.id for h in hits] == [str(j) for j in np.argsort(d, kind="stable")[:5]]
        np.testing.assert_allclose([h.distance for h in hits], np.sort(d)[:5], atol=1e-4)
    raw = tmp_path / "raw.faiss"
    index = faiss.IndexFlatIP(DIM)
    index.add(_data(5))
    faiss.write_index(index, str(raw))
    with pytest.raises(UnsupportedFeatureError, match="normalised"):
        vecbridge.open_collection(f"faiss:///{raw}?collection=raw.faiss&metric=cosine")
    l2 = tmp_path / "l2.faiss"
    _write(l2, "flat_l2", x)
    with pytest.raises(UnsupportedFeatureError, match="cannot be searched as 'cosine'"):
        vecbridge.open_collection(f"faiss:///{l2}?collection=l2.faiss&metric=cosine")


def test_listing_never_fails(tmp_path, capsys):
    folder = tmp_path / "f"
    with vecbridge.connect(f"faiss:///{folder}") as client:
        client.create_collection("mine", DIM, "l2").add(["a", "b"], _data()[:2])
    _write(folder / "good.faiss", "flat_l2", _data(6))
    (folder / "broken.faiss").write_bytes(b"not a faiss index")
    dup = faiss.IndexIDMap(faiss.IndexFlatL2(DIM))
    dup.add_with_ids(_data(7)[:2], np.array([5, 5], dtype=np.int64))
    faiss.write_index(dup, str(folder / "dup.index"))
    with vecbridge.connect(f"faiss:///{folder}") as client:
        assert client.list_collections() == ["broken.faiss", "dup.index", "good.faiss", "mine"]
        rows = {r["name"]: r for r in client.describe_collections()}
        assert rows["mine"] == {"name": "mine", "layout": "vecbridge"}
        assert rows["good.faiss"] == {"name": "good.faiss", "layout": "native"}
        assert rows["broken.faiss"]["layout"] == "native" and "broken.faiss" in rows["broken.faiss"]["error"]
        assert "more than once" in rows["dup.index"]["error"]
        with pytest.raises(BackendError):
            client.get_collection("broken.faiss")
    code = cli.main(["ls", f"faiss:///{folder}", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    by_name = {c["name"]: c for c in data["collections"]}
    assert (by_name["good.faiss"]["count"], by_name["good.faiss"]["layout"]) == (N, "native")
    assert (by_name["mine"]["count"], by_name["mine"]["layout"]) == (2, "vecbridge")
    assert "error" in by_name["broken.faiss"] and "error" in by_name["dup.index"]
    code = cli.main(["ls", f"faiss:///{folder}"])
    out = capsys.readouterr().out
    assert code == 0 and "good.faiss" in out and "broken.faiss  cannot be opened" in out and "mine" in out


def test_file_url_and_layout_option(tmp_path):
    path = tmp_path / "one.faiss"
    _write(path, "flat_l2", _data())
    with vecbridge.connect(f"faiss:///{path}") as client:
        assert client.list_collections() == ["one.faiss"]
        with pytest.raises(UnsupportedFeatureError, match="read-only"):
            client.create_collection("other", DIM)
        with pytest.raises(vecbridge.CollectionNotFoundError):
            client.get_collection("other")
    assert not (tmp_path / "one.faiss").is_dir()  # never made a folder of it
    with pytest.raises(UnsupportedFeatureError, match="layout native"):
        vecbridge.open_collection(f"faiss:///{path}?collection=one.faiss&layout=vecbridge")
    with pytest.raises(vecbridge.CollectionNotFoundError, match="no FAISS index file"):
        vecbridge.connect(f"faiss:///{tmp_path}/missing.faiss")
    with pytest.raises(vecbridge.InvalidURLError, match="unknown faiss option"):
        vecbridge.connect(f"faiss:///{path}?nope=1")


@pytest.mark.parametrize("target", ["faiss", "qdrant"])
def test_migrate_into_a_collection(written, target, tmp_path):
    shape, path, _, _ = written
    native = _native_read(path)
    dest = f"faiss:///{tmp_path}/out" if target == "faiss" else f"qdrant:///{tmp_path}/q"
    report = vecbridge.migrate(f"faiss:///{path}?collection={path.name}", f"{dest}?collection=copy",
                               progress=False, verify="full")
    assert report.ok and report.records_copied == N and report.verification.checked == N, report.summary()
    with vecbridge.open_collection(f"{dest}?collection=copy") as coll:
        assert coll.metric == SHAPES[shape][1] and coll.count() == N
        got = {r.id: r for batch in coll.scan(50) for r in batch}
        assert sorted(got) == sorted(native)
        for id_, vec in native.items():
            np.testing.assert_array_equal(got[id_].vector, vec)
            assert got[id_].metadata == {} and got[id_].document is None


def test_a_file_url_needs_no_collection_name(tmp_path):
    x = _data(2)
    path = tmp_path / "plain.faiss"
    _write(path, "flat_l2", x)
    native = _native_read(path)
    with vecbridge.open_collection(f"faiss:///{path}") as coll:
        assert coll.name == "plain.faiss" and coll.count() == len(native)
    report = vecbridge.migrate(f"faiss:///{path}", f"faiss:///{tmp_path}/copy?collection=plain", verify="full")
    assert report.ok and report.verification.checked == len(native)
    with vecbridge.open_collection(f"faiss:///{tmp_path}/copy?collection=plain") as copy:
        got = {r.id: r.vector for r in copy.get(ids=list(native), include=["vector"])}
    assert set(got) == set(native)
    for key, vec in native.items():
        np.testing.assert_array_equal(got[key], vec)
