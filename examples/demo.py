"""The main job on embedded stores: build a collection in one backend, migrate it to
another, verify the copy, and answer the same filtered query on both.

Run: python examples/demo.py [SOURCE_URL TARGET_URL]
(default: a FAISS folder and a Qdrant local-mode folder under ./.vecbridge-demo)
"""

from __future__ import annotations

import shutil
import sys

import numpy as np

import vecbridge

ROOT = ".vecbridge-demo"


def build(url: str) -> vecbridge.Collection:
    client = vecbridge.connect(url)
    if "songs" in client.list_collections():
        client.delete_collection("songs")
    songs = client.create_collection("songs", dimension=32, metric="cosine")
    rng = np.random.default_rng(42)
    genres = ["jazz", "rock", "folk", "pop"]
    n = 1000
    songs.add(
        ids=[f"song-{i}" for i in range(n)],
        vectors=rng.normal(size=(n, 32)).astype(np.float32),
        metadatas=[{"genre": genres[i % 4], "year": 1960 + i % 60, "tags": ["live"] if i % 5 == 0 else []}
                   for i in range(n)],
        documents=[f"Song number {i}" for i in range(n)],
    )
    return songs


def show(title: str, hits: list[vecbridge.Hit]) -> None:
    print(title)
    for h in hits:
        print(f"  {h.id:<10} score={h.score:+.4f} distance={h.distance:.4f} {h.metadata} {h.document!r}")


def main() -> int:
    shutil.rmtree(ROOT, ignore_errors=True)
    source = sys.argv[1] if len(sys.argv) > 1 else f"faiss:///{ROOT}/faiss"
    target = sys.argv[2] if len(sys.argv) > 2 else f"qdrant:///{ROOT}/qdrant"
    songs = build(source)
    print(f"1. built {songs!r}: {songs.count()} records")

    report = vecbridge.migrate(f"{source}?collection=songs", target, verify="full")
    print(f"2. migrated to {target}: {report.records_copied} records in {report.seconds:.2f} s "
          f"({report.records_per_second:,.0f} records/s)")
    v = report.verification
    print(f"3. verified ({v.mode}): {v.checked} records compared, {len(v.mismatches)} differences")

    query = np.random.default_rng(7).normal(size=32)
    where = {"genre": "jazz", "year": {"$gte": 1990}, "tags": {"$contains": "live"}}
    copy = vecbridge.open_collection(f"{target}?collection=songs")
    a = songs.query(query, k=5, where=where)
    b = copy.query(query, k=5, where=where)
    show(f"4. top 5 for {where} on {source}:", a)
    show(f"   the same query on {target}:", b)
    same = [h.id for h in a] == [h.id for h in b] and all(
        abs(x.score - y.score) < 1e-5 and x.metadata == y.metadata and x.document == y.document for x, y in zip(a, b))
    print("5. identical answers" if same else "5. THE ANSWERS DIFFER")
    copy.close()
    return 0 if same and v.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
