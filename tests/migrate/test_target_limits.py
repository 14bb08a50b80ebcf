"""A record the target cannot hold stops the migration before its first write (issue 18 item 3).

The target's limits come from its declared capabilities (Milvus: a document of 65,535
bytes, metadata of 65,536); every source record is checked against them before the first
write, and by ``--dry-run``.  What the target holds afterwards is read with the engine's
own client.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from migrate_helpers import faiss_source, fill

import vecbridge
from vecbridge.backends.faiss import FaissClient
from vecbridge.capabilities import Capabilities
from vecbridge.cli import main
from vecbridge.migrate import MigrationError
from vecbridge.types import Record

pytest.importorskip("faiss")

N, BAD, DIM = 3000, 2500, 8


def _records(n: int, bad: dict[int, str]) -> list[Record]:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    return [Record(f"rec-{i:06d}", vectors[i], {"i": i}, bad.get(i, f"document {i}")) for i in range(n)]


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """Milvus Lite keeps a socket beside its file: a short folder under /tmp."""
    with tempfile.TemporaryDirectory(prefix="vb-lim-", dir="/tmp") as tmp:
        yield Path(tmp)


def _native_count(db: Path, name: str) -> int | None:
    """Records of ``name`` in the Milvus Lite file, read with pymilvus; ``None``: no such collection."""
    from pymilvus import MilvusClient

    client = MilvusClient(str(db))
    try:
        if not client.has_collection(name):
            return None
        return int(client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"])
    finally:
        client.close()


def test_a_document_milvus_cannot_hold_stops_the_migration_before_the_first_write(short_tmp, capsys):
    pytest.importorskip("pymilvus")
    src = faiss_source(str(short_tmp / "src"), _records(N, {BAD: "x" * 70_000}))
    db = short_tmp / "m.db"
    target = f"milvus:///{db}"
    why = re.escape("record 'rec-002500' cannot be written to the target: its document is 70,000 bytes, "
                    "the milvus target holds a document of at most 65,535 bytes")
    with pytest.raises(MigrationError, match=why) as caught:
        vecbridge.migrate(src.collection_url, target, checkpoint=False)
    assert len(caught.value.problems) == 1
    assert _native_count(db, "docs") in (None, 0), "nothing was written"

    report = vecbridge.migrate(src.collection_url, target, dry_run=True)
    assert not report.ok and any(re.search(why, p) for p in report.plan.problems)

    code = main(["migrate", "--dry-run", src.collection_url, target])
    out, err = capsys.readouterr()
    assert code == 2 and re.search("PROBLEM: +" + why, out)
    assert re.search(why, err.splitlines()[-1]) and err.splitlines()[-1].startswith("vecbridge: error: ")
    code = main(["migrate", "--dry-run", "--json", "-q", src.collection_url, target])
    data = json.loads(capsys.readouterr().out)
    assert code == 2 and data["exit_code"] == 2 and not data["ok"] and data["dry_run"]
    assert re.search(why, data["error"]) and any(re.search(why, p) for p in data["plan"]["problems"])
    code = main(["migrate", "--json", "-q", src.collection_url, target])
    data = json.loads(capsys.readouterr().out)
    assert code == 2 and data["error_type"] == "MigrationError" and re.search(why, data["error"])
    assert _native_count(db, "docs") in (None, 0), "nothing was written"


class TightFaissClient(FaissClient):
    """A FAISS plugin with small declared limits, so that many records break them cheaply."""

    capabilities_declared = Capabilities(index_types=("flat", "hnsw"), max_document_bytes=100,
                                         max_metadata_bytes=60, max_request_bytes=4000)


@pytest.fixture
def tight() -> str:
    vecbridge.register_backend("tightfaiss", TightFaissClient)
    return "tightfaiss"


def test_every_record_over_a_limit_is_found_named_and_counted(tmp_path, tight):
    """25 documents and 1 metadata over the limits, one of them among the records the planner
    samples; every one is found, by the real run and the dry run alike, with the same words."""
    bad = {i: "d" * 101 for i in [3, *range(1000, 1024)]}
    records = _records(1200, bad)
    records[1100] = Record(records[1100].id, records[1100].vector, {"k": "v" * 60}, "short")
    src = faiss_source(str(tmp_path / "a"), records)
    target = f"{tight}:///{tmp_path / 'b'}"
    with pytest.raises(MigrationError) as caught:
        vecbridge.migrate(src.collection_url, target, batch_size=5000, checkpoint=False)
    problems = caught.value.problems
    assert problems[0].startswith("record 'rec-000003' cannot be written to the target: its document is 101 bytes")
    assert len(problems) == 21 and problems[-1] == "6 more records break the target's size limits"
    assert all("the tightfaiss target holds a document of at most 100 bytes" in p for p in problems[:20])
    report = vecbridge.migrate(src.collection_url, target, batch_size=5000, dry_run=True)
    assert report.plan.problems == problems
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_a_record_larger_than_the_targets_request_limit_is_refused(tmp_path, tight):
    """4,000 bytes per request: a 4,096-dimension vector alone exceeds it."""
    rng = np.random.default_rng(1)
    src_url = f"faiss:///{tmp_path / 'a'}"
    with vecbridge.connect(src_url) as client:
        fill(client.create_collection("wide", 4096, "l2"), [Record("w", rng.normal(size=4096).astype(np.float32), {}, None)])
    with pytest.raises(MigrationError, match=r"record 'w' cannot be written to the target: it takes about "
                                             r"16,\d{3} bytes in a write request, the tightfaiss target accepts "
                                             r"requests of at most 4,000 bytes"):
        vecbridge.migrate(f"{src_url}?collection=wide", f"{tight}:///{tmp_path / 'b'}", checkpoint=False)


def test_metadata_is_measured_as_the_target_stores_it(short_tmp):
    pytest.importorskip("pymilvus")
    records = [Record("a", np.ones(DIM, np.float32), {}, None),
               Record("b", np.ones(DIM, np.float32), {"k": "v" * 65_520}, None)]
    src = faiss_source(str(short_tmp / "src"), records)
    db = short_tmp / "m.db"
    with pytest.raises(MigrationError, match="record 'b' cannot be written"):
        vecbridge.migrate(src.collection_url, f"milvus:///{db}", checkpoint=False, batch_size=1)
    assert _native_count(db, "docs") in (None, 0), "refused half-way: record 'a' was written"
