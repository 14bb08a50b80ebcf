"""Verification never passes on nothing (issue 12 item 5).

A record that a ``sample`` or ``full`` verification set out to compare and could not
read back is a difference, never an "ok"; the result says how many were compared.
Two real backends each time: the sources are made with the engines' own clients or
changed under the verification, the target is FAISS on disk.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from migrate_helpers import fill, make_records

import vecbridge

N = 30


def _qdrant_native(folder: str) -> str:
    """A Qdrant local collection made by qdrant-client, with integer point ids 1..N."""
    qdrant_client = pytest.importorskip("qdrant_client")
    models = qdrant_client.models
    native = qdrant_client.QdrantClient(path=folder)
    try:
        native.create_collection("native", vectors_config=models.VectorParams(size=4, distance=models.Distance.EUCLID))
        rng = np.random.default_rng(0)
        native.upsert("native", points=[models.PointStruct(id=i, vector=rng.normal(size=4).tolist(), payload={"n": i})
                                        for i in range(1, N + 1)])
    finally:
        native.close()
    return f"qdrant:///{folder}?collection=native"


def _honest(result: Any, wanted: int) -> None:
    """``ok`` only when every record it set out to compare was compared; each one that was not is
    a difference named by its id."""
    unread = [m for m in result.mismatches if m.field == "unread"]
    assert result.checked + len(unread) == wanted, (result.checked, len(unread))
    assert result.unread == len(unread)
    assert result.ok == (result.checked == wanted and result.mismatch_count == 0)
    assert f"{result.checked:,} records compared" in result.summary()
    if unread:
        assert not result.ok and "FAILED" in result.summary()
        assert f"{len(unread)} could not be read back" in result.summary()


@pytest.mark.parametrize("mode", ["sample", "full"])
def test_a_source_that_cannot_read_its_ids_back_is_not_ok(tmp_path, mode):
    """Qdrant points with integer ids scan as "1", "2", ...; whether ``get(ids=["1"])`` finds them
    is the Qdrant backend's business (issue 12): the verification must not call 0 compared "ok"."""
    source = _qdrant_native(str(tmp_path / "q"))
    report = vecbridge.migrate(source, f"faiss:///{tmp_path / 'f'}", checkpoint=False, verify=mode)
    assert report.records_copied == N
    _honest(report.verification, N)
    # The verify command draws its own sample by scanning the source.
    result = vecbridge.migrate.verify(source, f"faiss:///{tmp_path / 'f'}", mode="sample", sample_size=10)
    _honest(result, 10)


def test_records_deleted_during_verification_are_differences(tmp_path):
    pytest.importorskip("chromadb")
    records = make_records(N, 8, seed=5)
    client = vecbridge.connect(f"chroma:///{tmp_path / 'c'}")
    try:
        source = client.create_collection("docs", 8, "cosine")
        fill(source, records)
        deleted: list[str] = []

        def progress(phase: str, done: int, total: int | None) -> None:
            if phase == "verify" and not deleted:  # after the first chunk of the sample is compared
                deleted.extend(r.id for r in records[:])
                source.delete(ids=deleted)

        report = vecbridge.migrate(source, f"faiss:///{tmp_path / 'f'}", checkpoint=False, verify="sample",
                                   batch_size=5, progress=progress)
    finally:
        client.close()
    v = report.verification
    assert deleted and v.checked == 5 and v.unread == N - 5
    assert not v.ok and not report.ok
    assert "FAILED" in str(report) and "5 records compared" in str(report) and "25 could not be read back" in str(report)
