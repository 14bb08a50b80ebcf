"""The main job on embedded stores: build a collection, query it with a filter, show the hits.

Run: python examples/demo.py [SOURCE_URL]   (default: a FAISS folder under ./.vecbridge-demo)
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
    n = 2000
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
    url = sys.argv[1] if len(sys.argv) > 1 else f"faiss:///{ROOT}/faiss"
    songs = build(url)
    print(f"built {songs!r}: {songs.count()} records")
    query = np.random.default_rng(7).normal(size=32)
    where = {"genre": "jazz", "year": {"$gte": 1990}, "tags": {"$contains": "live"}}
    show(f"top 5 for {where}:", songs.query(query, k=5, where=where))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
