"""Every ordered pair of the embedded backends copies a collection losslessly.

Ids (odd ones included), float32 vectors, metadata with exact types (int, float,
bool, str, lists, empty lists, keys with dots/spaces/quotes) and documents
(``None`` and ``""`` included) must arrive unchanged.  The expected records are the
ones generated here, not what the source backend returns.
"""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Callable

import pytest
from migrate_helpers import assert_holds, fill, make_records

import vecbridge
from vecbridge.registry import get_backend

# backend -> the URL of its embedded form in a folder (absolute paths: scheme:////abs)
EMBEDDED: dict[str, Callable[[str], str]] = {
    "chroma": lambda d: f"chroma:///{d}/chroma",
    "milvus": lambda d: f"milvus:///{d}/milvus.db",
    "qdrant": lambda d: f"qdrant:///{d}/qdrant",
    "faiss": lambda d: f"faiss:///{d}/faiss",
    "pgvector": lambda d: "",  # the session's one embedded PostgreSQL (slow to start), see pg_folder
}
PAIRS = list(itertools.product(EMBEDDED, repeat=2))
DIM = 8
N = 60


def _require(backend: str) -> None:
    """Skip while the backend is not written yet (its module or its client class is missing)."""
    if importlib.util.find_spec(f"vecbridge.backends.{backend}") is None:
        pytest.skip(f"the {backend} backend is not written yet")
    try:
        get_backend(backend)
    except AttributeError:
        pytest.skip(f"the {backend} backend is not complete yet (no client class)")


def _url(backend: str, folder: str, pg_folder: str) -> str:
    return f"pgvector:///{pg_folder}" if backend == "pgvector" else EMBEDDED[backend](folder)


@pytest.mark.parametrize("src_backend, dst_backend", PAIRS, ids=[f"{a}-to-{b}" for a, b in PAIRS])
def test_pair_copies_losslessly(src_backend, dst_backend, tmp_path, pg_folder):
    _require(src_backend)
    _require(dst_backend)
    records = make_records(N, DIM, seed=hash((src_backend, dst_backend)) % 1000)
    src_url = _url(src_backend, str(tmp_path / "src"), pg_folder)
    dst_url = _url(dst_backend, str(tmp_path / "dst"), pg_folder)
    src_name, dst_name = f"src_{src_backend}_{dst_backend}", f"dst_{src_backend}_{dst_backend}"
    with vecbridge.connect(src_url) as client:
        fill(client.create_collection(src_name, DIM, "cosine"), records)
    report = vecbridge.migrate(f"{src_url}?collection={src_name}", f"{dst_url}?collection={dst_name}",
                               batch_size=16, verify="full", checkpoint=False)
    assert report.records_copied == N and report.verification is not None
    assert report.verification.ok, report.verification.mismatches[:5]
    assert report.verification.checked == N
    with vecbridge.connect(dst_url) as client:
        coll = client.get_collection(dst_name)
        assert (coll.dimension, coll.metric) == (DIM, "cosine")
        assert_holds(coll, records)
    if "pgvector" in (src_backend, dst_backend):  # the shared database: leave it clean for the next pair
        for url, name in ((src_url, src_name), (dst_url, dst_name)):
            if url.startswith("pgvector"):
                with vecbridge.connect(url) as client:
                    client.delete_collection(name)


@pytest.mark.parametrize("backend", list(EMBEDDED))
def test_copy_within_one_database(backend, tmp_path, pg_folder):
    """Source and target in the same folder share one client (Qdrant's local mode locks its folder)."""
    _require(backend)
    records = make_records(40, DIM, seed=3)
    url = _url(backend, str(tmp_path), pg_folder)
    with vecbridge.connect(url) as client:
        fill(client.create_collection(f"one_{backend}", DIM, "l2"), records)
    report = vecbridge.migrate(f"{url}?collection=one_{backend}", f"{url}?collection=two_{backend}", batch_size=7,
                               verify="full", checkpoint=False)
    assert report.verification.ok and report.verification.checked == 40
    with vecbridge.connect(url) as client:
        assert_holds(client.get_collection(f"two_{backend}"), records)
        assert_holds(client.get_collection(f"one_{backend}"), records)  # the source is only read
        if backend == "pgvector":
            client.delete_collection(f"one_{backend}")
            client.delete_collection(f"two_{backend}")
