"""Two processes on one Chroma folder, in lock step: the outcome is right or a clear refusal.

chromadb's embedded engine fills each process's copy of a collection's index once, from
the folder; another process's later writes never reach it.  So a reader process that
keeps its folder open while a writer adds and deletes would answer from a stale index
(deleted records returned, new ones missing, "Error finding id" on a filter that names a
new record).  The processes here take turns through pipes, so what each one has seen and
done is known exactly at every step (no timing involved): at each of many steps the
writer adds and deletes, then the reader queries and reads vectors.  Every answer must
equal numpy's brute force over what is stored; a write that cannot be made safely must be
refused with a ``BackendLockedError`` naming the folder and "another process".
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

import vecbridge

pytest.importorskip("chromadb")

DIM, STEPS, K = 8, 25, 10

# Both children read commands from stdin, one JSON line each, and answer one JSON line.
WRITER = textwrap.dedent("""
    import json, sys, numpy as np, vecbridge
    client = vecbridge.connect(sys.argv[1])
    coll = client.get_collection("shared")
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        step = json.loads(line)["step"]
        rng = np.random.default_rng(step)
        ids = [f"w{step}-{j}" for j in range(10)]
        vecs = rng.normal(size=(10, %(dim)d)).astype(np.float32)
        out = {"added": [], "deleted": [], "error": None}
        try:
            coll.add(ids, vecs, [{"new": True} for _ in ids])
            out["added"] = [[i, v.tolist()] for i, v in zip(ids, vecs)]
            gone = [f"b{step}", ids[0]]
            coll.delete(gone)
            out["deleted"] = gone
        except vecbridge.VecbridgeError as exc:
            out["error"] = type(exc).__name__ + ": " + str(exc)
        print(json.dumps(out), flush=True)
    client.close()
""" % {"dim": DIM})

READER = textwrap.dedent("""
    import json, sys, numpy as np, vecbridge
    out = {"error": None}
    try:
        client = vecbridge.connect(sys.argv[1])
        coll = client.get_collection("shared")
        coll.query(np.ones(%(dim)d), k=1)  # the first read fills this process's index
    except vecbridge.VecbridgeError as exc:
        out["error"] = type(exc).__name__ + ": " + str(exc)
    print(json.dumps({"ready": True, **out}), flush=True)
    for line in sys.stdin:
        q = np.asarray(json.loads(line)["q"], dtype=np.float32)
        ans = {"error": None}
        try:
            ans["all"] = [[h.id, h.distance] for h in coll.query(q, k=%(k)d, include=[])]
            ans["new"] = [[h.id, h.distance] for h in coll.query(q, k=%(k)d, where={"new": True}, include=[])]
            ans["vectors"] = {r.id: r.vector.tolist() for b in coll.scan(batch_size=50, include=["vector"]) for r in b}
        except vecbridge.VecbridgeError as exc:
            ans["error"] = type(exc).__name__ + ": " + str(exc)
        print(json.dumps(ans), flush=True)
""" % {"dim": DIM, "k": K})


class Child:
    def __init__(self, script: str, url: str):
        self.proc = subprocess.Popen([sys.executable, "-c", script, url], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"child died: {self.proc.communicate(timeout=30)[1][-2000:]}"
        return json.loads(line)

    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stderr is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=120)
        err = self.proc.stderr.read()
        assert self.proc.returncode == 0, err[-2000:]


def _brute(stored: dict[str, np.ndarray], q: np.ndarray, ids: list[str]) -> list[tuple[str, float]]:
    if not ids:
        return []
    d = np.linalg.norm(np.stack([stored[i] for i in ids]).astype(np.float64) - q.astype(np.float64), axis=1)
    order = np.argsort(d, kind="stable")[:K]
    return [(ids[j], float(d[j])) for j in order]


def _check(answer: list[list[Any]], expected: list[tuple[str, float]], what: str) -> None:
    assert len(answer) == len(expected), (what, answer, expected)
    np.testing.assert_allclose([d for _, d in answer], [d for _, d in expected], atol=1e-4, err_msg=what)
    assert [i for i, _ in answer] == [i for i, _ in expected], what  # random data: no ties


def _locked(err: str | None, folder: str) -> bool:
    return err is not None and err.startswith("BackendLockedError:") and "another process" in err and folder in err


def _apply(w: dict[str, Any], stored: dict[str, np.ndarray], new: set[str]) -> None:
    assert (w["error"] is None) == bool(w["added"]), w  # all or nothing
    for id_, vec in w["added"]:
        stored[id_] = np.asarray(vec, dtype=np.float32)
        new.add(id_)
    for id_ in w["deleted"]:
        stored.pop(id_, None)
        new.discard(id_)


def _setup(tmp_path: Any) -> tuple[str, str, dict[str, np.ndarray]]:
    folder = str(tmp_path / "chroma")
    url = f"chroma:///{folder}"
    rng = np.random.default_rng(0)
    stored = {f"b{i}": v for i, v in enumerate(rng.normal(size=(60, DIM)).astype(np.float32))}
    with vecbridge.connect(url) as client:
        client.create_collection("shared", DIM, "l2").add(list(stored), np.stack(list(stored.values())))
    return folder, url, stored


def _final(url: str, stored: dict[str, np.ndarray]) -> None:
    with vecbridge.connect(url) as client:  # afterwards a fresh client agrees with what was kept
        coll = client.get_collection("shared")
        assert {r.id: r.vector.tolist() for b in coll.scan() for r in b} == {i: v.tolist() for i, v in stored.items()}


def test_reader_open_while_a_writer_adds_and_deletes(tmp_path: Any) -> None:
    folder, url, stored = _setup(tmp_path)
    new: set[str] = set()
    rng = np.random.default_rng(1)
    reader = Child(READER, url)
    assert reader.read()["error"] is None
    writer = Child(WRITER, url)
    writer.read()
    try:
        for step in range(STEPS):
            w = writer.ask({"step": step})
            if w["error"] is not None:  # a refusal is fine, if it says why
                assert _locked(w["error"], folder), w["error"]
            _apply(w, stored, new)
            q = rng.normal(size=DIM).astype(np.float32)
            r = reader.ask({"q": q.tolist()})
            assert r["error"] is None, f"step {step}: {r['error']}"
            _check(r["all"], _brute(stored, q, list(stored)), f"step {step}: query")
            _check(r["new"], _brute(stored, q, sorted(new)), f"step {step}: query where new")
            assert set(r["vectors"]) == set(stored), f"step {step}: scan"
            for id_, vec in r["vectors"].items():
                np.testing.assert_array_equal(np.asarray(vec, np.float32), stored[id_], err_msg=f"step {step}")
    finally:
        writer.close()
        reader.close()
    _final(url, stored)


def test_reader_cannot_open_a_folder_another_process_writes(tmp_path: Any) -> None:
    folder, url, stored = _setup(tmp_path)
    new: set[str] = set()
    writer = Child(WRITER, url)
    writer.read()
    try:
        w = writer.ask({"step": 0})
        assert w["error"] is None, w["error"]
        _apply(w, stored, new)
        reader = Child(READER, url)
        opened = reader.read()
        # it would never see the writer's next writes: it is told so, and what to do
        assert _locked(opened["error"], folder) and "chroma run" in opened["error"], opened
        reader.close()
        for step in range(1, STEPS):
            w = writer.ask({"step": step})
            assert w["error"] is None, w["error"]
            _apply(w, stored, new)
    finally:
        writer.close()
    _final(url, stored)


def test_reopening_after_another_process_wrote_sees_its_writes(tmp_path: Any) -> None:
    """Closing the last client lets chromadb's engine of the folder go: the next opening reads it afresh."""
    url = f"chroma:///{tmp_path}/chroma"
    with vecbridge.connect(url) as client:
        coll = client.create_collection("shared", DIM, "l2")
        coll.add(["a"], [np.ones(DIM)])
        assert [h.id for h in coll.query(np.ones(DIM), k=5)] == ["a"]
    script = textwrap.dedent(f"""
        import numpy as np, vecbridge
        with vecbridge.connect({url!r}) as c:
            coll = c.get_collection("shared")
            coll.add(["b"], [np.full({DIM}, 2.0)], [{{"new": True}}])
            coll.delete(["a"])
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    with vecbridge.connect(url) as client:
        coll = client.get_collection("shared")
        assert [h.id for h in coll.query(np.ones(DIM), k=5)] == ["b"]
        assert [h.id for h in coll.query(np.ones(DIM), k=5, where={"new": True})] == ["b"]
