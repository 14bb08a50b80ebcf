"""A migration that embeds every document again with another model (``reembed=``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import vecbridge
from vecbridge import cli
from vecbridge.migrate import MigrationError

SENTENCES = [f"{animal} number {i} {verb} the {place}." for i, (animal, verb, place) in enumerate(
    (a, v, p) for a in ("The cat", "A dog", "The bird", "A fish") for v in ("sat on", "ran to")
    for p in ("mat", "park", "river", "house", "garden"))]


@pytest.fixture
def source(tmp_path):
    rng = np.random.default_rng(3)
    url = f"faiss:///{tmp_path}/src?collection=docs"
    with vecbridge.open_collection(url, dimension=16, metric="cosine") as coll:
        coll.add([f"s{i}" for i in range(len(SENTENCES))], rng.normal(size=(len(SENTENCES), 16)),
                 [{"i": i, "animal": s.split()[1]} for i, s in enumerate(SENTENCES)], SENTENCES)
    return url


def test_reembed_into_a_target_of_the_new_dimension(source, tmp_path, model_path, st_model):
    spec = f"sentence-transformers:{model_path}"
    target = f"qdrant:///{tmp_path}/tgt?collection=docs"
    report = vecbridge.migrate(source, target, reembed=spec, verify="full")
    assert report.ok, report.summary()
    assert report.verification.checked == len(SENTENCES)
    assert report.plan.reembed and report.plan.dimension == 384 and report.plan.source_dimension == 16
    want = np.asarray(st_model.encode(SENTENCES, normalize_embeddings=True), dtype=np.float32)
    with vecbridge.open_collection(target) as coll:
        assert coll.dimension == 384
        assert coll.config["embedding"]["dimension"] == 384
        got = {r.id: r for r in coll.get(ids=[f"s{i}" for i in range(len(SENTENCES))], include=["vector", "metadata",
                                                                                             "document"])}
        for i, text in enumerate(SENTENCES):
            rec = got[f"s{i}"]
            np.testing.assert_allclose(rec.vector, want[i], atol=1e-5)
            assert rec.document == text and rec.metadata == {"i": i, "animal": text.split()[1]}
        q = np.asarray(st_model.encode(["a cat on a mat"], normalize_embeddings=True), dtype=np.float32)[0]
        order = [f"s{j}" for j in np.argsort(-(want @ q), kind="stable")[:3]]
        assert [h.id for h in coll.query(text="a cat on a mat", k=3)] == order


def test_records_without_a_document_are_refused_before_any_write(tmp_path, model_path):
    src = f"faiss:///{tmp_path}/src2?collection=docs"
    with vecbridge.open_collection(src, dimension=4) as coll:
        coll.add(["a", "b", "c"], np.eye(4)[:3] + 0.1, documents=["has text", None, None])
    target = f"faiss:///{tmp_path}/tgt2?collection=docs"
    with pytest.raises(MigrationError, match=r"2 records have no document to embed again: 'b', 'c'"):
        vecbridge.migrate(src, target, reembed=f"sentence-transformers:{model_path}")
    with vecbridge.connect(f"faiss:///{tmp_path}/tgt2") as client:
        assert client.list_collections() == []


def test_cli_reembed_and_search(source, tmp_path, model_path, capsys):
    target = f"faiss:///{tmp_path}/tgt3?collection=docs"
    code = cli.main(["migrate", source, target, "--reembed", f"sentence-transformers:{model_path}", "--quiet",
                     "--verify", "full"])
    assert code == 0
    capsys.readouterr()
    assert cli.main(["search", target, "a bird by the river", "-k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["hits"]) == 2 and "bird" in out["hits"][0]["document"]
    assert cli.main(["search", target, "a bird", "-k", "1", "--where", '{"animal": "dog"}']) == 0
    assert "dog" in capsys.readouterr().out
