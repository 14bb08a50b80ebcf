"""A Chroma server killed (SIGKILL) and restarted mid-migration loses and doubles no record.

The migration retries the failed batch with backoff, reconnecting to the server, and
continues; the target ends up an exact copy of the source.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import urllib.request
from typing import Any

import engines
import pytest
from migrate_helpers import assert_holds, faiss_source, make_records

import vecbridge

pytest.importorskip("chromadb")


class ChromaProcess:
    """A `chroma run` on a fixed port and folder that can be killed and started again."""

    def __init__(self, folder: str) -> None:
        self.folder, self.port = folder, engines.free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = engines._command("chroma", "chromadb.cli.cli:app") + [
            "run", "--path", self.folder, "--host", "127.0.0.1", "--port", str(self.port)]
        log = open(os.path.join(os.path.dirname(self.folder), "chroma.log"), "ab")
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                     env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/v2/heartbeat", timeout=2).close()
                return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("chroma did not start")

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, 9)
        self.proc.wait()


def test_server_killed_and_restarted_mid_migration(tmp_path: Any) -> None:
    records = make_records(800, 8, seed=3)
    source = faiss_source(str(tmp_path / "src"), records)
    server = ChromaProcess(str(tmp_path / "chroma"))
    server.start()
    retries: list[str] = []
    outcome: dict[str, Any] = {}
    target = f"chroma://127.0.0.1:{server.port}?collection=docs"

    def run() -> None:
        try:
            outcome["report"] = vecbridge.migrate(source.collection_url, target, batch_size=10, verify="full",
                                                  checkpoint=str(tmp_path / "state.json"), retries=8, backoff=0.5,
                                                  on_retry=lambda *a: retries.append(repr(a)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc

    try:
        worker = threading.Thread(target=run)
        worker.start()
        with vecbridge.connect(f"chroma://127.0.0.1:{server.port}") as probe:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # wait until the copy is well under way
                if "docs" in probe.list_collections() and probe.get_collection("docs").count() >= 100:
                    break
                time.sleep(0.05)
        server.kill()
        time.sleep(1.0)
        server.start()
        worker.join(timeout=300)
        assert not worker.is_alive()
        assert "error" not in outcome, outcome.get("error")
        report = outcome["report"]
        assert retries, "the kill must have interrupted the copy"
        assert report.verification.ok and report.verification.checked == len(records)
        with vecbridge.connect(f"chroma://127.0.0.1:{server.port}") as client:
            assert_holds(client.get_collection("docs"), records)
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.kill()
