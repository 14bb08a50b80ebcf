"""The ``vecbridge`` command: exit codes, one-line errors, --json, --dry-run, secrets, interrupts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import vecbridge
from vecbridge.cli import main

pytest.importorskip("faiss")

SECRET = "hunter2"


@pytest.fixture(autouse=True)
def _cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # default checkpoints go to .vecbridge/ here


def _make(root: Path, name: str = "docs", n: int = 50, dim: int = 4, metric: str = "cosine") -> str:
    """A FAISS folder holding one collection of ``n`` records; its collection URL."""
    url = f"faiss:///{root}"
    rng = np.random.default_rng(1)
    with vecbridge.connect(url) as client:
        coll = client.create_collection(name, dim, metric, index={"type": "flat"})
        for k in range(0, n, 1000):
            m = min(1000, n - k)
            coll.upsert([f"id-{k + i}" for i in range(m)], rng.normal(size=(m, dim)),
                        [{"n": k + i, "even": (k + i) % 2 == 0} for i in range(m)],
                        [None if i % 4 == 0 else f"doc {k + i}" for i in range(m)])
    return f"{url}?collection={name}"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("vecbridge: error: "), err
    assert "Traceback" not in err
    return lines[-1]


# -- help and usage -----------------------------------------------------------------------------
def test_help_has_examples_and_exit_codes(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0
    assert "examples:" in out and "exit codes:" in out and "130" in out
    for command in ("migrate", "ls", "info", "verify"):
        assert command in out
    with pytest.raises(SystemExit):
        main(["migrate", "--help"])
    out = capsys.readouterr().out
    for flag in ("--resume", "--restart", "--dry-run", "--verify", "--batch-size", "--into-existing", "--json",
                 "--quiet", "--checkpoint", "exit codes:"):
        assert flag in out


def test_usage_errors_exit_2(capsys):
    for argv in (["migrate", "faiss://"], ["frobnicate"], ["migrate", "a", "b", "--resume", "--restart"],
                 ["migrate", "a", "b", "--batch-size", "0"], ["migrate", "a", "b", "--verify", "most"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2, argv
        assert "error:" in capsys.readouterr().err


def test_module_and_console_script_run(tmp_path):
    done = subprocess.run([sys.executable, "-m", "vecbridge", "--version"], check=False, capture_output=True,
                          text=True)
    assert done.returncode == 0 and done.stdout.startswith("vecbridge ")
    script = Path(sys.executable).with_name("vecbridge")
    if script.exists():
        done = subprocess.run([str(script), "ls", "nope://x"], check=False, capture_output=True, text=True)
        assert done.returncode == 2 and done.stderr.startswith("vecbridge: error: no backend for the scheme")


# -- errors: one line, the right code ---------------------------------------------------------------
def test_bad_url(capsys):
    code, _, err = _run(capsys, "ls", "not a url")
    assert code == 2 and "is not a backend URL" in _one_error_line(err)
    code, _, err = _run(capsys, "migrate", "nosuch:///x?collection=a", "faiss://")
    assert code == 2 and "no backend for the scheme 'nosuch'" in _one_error_line(err)
    code, _, err = _run(capsys, "info", "faiss:///x")
    assert code == 2 and "names no collection" in _one_error_line(err)


def test_missing_collection(tmp_path, capsys):
    src = _make(tmp_path / "a")
    missing = src.replace("collection=docs", "collection=nope")
    code, _, err = _run(capsys, "info", missing)
    assert code == 2 and "no collection named 'nope'" in _one_error_line(err)
    code, _, err = _run(capsys, "migrate", missing, f"faiss:///{tmp_path / 'b'}")
    assert code == 2 and "no collection named 'nope'" in _one_error_line(err)
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


def test_dimension_clash(tmp_path, capsys):
    src = _make(tmp_path / "a", dim=4)
    _make(tmp_path / "b", dim=8, n=0)
    code, _, err = _run(capsys, "migrate", src, f"faiss:///{tmp_path / 'b'}")
    line = _one_error_line(err)
    assert code == 2 and "dimension 8, the source's is 4" in line
    with vecbridge.connect(f"faiss:///{tmp_path / 'b'}") as client:
        assert client.get_collection("docs").count() == 0


def test_runtime_error_exit_3(tmp_path, capsys):
    src = _make(tmp_path / "a")
    (tmp_path / "a" / "docs" / "records.sqlite").write_bytes(b"this is not a database" * 100)
    code, _, err = _run(capsys, "info", src)
    assert code == 3 and "faiss" in _one_error_line(err)
    code, _, err = _run(capsys, "info", src, "--debug")
    assert code == 3 and "Traceback" in err


def test_secrets_are_never_printed(tmp_path, capsys):
    src = _make(tmp_path / "a")
    for argv in (["ls", f"faiss:///{tmp_path}?password={SECRET}"],
                 ["info", f"faiss://user:{SECRET}@host/x?collection=docs"],
                 ["migrate", src, f"faiss:///{tmp_path / 'b'}?api_key={SECRET}", "--json"],
                 ["migrate", f"{src}&token={SECRET}", f"faiss:///{tmp_path / 'b'}"],
                 ["verify", src, f"pgvector://app:{SECRET}@127.0.0.1:1/db", "--json"]):
        code, out, err = _run(capsys, *argv)
        assert code in (2, 3), argv
        assert SECRET not in out + err, argv
        assert "***" in out + err, argv
    for path in tmp_path.rglob("*.json"):
        assert SECRET not in path.read_text()


# -- commands ---------------------------------------------------------------------------------
def test_ls_and_info(tmp_path, capsys):
    _make(tmp_path / "a", name="docs", n=30)
    _make(tmp_path / "a", name="other", n=5, dim=3, metric="l2")
    code, out, _ = _run(capsys, "ls", f"faiss:///{tmp_path / 'a'}")
    assert code == 0 and "docs" in out and "other" in out and "METRIC" in out
    code, out, _ = _run(capsys, "ls", f"faiss:///{tmp_path / 'a'}", "--json")
    data = json.loads(out)
    assert code == 0 and [(c["name"], c["count"], c["dimension"], c["metric"]) for c in data["collections"]] == [
        ("docs", 30, 4, "cosine"), ("other", 5, 3, "l2")]
    code, out, _ = _run(capsys, "info", f"faiss:///{tmp_path / 'a'}?collection=other", "--json")
    assert code == 0 and json.loads(out)["count"] == 5 and json.loads(out)["metric"] == "l2"
    code, out, _ = _run(capsys, "info", f"faiss:///{tmp_path / 'a'}?collection=other")
    assert "records:    5" in out and "dimension:  3" in out


def test_info_shows_configuration_and_capabilities(tmp_path, capsys):
    _make(tmp_path / "a", name="docs", n=3, dim=4, metric="l2")
    url = f"faiss:///{tmp_path / 'a'}?collection=docs"
    code, out, _ = _run(capsys, "info", url, "--json")
    data = json.loads(out)
    assert code == 0
    assert data["config"] == {"dimension": 4, "metric": "l2", "index": {"type": "flat"}, "layout": "vecbridge"}
    caps = data["capabilities"]
    assert set(caps["metrics"]) == {"cosine", "l2", "ip"} and "flat" in caps["index_types"]
    assert caps["persistent"] is True and caps["max_id_bytes"] == 256
    code, out, _ = _run(capsys, "info", url)
    assert code == 0 and "config:\n" in out and '  metric: "l2"' in out and '  index: {"type": "flat"}' in out
    assert "capabilities:\n" in out and "  metrics: cosine, l2, ip" in out and "  max_id_bytes: 256" in out
    assert "  max_dimension: no limit" in out and "  persistent: true" in out


def test_help_names_no_backend_but_lists_the_registered_schemes(capsys):
    """The help's examples are generic; the schemes come from the registry, third-party ones too."""
    vecbridge.register_backend("thirdparty", "nowhere.module:Client")
    texts = []
    for argv in (["--help"], *([c, "--help"] for c in ("migrate", "ls", "info", "verify"))):
        with pytest.raises(SystemExit):
            main(argv)
        texts.append(capsys.readouterr().out)
    assert "schemes: " in texts[0] and "thirdparty" in texts[0].split("schemes: ")[1].splitlines()[0]
    for text in texts:
        body = text.split("schemes: ")[0]
        for name in ("chroma", "milvus", "qdrant", "pgvector", "faiss"):
            assert name not in body.lower(), (name, text)


def test_migrate_json_and_quiet(tmp_path, capsys):
    src = _make(tmp_path / "a", n=120)
    code, out, err = _run(capsys, "migrate", src, f"faiss:///{tmp_path / 'b'}", "--json", "--quiet", "--verify", "full")
    report = json.loads(out)
    assert code == 0 and err == ""
    assert report["ok"] and report["records_copied"] == 120 and report["target_collection"] == "docs"
    assert report["verification"]["checked"] == 120 and report["verification"]["mismatches"] == []
    code, out, err = _run(capsys, "migrate", src, f"faiss:///{tmp_path / 'c'}", "--quiet")
    assert code == 0 and out == "" and err == ""
    code, out, err = _run(capsys, "migrate", src, f"faiss:///{tmp_path / 'd'}?collection=renamed")
    assert code == 0 and "copied 120 records" in out and "'renamed'" in out and "verification (sample): ok" in out


def test_migrate_refusal_with_json(tmp_path, capsys):
    src = _make(tmp_path / "a", n=10)
    _run(capsys, "migrate", src, f"faiss:///{tmp_path / 'b'}", "-q")
    code, out, _ = _run(capsys, "migrate", src, f"faiss:///{tmp_path / 'b'}", "--json")
    data = json.loads(out)
    assert code == 2 and data["exit_code"] == 2 and "--into-existing" in data["error"]
    assert data["error_type"] == "MigrationError"
    code, out, _ = _run(capsys, "migrate", src, f"faiss:///{tmp_path / 'b'}", "--into-existing", "--json", "-q")
    assert code == 0 and json.loads(out)["ok"]


def test_dry_run_writes_nothing(tmp_path, capsys):
    src = _make(tmp_path / "a", n=40)
    target = tmp_path / "b"
    code, out, err = _run(capsys, "migrate", src, f"faiss:///{target}", "--dry-run")
    assert code == 0
    assert "action:     create the target collection" in out and "dry run: nothing was written" in out
    assert not any(target.iterdir()) and not Path(".vecbridge").exists()
    code, out, _ = _run(capsys, "migrate", src, f"faiss:///{target}", "--dry-run", "--json", "-q")
    data = json.loads(out)
    assert code == 0 and data["dry_run"] and data["plan"]["source_count"] == 40 and data["records_copied"] == 0
    assert not any(target.iterdir())
    _make(target, dim=9, n=0)
    code, out, err = _run(capsys, "migrate", src, f"faiss:///{target}", "--dry-run")
    assert code == 2 and "PROBLEM:" in out and "dimension 9" in _one_error_line(err)


def test_verify_command(tmp_path, capsys):
    src = _make(tmp_path / "a", n=60)
    target = f"faiss:///{tmp_path / 'b'}"
    _run(capsys, "migrate", src, target, "-q")
    code, out, _ = _run(capsys, "verify", src, target)
    assert code == 0 and "verification (full): ok - 60 records compared" in out
    with vecbridge.connect(target) as client:
        coll = client.get_collection("docs")
        coll.update(["id-3"], metadatas=[{"n": 3.0, "even": False}])
        coll.update(["id-5"], documents=["changed"])
    code, out, _ = _run(capsys, "verify", src, target)
    assert code == 1 and "FAILED - 2 difference(s)" in out and "'id-3': metadata" in out and "'id-5': document" in out
    code, out, _ = _run(capsys, "verify", src, target, "--json", "--mode", "count")
    assert code == 0 and json.loads(out)["ok"]


# -- interrupts -------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupt_exits_130_and_resumes(tmp_path, sig):
    src = _make(tmp_path / "a", n=4000, dim=8)
    cp = tmp_path / "cp.json"
    argv = [sys.executable, "-m", "vecbridge", "migrate", src, f"faiss:///{tmp_path / 'b'}", "--batch-size", "10",
            "--checkpoint", str(cp), "--quiet"]
    proc = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not cp.exists() or json.loads(cp.read_text())["position"] < 100:
        assert proc.poll() is None and time.monotonic() < deadline, "the migration ended too early"
        time.sleep(0.005)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.startswith("vecbridge: interrupted with ") and "--resume" in err and "Traceback" not in err
    resume = [a for a in argv if a not in ("--batch-size", "10")]  # any batch size resumes
    done = subprocess.run(resume + ["--resume", "--json"], cwd=tmp_path, check=False, capture_output=True,
                          text=True)
    report = json.loads(done.stdout)
    assert done.returncode == 0 and report["records_skipped"] > 0
    assert report["records_skipped"] + report["records_copied"] == 4000
