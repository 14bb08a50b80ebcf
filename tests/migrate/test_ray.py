"""vecbridge.ray on a local Ray instance started here (2 CPUs, a small object store).

A Ray copy (``engine="ray"``) is lossless; a Ray copy whose driver is SIGKILLed twice
resumes to an exact copy; the datasource reads one task per partition and the datasink
writes any URL.  Expected answers are the records generated here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from migrate_helpers import assert_holds, faiss_source, make_records
from test_kill import _run_and_kill

import vecbridge
from vecbridge.errors import MigrationError

ray = pytest.importorskip("ray")
pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def ray_address():
    ray.init(num_cpus=2, object_store_memory=100 * 2**20, include_dashboard=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def test_ray_copy_is_lossless(ray_address, tmp_path):
    records = make_records(1500, 16, seed=21)
    src = faiss_source(str(tmp_path / "src"), records)
    target = f"faiss:///{tmp_path}/dst"
    report = vecbridge.migrate(src.collection_url, target, engine="ray", workers=2, batch_size=50, verify="full",
                               checkpoint=str(tmp_path / "cp.json"))
    assert report.engine == "ray" and report.partitions == 2
    assert report.records_copied == len(records) and report.verification.ok
    assert report.verification.checked == len(records)
    assert not (tmp_path / "cp.json").exists()
    with vecbridge.connect(target) as client:
        assert_holds(client.get_collection("docs"), records)


def test_ray_refuses_an_in_memory_side(ray_address, tmp_path):
    src = faiss_source(str(tmp_path / "src"), make_records(20, 8, seed=1))
    with pytest.raises(MigrationError, match="in-memory"):
        vecbridge.migrate(src.collection_url, "faiss://", engine="ray", checkpoint=False)


def test_ray_copy_resumes_after_its_driver_is_killed(ray_address, tmp_path):
    n = 6000
    records = make_records(n, 32, seed=22)
    src = faiss_source(str(tmp_path / "src"), records)
    target = "faiss:///" + str(tmp_path / "dst")
    cp = tmp_path / "state.json"
    argv = [sys.executable, "-m", "vecbridge", "migrate", src.collection_url, target, "--engine", "ray",
            "--ray-address", ray_address, "--workers", "2", "--batch-size", "10", "--checkpoint", str(cp),
            "--verify", "full", "--json", "--quiet"]
    first = _run_and_kill(argv, cp, tmp_path, 300)
    assert 300 <= first < n
    state = json.loads(cp.read_text())
    assert state["engine"] == "ray" and len(state["partitions"]) == 2
    second = _run_and_kill(argv + ["--resume"], cp, tmp_path, first + 300)
    assert first + 300 <= second < n
    done = subprocess.run(argv + ["--resume"], cwd=tmp_path, check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["resumed"] and report["verification"]["checked"] == n
    assert report["records_skipped"] == second and report["records_copied"] == n - second
    assert not cp.exists()
    with vecbridge.connect(target) as client:
        assert_holds(client.get_collection("docs"), records)


def test_datasource_reads_one_task_per_partition_and_datasink_writes(ray_address, tmp_path):
    import vecbridge.ray as vbray

    records = make_records(700, 16, seed=23)
    src = faiss_source(str(tmp_path / "src"), records)
    source = vbray.VecbridgeDatasource(src.collection_url, partitions=3)
    tasks = source.get_read_tasks(1)
    assert len(tasks) == 3
    per_task = [[i for table in task() for i in table.column("id").to_pylist()] for task in tasks]
    assert sorted(i for ids in per_task for i in ids) == sorted(r.id for r in records)

    ds = vbray.read_vecbridge(src.collection_url, partitions=3)
    want = {r.id: r for r in records}
    rows = ds.take_all()
    assert len(rows) == len(records) and {r["id"] for r in rows} == set(want)
    for row in rows[:50]:
        rec = want[row["id"]]
        assert row["vector"].tolist() == rec.vector.tolist()
        assert json.loads(row["metadata"]) == rec.metadata and row["document"] == rec.document

    vbray.write_vecbridge(ds, f"faiss:///{tmp_path}/copy?collection=copied")
    with vecbridge.connect(f"faiss:///{tmp_path}/copy") as client:
        coll = client.get_collection("copied")
        assert coll.dimension == 16
        assert_holds(coll, records)


def test_ray_copy_into_a_milvus_server_verifies(ray_address, tmp_path):
    """The Ray tasks write from other processes; the driver's verification reads the Milvus
    server at its own session timestamp, which knew nothing of their writes (the 200k benchmark
    reported "ok": false on its count).  The target's reads must see every task's write."""
    import engines

    records = make_records(600, 8, seed=23)
    src = faiss_source(str(tmp_path / "src"), records)
    with engines.milvus_server() as engine:
        target = f"{engine.url}?collection=ray_copy"
        report = vecbridge.migrate(src.collection_url, target, engine="ray", workers=2, batch_size=100,
                                   verify="count", checkpoint=False)
        assert report.records_copied == len(records)
        assert report.verification.ok, report.verification
        with vecbridge.connect(engine.url) as client:
            assert_holds(client.get_collection("ray_copy"), records)
