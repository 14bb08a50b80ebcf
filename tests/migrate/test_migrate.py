"""vecbridge.migrate on FAISS (memory and disk): copy, plan, resume, verification."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from migrate_helpers import assert_holds, faiss_source, fill, make_records

import vecbridge
from vecbridge.backends.faiss import FaissClient
from vecbridge.capabilities import Capabilities
from vecbridge.errors import CollectionNotFoundError, InvalidURLError
from vecbridge.migrate import (
    Checkpoint,
    MigrationError,
    MigrationInterrupted,
    default_path,
    map_name,
    rows_per_batch,
)
from vecbridge.migrate.plan import check_records
from vecbridge.migrate.verify import Reservoir
from vecbridge.types import Record

pytest.importorskip("faiss")

DIM = 16


@pytest.fixture
def records() -> list[Record]:
    return make_records(300, DIM)


def _memory_source(records: list[Record], metric: str = "cosine", name: str = "docs") -> Any:
    client = vecbridge.connect("faiss://")
    coll = client.create_collection(name, DIM, metric, index={"type": "flat"})
    fill(coll, records)
    return coll


# -- copies ---------------------------------------------------------------------------------
@pytest.mark.parametrize("metric", ["cosine", "l2", "ip"])
def test_memory_to_memory_is_lossless(records, metric):
    source = _memory_source(records, metric)
    target_client = vecbridge.connect("faiss://")
    report = vecbridge.migrate(source, target_client, verify="full", checkpoint=False, batch_size=64)
    coll = target_client.get_collection("docs")
    assert (coll.dimension, coll.metric, coll.index["type"]) == (DIM, metric, "flat")
    assert_holds(coll, records)
    assert report.records_copied == len(records) and report.records_skipped == 0
    assert report.verification is not None and report.verification.ok
    assert report.verification.checked == len(records)


def test_disk_to_disk_by_url(tmp_path, records):
    src = faiss_source(str(tmp_path / "a"), records)
    target = "faiss:///" + str(tmp_path / "b")
    report = vecbridge.migrate(src.collection_url, target, batch_size=50)
    assert report.target_collection == "docs" and report.mapped_from is None
    assert report.records_copied == 300 and report.records_per_second > 0
    assert report.verification.mode == "sample" and report.verification.ok
    assert report.checkpoint is None and not Path(".vecbridge").exists(), "state removed after a verified run"
    with vecbridge.connect(target) as client:
        assert_holds(client.get_collection("docs"), records)
    with vecbridge.connect(src.url) as client:  # the source is only read
        assert_holds(client.get_collection("docs"), records)


def test_memory_to_disk_and_back(tmp_path, records):
    source = _memory_source(records)
    disk = "faiss:///" + str(tmp_path / "d") + "?collection=copy"
    vecbridge.migrate(source, disk, verify="full")
    back = vecbridge.connect("faiss://")
    report = vecbridge.migrate(disk, back, verify="full")
    assert report.source_collection == "copy"
    assert_holds(back.get_collection("copy"), records)


def test_empty_collection(tmp_path):
    client = vecbridge.connect("faiss:///" + str(tmp_path / "a"))
    client.create_collection("empty", 3, "l2")
    client.close()
    report = vecbridge.migrate("faiss:///" + str(tmp_path / "a") + "?collection=empty",
                               "faiss:///" + str(tmp_path / "b"), verify="full")
    assert report.records_copied == 0 and report.verification.ok
    with vecbridge.connect("faiss:///" + str(tmp_path / "b")) as c:
        assert (c.get_collection("empty").dimension, c.get_collection("empty").metric) == (3, "l2")


def test_large_documents_are_split_under_the_request_budget(records):
    big = [Record(r.id, r.vector, r.metadata, "d" * 20_000) for r in records[:40]]
    source = _memory_source(big)
    target = vecbridge.connect("faiss://")
    sizes: list[int] = []
    coll = target.create_collection("docs", DIM, "cosine")
    original = coll.upsert

    def counting(ids: Any, *args: Any, **kwargs: Any) -> None:
        sizes.append(len(ids))
        original(ids, *args, **kwargs)

    coll.upsert = counting  # observe the requests the real collection receives
    vecbridge.migrate(source, coll, batch_size=40, max_request_bytes=100_000, checkpoint=False)
    assert sum(sizes) == 40 and max(sizes) <= 5, sizes  # 20 kB per record, 100 kB per request
    assert_holds(target.get_collection("docs"), big)


# -- the plan -------------------------------------------------------------------------------
def test_rows_per_batch_follow_the_dimension():
    assert rows_per_batch(768, 4, 2 * 2**20) == 2 * 2**20 // (768 * 4 + 64)
    assert rows_per_batch(65536, 20, 2 * 2**20) == 1  # one record per request, even when it is large
    assert rows_per_batch(2, 4, 2 * 2**20) == 5000  # capped
    assert rows_per_batch(768, 20, 4 * 2**20) < rows_per_batch(768, 4, 4 * 2**20)  # JSON costs more


def test_map_name():
    assert map_name("docs") == "docs"
    assert map_name("my-docs.v2") == "my_docs_v2"
    assert map_name("2024_docs") == "c_2024_docs"
    assert map_name("ab") is not None and len(map_name("ab")) >= 3
    long = map_name("x" * 200)
    assert long is not None and len(long) <= 63 and long != map_name("x" * 199)
    lower = re.compile(r"[a-z][a-z0-9_]{2,62}")
    assert map_name("MyDocs", lower) == "mydocs"


class LowerFaissClient(FaissClient):
    """A FAISS client with a stricter name rule and only the l2 metric, like some real engines."""

    capabilities_declared = Capabilities(index_types=("flat", "hnsw"), metrics=("l2",),
                                         name_pattern=re.compile(r"[a-z][a-z0-9_]{2,30}"),
                                         name_rule="3 to 31 characters of [a-z0-9_], starting with a letter")


@pytest.fixture
def strict_scheme() -> str:
    vecbridge.register_backend("lowerfaiss", LowerFaissClient)
    return "lowerfaiss"


def test_a_name_the_target_cannot_hold_is_mapped(tmp_path, strict_scheme):
    src = faiss_source(str(tmp_path / "a"), make_records(20, DIM), name="My_Docs", metric="l2")
    report = vecbridge.migrate(src.collection_url, f"{strict_scheme}:///{tmp_path / 'b'}", verify="full")
    assert (report.target_collection, report.mapped_from) == ("my_docs", "My_Docs")
    assert "mapped from 'My_Docs'" in str(report)
    with vecbridge.connect(f"faiss:///{tmp_path / 'b'}") as c:
        assert c.list_collections() == ["my_docs"]


def test_refusals_come_before_any_write(tmp_path, strict_scheme):
    src = faiss_source(str(tmp_path / "a"), make_records(20, DIM), metric="cosine")
    target_dir = tmp_path / "b"
    with pytest.raises(MigrationError, match="no 'cosine' metric"):
        vecbridge.migrate(src.collection_url, f"{strict_scheme}:///{target_dir}")
    with pytest.raises(MigrationError, match="cannot hold the collection name 'Bad_Name'"):
        vecbridge.migrate(src.collection_url, f"{strict_scheme}:///{target_dir}?collection=Bad_Name")
    assert not any(target_dir.iterdir()) and not Path(".vecbridge").exists()


def test_existing_target_must_match_and_be_empty_unless_asked(tmp_path, records):
    src = faiss_source(str(tmp_path / "a"), records)
    tgt = "faiss:///" + str(tmp_path / "b")
    with vecbridge.connect(tgt) as c:
        c.create_collection("docs", DIM + 1, "cosine")
        c.create_collection("ip_docs", DIM, "ip")
        fill(c.create_collection("full", DIM, "cosine"), records[:5])
    with pytest.raises(MigrationError, match="dimension 17, the source's is 16"):
        vecbridge.migrate(src.collection_url, tgt)
    with pytest.raises(MigrationError, match="metric 'ip', the source's is 'cosine'"):
        vecbridge.migrate(src.collection_url, tgt + "?collection=ip_docs")
    with pytest.raises(MigrationError, match="already holds 5 records.*--into-existing"):
        vecbridge.migrate(src.collection_url, tgt + "?collection=full")
    report = vecbridge.migrate(src.collection_url, tgt + "?collection=full", into_existing=True, verify="full")
    assert report.verification.ok and report.records_copied == len(records)


def test_same_collection_is_refused(tmp_path, records):
    src = faiss_source(str(tmp_path / "a"), records)
    with pytest.raises(MigrationError, match="same collection"):
        vecbridge.migrate(src.collection_url, src.url, into_existing=True)


def test_missing_source_and_bad_urls(tmp_path):
    with pytest.raises(CollectionNotFoundError):
        vecbridge.migrate(f"faiss:///{tmp_path}?collection=nothing", "faiss://")
    with pytest.raises(InvalidURLError, match="names no collection"):
        vecbridge.migrate(f"faiss:///{tmp_path}", "faiss://")
    with pytest.raises(InvalidURLError):
        vecbridge.migrate("not a url", "faiss://")


def test_dry_run_writes_nothing(tmp_path, records):
    src = faiss_source(str(tmp_path / "a"), records)
    report = vecbridge.migrate(src.collection_url, "faiss:///" + str(tmp_path / "b"), dry_run=True)
    assert report.dry_run and report.ok and report.plan.action == "create"
    assert report.plan.source_count == len(records) and report.plan.dimension == DIM
    assert "dry run: nothing was written" in str(report)
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
    assert not Path(".vecbridge").exists()


def test_check_records_names_the_record():
    bad = Record("r1", np.ones(DIM, np.float32), {"_vbsecret": 1}, None)
    why = check_records([Record("r0", np.ones(DIM, np.float32), {}, None), bad], DIM, "cosine")
    assert why is not None and "'r1'" in why and "_vbsecret" in why
    zero = Record("z", np.zeros(DIM, np.float32), {}, None)
    assert "zero vector" in check_records([zero], DIM, "cosine")
    assert check_records([zero], DIM, "l2") is None


# -- resume ---------------------------------------------------------------------------------
class _StopAfter:
    """A progress callback that interrupts the copy, like Ctrl-C, after ``n`` records."""

    def __init__(self, n: int):
        self.n = n

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if phase == "copy" and done >= self.n:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_exactly(tmp_path, records):
    src = faiss_source(str(tmp_path / "a"), records)
    tgt = "faiss:///" + str(tmp_path / "b")
    with pytest.raises(MigrationInterrupted, match="--resume"):
        vecbridge.migrate(src.collection_url, tgt, batch_size=32, progress=_StopAfter(100))
    path = default_path(src.collection_url, tgt)
    state = Checkpoint(path).load()
    assert state is not None and state.position == 128 and state.created_target
    with vecbridge.connect(tgt) as c:
        assert c.get_collection("docs").count() == 128
    with pytest.raises(MigrationError, match="--resume.*--restart"):
        vecbridge.migrate(src.collection_url, tgt)  # neither flag: refused
    report = vecbridge.migrate(src.collection_url, tgt, batch_size=32, resume=True, verify="full")
    assert report.resumed and report.records_skipped == 128
    assert report.records_copied == len(records) - 128
    assert report.verification.ok and not path.exists()
    with vecbridge.connect(tgt) as c:
        assert_holds(c.get_collection("docs"), records)


def test_restart_copies_everything_again(tmp_path, records):
    src = faiss_source(str(tmp_path / "a"), records)
    tgt = "faiss:///" + str(tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        vecbridge.migrate(src.collection_url, tgt, batch_size=40, progress=_StopAfter(80))
    report = vecbridge.migrate(src.collection_url, tgt, batch_size=40, restart=True, verify="full")
    assert report.records_copied == len(records) and report.records_skipped == 0
    with vecbridge.connect(tgt) as c:
        assert_holds(c.get_collection("docs"), records)


def test_resume_when_the_source_order_changed(tmp_path, records):
    """An update moves a record to the end of a FAISS scan: the checkpoint's last id no longer matches."""
    src = faiss_source(str(tmp_path / "a"), records)
    tgt = "faiss:///" + str(tmp_path / "b")
    with pytest.raises(KeyboardInterrupt):
        vecbridge.migrate(src.collection_url, tgt, batch_size=25, progress=_StopAfter(50))
    changed = list(records)
    changed[10] = Record(records[10].id, records[10].vector * 2, {"changed": True}, "new")
    with vecbridge.connect(src.url) as c:
        fill(c.get_collection("docs"), [changed[10]])
    report = vecbridge.migrate(src.collection_url, tgt, batch_size=25, resume=True, verify="full")
    assert any("scan order" in n for n in report.notes), report.notes
    assert report.verification.ok
    with vecbridge.connect(tgt) as c:
        assert_holds(c.get_collection("docs"), changed)


def test_resume_without_checkpoint_starts_over(tmp_path, records):
    src = faiss_source(str(tmp_path / "a"), records)
    tgt = "faiss:///" + str(tmp_path / "b")
    vecbridge.migrate(src.collection_url, tgt)
    report = vecbridge.migrate(src.collection_url, tgt, resume=True, verify="full")
    assert report.records_copied == len(records) and report.verification.ok
    assert any("no checkpoint" in n for n in report.notes)


# -- transient errors: tests/migrate/test_retries.py ---------------------------------------


# -- verification ---------------------------------------------------------------------------
def test_verification_finds_every_kind_of_difference(records):
    source = _memory_source(records)
    target_client = vecbridge.connect("faiss://")
    vecbridge.migrate(source, target_client, checkpoint=False)
    coll = target_client.get_collection("docs")
    r5, r6, r7 = records[5], records[6], records[8]
    coll.upsert([r5.id], [r5.vector], [{**r5.metadata, "int": float(r5.metadata["int"])}], [r5.document])
    coll.upsert([r6.id], [r6.vector * (1 + 1e-4)], [r6.metadata], [r6.document])
    coll.upsert([r7.id], [r7.vector], [r7.metadata], ["" if r7.document is None else None])
    coll.delete(ids=[records[9].id])
    result = vecbridge.migrate.verify(source, coll, mode="full")
    assert not result.ok and result.checked == len(records)
    found = {(m.id, m.field) for m in result.mismatches}
    assert found == {("", "count"), (r5.id, "metadata"), (r6.id, "vector"), (r7.id, "document"),
                     (records[9].id, "missing")}
    detail = next(m.detail for m in result.mismatches if m.field == "metadata")
    assert "(int)" in detail and "(float)" in detail
    assert vecbridge.migrate.verify(source, coll, mode="count").mismatch_count == 1
    # float32 rounding is not a difference
    tiny = r6.vector.copy()
    tiny[0] = np.nextafter(tiny[0], np.float32(np.inf))
    coll.upsert([r6.id], [tiny], [r6.metadata], [r6.document])
    assert all(m.id != r6.id for m in vecbridge.migrate.verify(source, coll, mode="full").mismatches)


def test_sample_is_uniform_over_the_stream():
    counts = np.zeros(100)
    for seed in range(400):
        pool = Reservoir(10, seed)
        pool.add(str(i) for i in range(100))
        assert len(set(pool.ids)) == 10
        for i in pool.ids:
            counts[int(i)] += 1
    assert counts.min() > 15 and counts.max() < 70  # each id expected 40 times


def test_vecbridge_migrate_stays_callable():
    import vecbridge.migrate as module  # importing the package rebinds the name vecbridge.migrate

    assert callable(vecbridge.migrate) and callable(module)
