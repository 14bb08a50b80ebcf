"""The plan's layouts: ``layout=`` / ``--layout`` for the target, a framework layout's encode
counted before any write, a Qdrant collection made by qdrant-client as the source, and the
verification of a framework target against what its layout makes of the source (issue 12
items 4 and 5, issue 17).

Expected counts come from the records this test writes; what a framework target holds is
written out by hand here (a LlamaIndex node as JSON with its own key order and spacing).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

import vecbridge
from vecbridge.cli import main
from vecbridge.errors import MigrationError
from vecbridge.layouts import NODE_KEYS
from vecbridge.migrate.verify import expectation, verify_collections

N = 12
DIM = 4
RNG = np.random.default_rng(3)
VECS = RNG.normal(size=(N, DIM)).astype(np.float32)
WITH_NODE = [i for i in range(N) if i % 3 == 0]  # records that carry a LlamaIndex node


def _node_meta(i: int) -> dict[str, Any]:
    """Record i's metadata: its own keys, and for WITH_NODE a stale LlamaIndex node beside them."""
    meta: dict[str, Any] = {"author": f"a{i}", "n": i}
    if i in WITH_NODE:
        node = {"id_": "stale", "metadata": {"old": True}, "text": "old text", "class_name": "TextNode",
                "relationships": {"1": {"node_id": f"doc{i}", "node_type": "4", "metadata": {}, "hash": None,
                                        "class_name": "RelatedNodeInfo"}},
                "embedding": None, "excluded_llm_metadata_keys": ["n"]}
        meta.update({"_node_content": json.dumps(node), "_node_type": "TextNode", "document_id": f"doc{i}",
                     "doc_id": f"doc{i}", "ref_doc_id": f"doc{i}"})
    return meta


def _faiss(folder: str, name: str, metas: list[dict[str, Any]], docs: list[str | None],
           ids: list[str] | None = None) -> Any:
    client = vecbridge.connect(f"faiss:///{folder}")
    coll = client.create_collection(name, DIM, "l2")
    coll.upsert(ids or [f"r{i}" for i in range(len(metas))], VECS[:len(metas)], metas, docs)
    return client, coll


def _names(url: str) -> list[str]:
    with vecbridge.connect(url) as client:
        return list(client.list_collections())


@pytest.fixture
def source(tmp_path: Any) -> Any:
    client, _ = _faiss(f"{tmp_path}/f", "nodes", [_node_meta(i) for i in range(N)], [f"text {i}" for i in range(N)])
    client.close()
    return f"faiss:///{tmp_path}/f?collection=nodes"


# -- layout= -----------------------------------------------------------------------------
def test_a_layout_the_target_backend_cannot_make_is_refused_before_anything_exists(source: str, tmp_path: Any
                                                                                   ) -> None:
    folder = f"faiss:///{tmp_path}/t"
    with pytest.raises(MigrationError, match="langchain.*not known on the faiss backend"):
        vecbridge.migrate(source, f"{folder}?collection=copy", layout="langchain", checkpoint=False)
    with pytest.raises(MigrationError, match="llamaindex.*not known on the faiss backend"):
        vecbridge.migrate(source, f"{folder}?collection=copy&layout=llamaindex", checkpoint=False)
    assert _names(folder) == []
    with pytest.raises(MigrationError, match="layout must be one of"):
        vecbridge.migrate(source, f"{folder}?collection=copy", layout="haystack", checkpoint=False)


def test_a_layout_in_the_url_must_agree(source: str, tmp_path: Any, capsys: Any) -> None:
    target = f"qdrant:///{tmp_path}/q?collection=copy&layout=native"
    with pytest.raises(MigrationError, match="the target URL says layout=native but the layout asked for is "
                                             "'vecbridge'"):
        vecbridge.migrate(source, target, layout="vecbridge", checkpoint=False)
    assert main(["migrate", "--quiet", "--layout", "vecbridge", source, target]) == 2
    assert "layout=native" in capsys.readouterr().err
    assert _names(f"qdrant:///{tmp_path}/q") == []


def test_layout_native_creates_the_target_in_its_own_schema(tmp_path: Any) -> None:
    metas = [{"k": i, "tag": f"t{i % 2}"} for i in range(N)]
    client, _ = _faiss(f"{tmp_path}/f", "plain", metas, [f"d{i}" for i in range(N)], [str(i) for i in range(N)])
    client.close()
    folder = f"{tmp_path}/q"
    report = vecbridge.migrate(f"faiss:///{tmp_path}/f?collection=plain", f"qdrant:///{folder}?collection=copy",
                               layout="native", verify="full", checkpoint=False)
    assert report.ok and report.plan.target_layout == "native"  # type: ignore[union-attr]
    assert "layout:     source vecbridge, target native" in str(report)
    native = QdrantClient(path=folder)
    try:
        points, _ = native.scroll("copy", limit=100, with_payload=True)
        # the points under the source's ids, the metadata as plain payload keys
        assert {p.id: {k: p.payload[k] for k in ("k", "tag")} for p in points} == \
            {i: metas[i] for i in range(N)}
        assert not [key for p in points for key in p.payload if key.startswith("_vb")]
    finally:
        native.close()


# -- a framework target's encode, counted ------------------------------------------------
def test_the_plan_counts_what_a_framework_layout_converts(source: str, tmp_path: Any, capsys: Any) -> None:
    target = f"qdrant:///{tmp_path}/q?collection=copy"
    report = vecbridge.migrate(source, target, layout="langchain", dry_run=True)
    plan = report.plan
    assert plan is not None and not plan.problems and plan.target_layout == "langchain"
    assert plan.write_conversions == {"LlamaIndex node keys left out (LangChain keeps no relationships)":
                                      len(WITH_NODE)}
    report = vecbridge.migrate(source, target, layout="llamaindex", dry_run=True)
    plan = report.plan
    assert plan is not None and not plan.problems
    assert plan.write_conversions == {"LlamaIndex nodes made for records that had none (no relationships)":
                                      N - len(WITH_NODE)}
    assert any("plain TextNodes" in loss for loss in plan.losses)
    report = vecbridge.migrate(source, target, layout="llamaindex", dry_run=True, strict=True)
    assert any(p.startswith("--strict") and f"{N - len(WITH_NODE):,} LlamaIndex nodes made" in p
               for p in report.plan.problems)  # type: ignore[union-attr]
    assert main(["migrate", "--dry-run", "--layout", "langchain", source, target]) == 0
    out = capsys.readouterr().out
    assert "layout:     source vecbridge, target langchain" in out
    assert f"converted:  {len(WITH_NODE):,} LlamaIndex node keys left out" in out
    assert _names(f"qdrant:///{tmp_path}/q") == []


# -- a Qdrant collection made by qdrant-client -------------------------------------------
def _qdrant_source(folder: str) -> dict[int, dict[str, Any]]:
    payloads = {i: {"text": f"doc {i}", "info": {"lang": ["en", "de"][i % 2], "stats": {"n": i, "gone": None}},
                    "none": None if i % 2 else "v"} for i in range(N)}
    native = QdrantClient(path=folder)
    try:
        native.create_collection("made", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.EUCLID))
        native.upsert("made", [models.PointStruct(id=i, vector=VECS[i].tolist(), payload=payloads[i])
                               for i in range(N)], wait=True)
    finally:
        native.close()
    return payloads


def _flat(payload: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in payload.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif v is not None:
            out[f"{prefix}{k}"] = v
    return out


def test_a_qdrant_collection_made_by_qdrant_client_into_faiss(tmp_path: Any) -> None:
    folder = f"{tmp_path}/q"
    payloads = _qdrant_source(folder)
    source, target = f"qdrant:///{folder}?collection=made", f"faiss:///{tmp_path}/t?collection=copy"
    report = vecbridge.migrate(source, target, dry_run=True)
    plan = report.plan
    assert plan is not None and plan.source_layout == "native" and plan.scanned
    assert any(line.startswith("document: text") for line in plan.mapping)
    assert any(line.startswith("id:") for line in plan.mapping)
    # counted from the payloads written: two nested objects per point (info, info.stats), a null in
    # each (stats.gone) and one more in every odd point ("none")
    counts = {"nested objects as dotted keys": 2 * N, "null values left out": N + N // 2}
    if plan.reads_counted:  # the backend counts its reads: the plan lists each with its count
        assert plan.read_conversions == counts
    else:  # it does not: the plan says so rather than listing nothing
        assert plan.read_conversions == {} and any("does not count the conversions" in n for n in plan.notes)
        assert "converted:  nothing" not in "\n".join(plan.describe())
    with pytest.raises(MigrationError, match="--strict"):  # refused either way, before the target exists
        vecbridge.migrate(source, target, strict=True, checkpoint=False)
    assert _names(f"faiss:///{tmp_path}/t") == []
    report = vecbridge.migrate(source, target, verify="full", checkpoint=False)
    assert report.ok and report.verification.checked == N  # type: ignore[union-attr]
    with vecbridge.open_collection(target) as copy:
        got = {r.id: r for r in copy.get(ids=[str(i) for i in range(N)], include=["metadata", "document"])}
    assert {k: (r.metadata, r.document) for k, r in got.items()} == \
        {str(i): (_flat({k: v for k, v in p.items() if k != "text"}), p["text"]) for i, p in payloads.items()}


# -- verification of a framework target --------------------------------------------------
def _llamaindex_target(i: int) -> tuple[dict[str, Any], str]:
    """What a LlamaIndex Qdrant store holds for record i after the copy, written out by hand: the
    node's id, text and metadata refreshed (the rest of the node kept), serialised differently."""
    own = {"author": f"a{i}", "n": i}
    if i in WITH_NODE:
        node = {**json.loads(_node_meta(i)["_node_content"]), "id_": f"r{i}", "metadata": own, "text": f"text {i}"}
        ref, kind = f"doc{i}", "TextNode"
    else:
        node = {"id_": f"r{i}", "embedding": None, "excluded_embed_metadata_keys": [], "excluded_llm_metadata_keys": [],
                "relationships": {}, "metadata_template": "{key}: {value}", "metadata_separator": "\n",
                "mimetype": "text/plain", "start_char_idx": None, "end_char_idx": None,
                "text_template": "{metadata_str}\n\n{content}", "class_name": "TextNode", "metadata": own,
                "text": f"text {i}"}
        ref, kind = "None", "TextNode"
    text = json.dumps(node, sort_keys=True, indent=1)
    return {**own, "_node_content": text, "_node_type": kind, "document_id": ref, "doc_id": ref,
            "ref_doc_id": ref}, f"text {i}"


def test_verification_compares_a_framework_target_with_what_its_layout_carries(source: str, tmp_path: Any) -> None:
    src_client = vecbridge.connect(source.split("?")[0])
    src = src_client.get_collection("nodes")
    held = [_llamaindex_target(i) for i in range(N)]
    held_by, llama = _faiss(f"{tmp_path}/t", "as_llamaindex", [m for m, _ in held], [d for _, d in held])
    lang = held_by.create_collection("as_langchain", DIM, "l2")
    lang.upsert([f"r{i}" for i in range(N)], VECS, [{"author": f"a{i}", "n": i} for i in range(N)],
                [f"text {i}" for i in range(N)])
    try:
        for mode in ("sample", "full"):
            assert verify_collections(src, llama, mode, expect=expectation("llamaindex", "qdrant")).ok
            assert verify_collections(src, lang, mode, expect=expectation("langchain", "qdrant")).ok
        plain = verify_collections(src, llama, "full")  # without the layout: every refreshed node differs
        assert plain.mismatch_count == N
        # a value the layout does not change is still compared
        lang.upsert(["r5"], VECS[5:6], [{"author": "someone else", "n": 5}], ["text 5"])
        result = verify_collections(src, lang, "full", expect=expectation("langchain", "qdrant"))
        assert not result.ok and [(m.id, m.field) for m in result.mismatches] == [("r5", "metadata")]
        assert "'author'" in result.mismatches[0].detail and not set(NODE_KEYS) & set(result.mismatches[0].detail)
    finally:
        src_client.close()
        held_by.close()


def test_a_cosine_target_outside_vecbridges_layout_is_compared_by_direction(tmp_path: Any) -> None:
    """Qdrant keeps a native collection's cosine vectors normalised: the same directions are no difference."""
    client = vecbridge.connect(f"faiss:///{tmp_path}/f")
    try:
        src = client.create_collection("raw", DIM, "cosine")
        unit = client.create_collection("unit", DIM, "cosine")
        ids = [f"r{i}" for i in range(N)]
        src.upsert(ids, VECS, [{"n": i} for i in range(N)], [None] * N)
        unit.upsert(ids, VECS / np.linalg.norm(VECS, axis=1, keepdims=True), [{"n": i} for i in range(N)], [None] * N)
        assert verify_collections(src, unit, "full", expect=expectation("native", "qdrant", "cosine")).ok
        assert verify_collections(src, unit, "full").mismatch_count == N  # exactly as read: they differ
        assert not verify_collections(src, unit, "full", expect=expectation("native", "qdrant", "l2")).ok
        turned = VECS.copy()
        turned[4] = -turned[4]  # another direction is a difference
        unit.upsert(["r4"], turned[4:5], [{"n": 4}], [None])
        result = verify_collections(src, unit, "full", expect=expectation("native", "qdrant", "cosine"))
        assert [(m.id, m.field) for m in result.mismatches] == [("r4", "vector")]
    finally:
        client.close()


def test_a_nodes_metadata_kept_nested_by_the_target_is_no_difference(tmp_path: Any) -> None:
    """A LlamaIndex target may keep a node's metadata nested as the application wrote it while the
    record's keys are dotted (the contract's rule): the same values."""
    stale = {"id_": "x", "metadata": {}, "text": "", "class_name": "TextNode", "embedding": None,
             "relationships": {"1": {"node_id": "d1", "node_type": "4", "metadata": {}, "hash": None,
                                     "class_name": "RelatedNodeInfo"}}}
    keys = {"_node_type": "TextNode", "document_id": "d1", "doc_id": "d1", "ref_doc_id": "d1"}
    own = {"author": "a", "about.n": 1, "about.tags": ["x"]}
    held = {**stale, "id_": "r0", "text": "the text", "metadata": {"author": "a", "about": {"n": 1, "tags": ["x"]}}}
    client = vecbridge.connect(f"faiss:///{tmp_path}/f")
    try:
        src = client.create_collection("src", DIM, "l2")
        src.upsert(["r0"], VECS[:1], [{**own, **keys, "_node_content": json.dumps(stale)}], ["the text"])
        tgt = client.create_collection("tgt", DIM, "l2")
        tgt.upsert(["r0"], VECS[:1], [{**own, **keys, "_node_content": json.dumps(held)}], ["the text"])
        assert verify_collections(src, tgt, "full", expect=expectation("llamaindex", "qdrant")).ok
        held["metadata"]["about"]["n"] = 2  # a value that differs inside the node is a difference
        tgt.upsert(["r0"], VECS[:1], [{**own, **keys, "_node_content": json.dumps(held)}], ["the text"])
        result = verify_collections(src, tgt, "full", expect=expectation("llamaindex", "qdrant"))
        assert [(m.id, m.field) for m in result.mismatches] == [("r0", "metadata")]
    finally:
        client.close()
