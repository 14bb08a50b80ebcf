"""A migration killed with SIGKILL, twice, resumes with --resume to an exact copy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from migrate_helpers import assert_holds, faiss_source, make_records

import vecbridge

pytest.importorskip("faiss")

N = 6000


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "vecbridge", "migrate", *args]


def _position(cp: Path) -> int:
    try:
        return int(json.loads(cp.read_text())["position"])
    except (FileNotFoundError, ValueError, KeyError):
        return 0  # not written yet (a replace is atomic: a file that exists is whole)


def _run_and_kill(argv: list[str], cp: Path, cwd: Path, at_least: int) -> int:
    """Start the command, SIGKILL it once the checkpoint counts ``at_least`` records; the position then."""
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    try:
        while _position(cp) < at_least:
            if proc.poll() is not None:
                _, err = proc.communicate()
                pytest.fail(f"the migration ended (code {proc.returncode}) before it could be killed: {err!r}")
            if time.monotonic() > deadline:
                pytest.fail("no progress in the checkpoint")
            time.sleep(0.002)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    return _position(cp)


def test_sigkilled_migration_resumes_to_an_exact_copy(tmp_path):
    records = make_records(N, 32, seed=7)
    src = faiss_source(str(tmp_path / "src"), records)
    target = "faiss:///" + str(tmp_path / "dst")
    cp = tmp_path / "state.json"
    argv = _cli(src.collection_url, target, "--batch-size", "10", "--checkpoint", str(cp), "--verify", "full",
                "--json", "--quiet")

    first = _run_and_kill(argv, cp, tmp_path, 500)
    assert 500 <= first < N
    with vecbridge.connect(target) as client:
        assert client.get_collection("docs").count() >= first, "the checkpoint never runs ahead of the target"

    again = subprocess.run(argv, cwd=tmp_path, check=False, capture_output=True, text=True)
    assert again.returncode == 2 and "--resume" in again.stderr and "--restart" in again.stderr

    second = _run_and_kill(argv + ["--resume"], cp, tmp_path, first + 500)
    assert first + 500 <= second < N

    done = subprocess.run(argv + ["--resume"], cwd=tmp_path, check=False, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["resumed"]
    assert report["records_skipped"] == second and report["records_copied"] == N - second
    assert report["verification"]["mode"] == "full" and report["verification"]["checked"] == N
    assert not cp.exists(), "the state is removed once the run has finished and verified"
    with vecbridge.connect(target) as client:
        assert_holds(client.get_collection("docs"), records)
