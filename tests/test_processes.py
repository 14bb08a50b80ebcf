"""Two processes on one embedded folder: one writes, one reads; nothing is lost or corrupted.

Every embedded form (a FAISS folder, a Chroma folder, a Milvus Lite file, a Qdrant local
folder, an embedded PostgreSQL folder) is opened by a writer process and a reader
process at the same time.  Each process either works or fails with a clear
``VecbridgeError`` (never a raw native exception, never "the database failed" for what
is a second process holding the folder).  Afterwards a fresh client sees every record the
writer reported as written, and a filter on the new records finds them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

import vecbridge

WRITER = textwrap.dedent("""
    import json, sys, numpy as np, vecbridge
    url = sys.argv[1]
    out = {"written": [], "error": None}
    try:
        with vecbridge.connect(url) as client:
            coll = client.get_collection("shared")
            rng = np.random.default_rng(1)
            for b in range(5):
                ids = [f"w{b}-{j}" for j in range(20)]
                coll.add(ids, rng.normal(size=(20, 8)), [{"batch": b, "new": True} for _ in ids])
                out["written"].extend(ids)
    except vecbridge.VecbridgeError as exc:
        out["error"] = type(exc).__name__ + ": " + str(exc)
    except BaseException as exc:
        out["error"] = "RAW " + type(exc).__name__ + ": " + str(exc)
    print(json.dumps(out))
""")

READER = textwrap.dedent("""
    import json, sys, time, numpy as np, vecbridge
    url = sys.argv[1]
    out = {"reads": 0, "error": None}
    try:
        with vecbridge.connect(url) as client:
            coll = client.get_collection("shared")
            q = np.ones(8, dtype=np.float32)
            deadline = time.time() + 3.0
            while time.time() < deadline:
                coll.query(q, k=5)
                coll.count()
                out["reads"] += 1
    except vecbridge.VecbridgeError as exc:
        out["error"] = type(exc).__name__ + ": " + str(exc)
    except BaseException as exc:
        out["error"] = "RAW " + type(exc).__name__ + ": " + str(exc)
    print(json.dumps(out))
""")

FORMS = {
    "faiss": "faiss:///{dir}/faiss",
    "chroma": "chroma:///{dir}/chroma",
    "milvus-lite": "milvus:///{dir}/milvus.db",
    "qdrant": "qdrant:///{dir}/qdrant",
    "pgvector-embedded": "pgvector:///{dir}/pg",
}


def _run(script: str, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", script, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _result(proc: subprocess.Popen[str]) -> dict:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def folder():
    """A temporary folder every user can reach: the embedded PostgreSQL runs as its own user, and
    pytest's tmp_path may be made private by another pytest session on the machine."""
    with tempfile.TemporaryDirectory(prefix="vbproc-") as tmp:
        os.chmod(tmp, 0o755)
        yield tmp


@pytest.mark.parametrize("form", sorted(FORMS))
def test_writer_and_reader_processes(form, folder):
    tmp_path = folder
    url = FORMS[form].format(dir=tmp_path)
    rng = np.random.default_rng(0)
    base = rng.normal(size=(100, 8)).astype(np.float32)
    base_ids = [f"b{i}" for i in range(100)]
    try:
        with vecbridge.connect(url) as client:
            client.create_collection("shared", 8, "l2").add(
                base_ids, base, [{"batch": -1} for _ in base_ids])
        reader = _run(READER, url)
        writer = _run(WRITER, url)
        w, r = _result(writer), _result(reader)
        for who, res in (("writer", w), ("reader", r)):
            err = res["error"]
            assert err is None or not err.startswith("RAW "), f"{who} got a raw native exception: {err}"
            if err is not None and err.startswith("BackendError:"):
                # a generic "the database failed" is not clear: say that another process holds it
                assert "another process" in err, f"{who}: {err}"
        with vecbridge.connect(url) as client:
            coll = client.get_collection("shared")
            ids = {rec.id for batch in coll.scan(batch_size=64) for rec in batch}
            assert set(base_ids) <= ids, "records written before both processes started were lost"
            assert set(w["written"]) <= ids, "records the writer reported as written were lost"
            assert coll.count() == len(ids)
            new = {rec.id for rec in coll.get(where={"new": True}, limit=1000)}
            assert new == set(w["written"])
            # every stored record is found by a search (the index agrees with the records)
            found = {h.id for h in coll.query(base[0], k=len(ids) + 5, include=[])}
            assert found == ids
    finally:
        if form == "pgvector-embedded":
            from vecbridge.backends.pgvector import stop_embedded

            stop_embedded(os.path.join(tmp_path, "pg"))
