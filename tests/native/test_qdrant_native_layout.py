"""``layout=native`` creation on Qdrant (issue 12 item 4): the collection a qdrant-client user
would have made, checked with qdrant-client's own reads, then reopened by vecbridge.

Expected values come from the records written here (nested by the test's own rule) and from
qdrant-client; a folder in local mode admits one client, so on disk vecbridge is closed before
qdrant-client opens it, and the other way round.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from qdrant_client import QdrantClient, models

import vecbridge
from vecbridge import errors
from vecbridge.validation import Batch

FORMS = ["memory", "disk"] + (["server"] if os.environ.get("VECBRIDGE_TEST_QDRANT_URL") else [])
RNG = np.random.default_rng(5)
IDS = ["7", "18446744073709551615", str(uuid.UUID(int=3)), str(uuid.uuid4())]
VECS = RNG.normal(size=(4, 8)).astype(np.float32)
METAS: list[dict[str, Any]] = [{"n": 1, "f": 0.5, "ok": True, "tags": ["a", "b"], "info.lang": "en"},
                               {"n": 2, "info.lang": "de", "info.src.page": 4}, {"empty": []}, {}]
DOCS = ["one", None, "three", "four"]


def _nested(meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in meta.items():
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


class Place:
    """Where the collection lives, and how qdrant-client reaches it."""

    def __init__(self, form: str, tmp: Any):
        self.form = form
        self.url = {"memory": "qdrant://", "disk": f"qdrant:///{tmp}/q",
                    "server": os.environ.get("VECBRIDGE_TEST_QDRANT_URL", "")}[form]
        self.path = f"{tmp}/q"
        self.shared: Any = None  # in memory: the vecbridge client whose engine qdrant-client shares

    @contextlib.contextmanager
    def native(self) -> Iterator[QdrantClient]:
        if self.form == "memory":
            yield self.shared._native
        elif self.form == "disk":
            c = QdrantClient(path=self.path)
            try:
                yield c
            finally:
                c.close()
        else:
            c = QdrantClient(url=self.url.replace("qdrant://", "http://", 1))
            try:
                yield c
            finally:
                c.close()

    def connect(self, query: str = "") -> Any:
        if self.form == "memory" and self.shared is not None:
            return _Borrowed(self.shared)
        client = vecbridge.connect(self.url + (("&" if "?" in self.url else "?") + query if query else ""))
        if self.form == "memory":
            self.shared = client
            return _Borrowed(client)
        return client


class _Borrowed:
    """The in-memory client, kept open across ``with`` blocks (memory is private to it)."""

    def __init__(self, client: Any):
        self.c = client

    def __enter__(self) -> Any:
        return self.c

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.fixture(params=FORMS)
def place(request, tmp_path):
    p = Place(request.param, tmp_path)
    yield p
    if p.shared is not None:
        p.shared.close()


def test_native_creation_is_plain_qdrant(place):
    name = f"nat_{uuid.uuid4().hex[:6]}"
    with place.connect("layout=native") as client:
        coll = client.create_collection(name, 8, "cosine")
        coll.add(IDS, VECS, METAS, DOCS)
        assert coll.config["layout"] == "native"
        assert any("normalised" in line for line in coll.mapping.describe())  # what the layout gives up
    with place.native() as nc:
        info = nc.get_collection(name)
        params = info.config.params.vectors
        assert isinstance(params, models.VectorParams) and params.distance == models.Distance.COSINE
        points = {str(p.id): p for p in nc.scroll(name, limit=100, with_payload=True, with_vectors=True)[0]}
        assert set(points) == set(IDS)
        for id_, vec, meta, doc in zip(IDS, VECS, METAS, DOCS):
            want = _nested(meta) | ({"document": doc} if doc is not None else {})
            assert points[id_].payload == want, id_  # plain keys: no type tags, no _vb keys, no vector copy
            # Qdrant's own vector: normalised (server, memory; local mode on disk reads back after a reopen
            # what was written), so its direction is compared; vecbridge must give back Qdrant's
            stored = np.asarray(points[id_].vector, dtype=np.float32)
            np.testing.assert_allclose(stored / np.linalg.norm(stored), vec / np.linalg.norm(vec), rtol=1e-6, atol=1e-6)
        kept = {i: np.asarray(p.vector, dtype=np.float32) for i, p in points.items()}
        assert nc.count(name, count_filter=models.Filter(must=[models.FieldCondition(
            key="info.lang", match=models.MatchValue(value="de"))])).count == 1  # a native user's nested path
    with place.connect() as client:  # no layout in the URL: the collection says it
        coll = client.get_collection(name)
        assert coll.config["layout"] == "native" and coll.mapping.document_field == "document"
        got = {r.id: r for r in coll.get(IDS, include=["metadata", "document", "vector"])}
        for id_, vec, meta, doc in zip(IDS, VECS, METAS, DOCS):
            assert (got[id_].metadata, got[id_].document) == (meta, doc)
            # unit vectors in every form (local mode on disk reads back raw ones after a reopen)
            np.testing.assert_allclose(got[id_].vector, vec / np.linalg.norm(vec), rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(got[id_].vector, kept[id_] / np.linalg.norm(kept[id_]), rtol=1e-6, atol=1e-6)
        assert sorted(r.id for r in coll.get(where={"info.src.page": 4})) == [IDS[1]]
        client.delete_collection(name)


def test_check_batch_refuses_what_a_write_would(place):
    """``_vb_check_batch`` (for the migration's plan) raises what the write raises, and writes nothing."""
    name = f"chk_{uuid.uuid4().hex[:6]}"
    with place.connect("layout=native") as client:
        coll = client.create_collection(name, 2, "l2")
        vec = np.zeros((2, 2), dtype=np.float32)
        good = Batch(["1", str(uuid.UUID(int=9))], vec, [{"a": 1}, {}], ["x", None])
        coll._vb_check_batch(good)
        coll._vb_check_batch(Batch(["2"], None, None, None))  # an update of nothing but ids
        for bad, err, said in ((Batch(["1", "doc-7"], vec, [{}, {}], [None, None]), errors.InvalidRecordError,
                                "'doc-7'"),
                               (Batch(["1", "2"], vec, [{}, {"a": 1, "a.b": 2}], [None, None]),
                                errors.InvalidMetadataError, "'a.b'"),
                               (Batch(["3"], vec[:1], [{"document": "clash"}], [None]), errors.InvalidMetadataError,
                                "document")):
            with pytest.raises(err, match=said):
                coll._vb_check_batch(bad)
            with pytest.raises(err, match=said):  # the write refuses the same, before writing anything
                coll.upsert(bad.ids, bad.vectors, bad.metadatas, bad.documents)
        assert coll.count() == 0
        client.delete_collection(name)
