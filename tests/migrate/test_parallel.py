"""Parallel copies (``workers=N`` / ``--workers N``): lossless between embedded backends, one
checkpoint entry per partition, a 4-worker run SIGKILLed twice resumes to an exact copy,
a changed number of workers on resume is handled (or refused where it cannot be), and
``verify full`` by partitions finds what differs.

Expected answers are the records generated here (migrate_helpers), never what a backend
reads back.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import engines
import numpy as np
import pytest
from migrate_helpers import assert_holds, faiss_source, fill, make_records
from test_kill import _run_and_kill
from test_pairs import _require, _url

import vecbridge
from vecbridge.migrate.parallel import merge_samples

pytest.importorskip("faiss")

# Each backend once as a source and once as a target.
RING = [("faiss", "chroma"), ("chroma", "qdrant"), ("qdrant", "milvus"), ("milvus", "pgvector"),
        ("pgvector", "faiss")]
DIM = 8


@pytest.mark.parametrize("src_backend, dst_backend", RING, ids=[f"{a}-to-{b}" for a, b in RING])
def test_four_workers_copy_losslessly(src_backend, dst_backend, tmp_path, pg_folder):
    _require(src_backend)
    _require(dst_backend)
    records = make_records(400, DIM, seed=11)
    src_url = _url(src_backend, str(tmp_path / "src"), pg_folder)
    dst_url = _url(dst_backend, str(tmp_path / "dst"), pg_folder)
    src_name, dst_name = f"psrc_{src_backend}", f"pdst_{dst_backend}"
    with vecbridge.connect(src_url) as client:
        fill(client.create_collection(src_name, DIM, "cosine"), records)
    try:
        report = vecbridge.migrate(f"{src_url}?collection={src_name}", f"{dst_url}?collection={dst_name}",
                                   batch_size=16, verify="full", workers=4, checkpoint=str(tmp_path / "cp.json"))
        assert report.workers == 4 and 1 <= report.partitions <= 4
        assert report.records_copied == len(records) and report.records_skipped == 0
        assert report.verification is not None and report.verification.ok, report.verification.mismatches[:5]
        assert report.verification.checked == len(records)
        assert not (tmp_path / "cp.json").exists()
        with vecbridge.connect(dst_url) as client:
            assert_holds(client.get_collection(dst_name), records)
    finally:
        if "pgvector" in (src_backend, dst_backend):  # the session's shared database: leave it clean
            for url, name in ((src_url, src_name), (dst_url, dst_name)):
                if url.startswith("pgvector"):
                    with vecbridge.connect(url) as client:
                        if name in client.list_collections():
                            client.delete_collection(name)


def test_empty_and_tiny_sources(tmp_path):
    for n in (0, 1, 3):
        records = make_records(max(n, 1), DIM, seed=n)[:n]
        src = f"faiss:///{tmp_path}/src{n}"
        with vecbridge.connect(src) as client:
            coll = client.create_collection("docs", DIM, "cosine")
            if records:
                fill(coll, records)
        dst = f"faiss:///{tmp_path}/dst{n}"
        report = vecbridge.migrate(f"{src}?collection=docs", dst, workers=4, verify="full", checkpoint=False)
        assert report.ok and report.records_copied == n and report.verification.checked == n
        with vecbridge.connect(dst) as client:
            assert_holds(client.get_collection("docs"), records)


def test_default_is_one_worker_into_an_embedded_target(tmp_path):
    records = make_records(600, DIM, seed=2)
    src = faiss_source(str(tmp_path / "src"), records)
    report = vecbridge.migrate(src.collection_url, f"milvus:///{tmp_path}/m.db", batch_size=16, checkpoint=False)
    assert report.workers == 1 and report.partitions == 0  # the single-stream copier, as before


def test_default_is_parallel_into_a_server(tmp_path):
    """One real server (PostgreSQL): the default for a server target that other processes share."""
    records = make_records(2000, DIM, seed=4)
    src = faiss_source(str(tmp_path / "src"), records)
    with engines.postgres_server() as pg:
        report = vecbridge.migrate(src.collection_url, pg.url + ("&" if "?" in pg.url else "?") + "collection=par",
                                   batch_size=16, verify="full", checkpoint=False)
        assert report.workers == 4 and report.partitions == 4
        assert report.verification.ok and report.verification.checked == len(records)
        with vecbridge.connect(pg.url) as client:
            assert_holds(client.get_collection("par"), records)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "vecbridge", "migrate", *args]


def _partitions(cp: Path) -> list[dict]:
    return json.loads(cp.read_text())["partitions"]


def test_four_workers_sigkilled_twice_resume_to_an_exact_copy(tmp_path):
    n = 6000
    records = make_records(n, 32, seed=9)
    src = faiss_source(str(tmp_path / "src"), records)
    target = "faiss:///" + str(tmp_path / "dst")
    cp = tmp_path / "state.json"
    argv = _cli(src.collection_url, target, "--batch-size", "10", "--checkpoint", str(cp), "--verify", "full",
                "--json", "--quiet")

    first = _run_and_kill(argv + ["--workers", "4"], cp, tmp_path, 500)
    assert 500 <= first < n
    parts = _partitions(cp)
    assert len(parts) == 4 and sum(p["position"] for p in parts) == first
    assert sum(p["position"] > 0 for p in parts) >= 2, "the partitions are copied at once"
    with vecbridge.connect(target) as client:
        held = {r.id for batch in client.get_collection("docs").scan(include=[]) for r in batch}
    for p in parts:  # no partition's checkpoint runs ahead of the target
        part = vecbridge.Partition.from_json(json.dumps(p["partition"]))
        with vecbridge.connect(src.url) as client:
            ids = [r.id for b in client.get_collection("docs").scan(include=[], partition=part) for r in b]
        assert set(ids[:p["position"]]) <= held

    # a changed number of workers: the same 4 partitions, copied by 2 threads
    second = _run_and_kill(argv + ["--resume", "--workers", "2"], cp, tmp_path, first + 500)
    assert first + 500 <= second < n and len(_partitions(cp)) == 4

    done = subprocess.run(argv + ["--resume"], cwd=tmp_path, check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["resumed"] and report["partitions"] == 4
    assert report["records_skipped"] == second and report["records_copied"] == n - second
    assert report["verification"]["checked"] == n
    assert not cp.exists()
    with vecbridge.connect(target) as client:
        assert_holds(client.get_collection("docs"), records)


def test_single_stream_checkpoint_refuses_more_workers(tmp_path):
    n = 4000
    records = make_records(n, 16, seed=5)
    src = faiss_source(str(tmp_path / "src"), records)
    target = "faiss:///" + str(tmp_path / "dst")
    cp = tmp_path / "state.json"
    argv = _cli(src.collection_url, target, "--batch-size", "10", "--checkpoint", str(cp), "--json", "--quiet")
    _run_and_kill(argv, cp, tmp_path, 300)
    refused = subprocess.run(argv + ["--resume", "--workers", "4"], cwd=tmp_path, check=False, capture_output=True,
                             text=True)
    assert refused.returncode == 2
    assert "one worker" in refused.stderr and "--workers 1" in refused.stderr and "--restart" in refused.stderr
    done = subprocess.run(argv + ["--resume", "--verify", "full"], cwd=tmp_path, check=False, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["partitions"] == 0
    with vecbridge.connect(target) as client:
        assert_holds(client.get_collection("docs"), records)


def test_parallel_full_verification_finds_differences(tmp_path):
    records = make_records(500, DIM, seed=6)
    src = faiss_source(str(tmp_path / "src"), records)
    dst = faiss_source(str(tmp_path / "dst"), records)
    with vecbridge.connect(dst.url) as client:
        coll = client.get_collection("docs")
        changed, gone = records[10], records[20]
        coll.update([changed.id], metadatas=[{"int": -1}])
        coll.delete(ids=[gone.id])
    result = vecbridge.migrate.verify(src.collection_url, dst.collection_url, mode="full", workers=4)
    assert not result.ok and result.checked == len(records)
    found = {(m.id, m.field) for m in result.mismatches}
    assert found == {(changed.id, "metadata"), (gone.id, "missing"), ("", "count")}


def test_merged_sample_is_uniform():
    """Streams of 10 and 990 ids, samples of 100: the small stream gives 1 id per sample on average."""
    small, large = [f"s{i}" for i in range(10)], [f"l{i}" for i in range(990)]
    counts = []
    for seed in range(300):
        rng = np.random.default_rng(seed)
        merged = merge_samples([(10, small), (990, list(rng.choice(large, 100, replace=False)))], 100, seed=seed)
        assert len(merged.ids) == 100 and len(set(merged.ids)) == 100 and merged.seen == 1000
        counts.append(sum(i.startswith("s") for i in merged.ids))
    assert 0.8 < float(np.mean(counts)) < 1.2
