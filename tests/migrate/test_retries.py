"""What the migration retries: a :class:`BackendUnavailableError`, and nothing else.

The failures come from a small third-party backend, registered as any plugin would be
(``vecbridge.register_backend``): a real FAISS client whose hooks raise the native
exception types of an imaginary SDK on chosen calls, translated by the backend's own
error table (``error_map``) like every real backend's.  The data and the checks are the
ones of the other migration tests: the expected records are the ones generated here,
read back through a plain FAISS client.
"""

from __future__ import annotations

import errno
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from migrate_helpers import assert_holds, faiss_source, make_records

import vecbridge
from vecbridge.backends.faiss import FaissClient
from vecbridge.backends.faiss.collection import FaissCollection
from vecbridge.base import ErrorRule
from vecbridge.errors import BackendError, BackendUnavailableError
from vecbridge.migrate import RetriesExhaustedError
from vecbridge.types import Record

pytest.importorskip("faiss")

DIM = 16
SCHEME = "flakyfaiss"


class SDKTransportError(Exception):
    """The imaginary SDK's dropped connection (like httpx.TransportError: not an OSError)."""


class SDKForbidden(Exception):
    """The imaginary SDK's "403 forbidden": not in the error table, so a plain BackendError."""


class Script:
    """Which call of which hook fails, and with what; counts every call."""

    def __init__(self, **fail: dict[int, BaseException] | None):
        self.fail = {hook: dict(calls or {}) for hook, calls in fail.items()}
        self.calls: Counter[str] = Counter()

    def hit(self, hook: str) -> None:
        self.calls[hook] += 1
        exc = self.fail.get(hook, {}).get(self.calls[hook])
        if exc is not None:
            raise exc


class FlakyCollection(FaissCollection):
    """A real FAISS collection whose hooks raise the SDK's exceptions as the script says."""

    script: Script

    def _upsert(self, b: Any) -> None:
        with self._mapped_errors("upsert"):
            self.script.hit("upsert")
        super()._upsert(b)

    def _scan(self, batch_size: int, include: frozenset[str]) -> Iterator[list[Record]]:
        for batch in super()._scan(batch_size, include):
            if "vector" in include:  # the copy's scan, not an id-only pass
                with self._mapped_errors("scan"):
                    self.script.hit("scan")
            yield batch

    def _get_ids(self, ids: list[str], where: Any, include: frozenset[str]) -> list[Record]:
        with self._mapped_errors("get"):
            self.script.hit("get")
        return super()._get_ids(ids, where, include)


class FlakyClient(FaissClient):
    """The plugin's client: FAISS on disk, with its SDK's exceptions in its error table."""

    backend_name = SCHEME
    error_map: tuple[ErrorRule, ...] = ((SDKTransportError, BackendUnavailableError),)
    script = Script()

    def _flaky(self, coll: FaissCollection | None) -> Any:
        if coll is not None:
            coll.__class__ = FlakyCollection
            coll.script = type(self).script  # type: ignore[attr-defined]
        return coll

    def _create_collection(self, *args: Any) -> Any:
        return self._flaky(super()._create_collection(*args))

    def _get_collection(self, name: str) -> Any:
        return self._flaky(super()._get_collection(name))


@pytest.fixture(autouse=True)
def _plugin() -> Iterator[None]:
    vecbridge.register_backend(SCHEME, FlakyClient)
    yield
    FlakyClient.script = Script()


@pytest.fixture
def records() -> list[Record]:
    return make_records(300, DIM)


def _script(**fail: dict[int, BaseException]) -> Script:
    FlakyClient.script = Script(**fail)
    return FlakyClient.script


def _holds(folder: Path, records: list[Record]) -> None:
    """Read back through a plain FAISS client, not through the plugin under test."""
    with vecbridge.connect(f"faiss:///{folder}") as client:
        assert_holds(client.get_collection("docs"), records)


def test_unavailable_errors_are_retried_with_backoff(tmp_path, records):
    src = faiss_source(str(tmp_path / "a"), records)
    script = _script(upsert={2: SDKTransportError("connection reset by peer"),
                             5: ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"),
                             6: SDKTransportError("connection refused")})
    messages: list[str] = []
    t0 = time.monotonic()
    report = vecbridge.migrate(src.collection_url, f"{SCHEME}:///{tmp_path / 'b'}", batch_size=30, verify="full",
                               backoff=0.05, on_retry=messages.append)
    elapsed = time.monotonic() - t0
    assert report.retries == 3 and len(messages) == 3, messages
    # The wait doubles while the same batch keeps failing and starts again after progress.
    assert ["retry 1 of 5 in 0.05 s", "retry 1 of 5 in 0.05 s", "retry 2 of 5 in 0.1 s"] == [
        m.rsplit("; ", 1)[1] for m in messages]
    assert f"{SCHEME}: upsert failed: SDKTransportError: connection reset by peer" in messages[0]
    assert "ConnectionResetError" in messages[1]
    assert elapsed >= 0.2
    assert script.calls["upsert"] == 10 + 3  # ten batches, three of them written twice
    assert report.verification.ok and report.verification.checked == len(records)
    _holds(tmp_path / "b", records)


def test_an_unavailable_source_is_retried(tmp_path, records):
    faiss_source(str(tmp_path / "a"), records)
    script = _script(scan={4: TimeoutError("timed out")})
    messages: list[str] = []
    report = vecbridge.migrate(f"{SCHEME}:///{tmp_path / 'a'}?collection=docs", f"faiss:///{tmp_path / 'b'}",
                               batch_size=30, verify="count", backoff=0.01, on_retry=messages.append)
    assert report.retries == 1 and "scan failed: TimeoutError: timed out" in messages[0]
    # After the retry the copy goes on from its own state: the copied prefix is passed over by an
    # id-only scan, the rest is read by id.
    assert script.calls["scan"] == 4 and script.calls["get"] > 0
    _holds(tmp_path / "b", records)


@pytest.mark.parametrize("failure", [
    PermissionError(errno.EACCES, "Permission denied", "/srv/vectors/docs"),
    SDKForbidden("403 forbidden: the token may not write to 'docs'"),
], ids=["PermissionError", "unmapped-SDK-error"])
def test_a_permanent_error_is_not_retried(tmp_path, records, failure):
    src = faiss_source(str(tmp_path / "a"), records)
    target = f"{SCHEME}:///{tmp_path / 'b'}"
    cp = tmp_path / "state.json"
    script = _script(upsert={3: failure})
    messages: list[str] = []
    with pytest.raises(BackendError) as caught:
        vecbridge.migrate(src.collection_url, target, batch_size=30, checkpoint=str(cp), backoff=0.01,
                          on_retry=messages.append)
    exc = caught.value
    assert not isinstance(exc, (BackendUnavailableError, RetriesExhaustedError))
    assert script.calls["upsert"] == 3, "one attempt, no retry"
    assert messages == []
    text = str(exc)
    assert f"{SCHEME}: upsert failed: {type(failure).__name__}" in text
    assert "not retried" in text and "60 of 300 records are copied" in text and "--resume" in text
    assert exc.__cause__ is not None and exc.__cause__.__cause__ is failure  # the native exception is kept
    assert json.loads(cp.read_text())["position"] == 60
    _script()  # the cause is fixed
    report = vecbridge.migrate(src.collection_url, target, batch_size=30, checkpoint=str(cp), resume=True,
                               verify="full")
    assert report.records_skipped == 60 and report.verification.ok
    _holds(tmp_path / "b", records)


def test_verification_retries_only_unavailable_errors(tmp_path, records):
    src = faiss_source(str(tmp_path / "a"), records)
    _script(get={1: SDKTransportError("connection reset"), 2: SDKTransportError("connection reset")})
    messages: list[str] = []
    report = vecbridge.migrate(src.collection_url, f"{SCHEME}:///{tmp_path / 'b'}", verify="sample",
                               sample_size=50, backoff=0.001, on_retry=messages.append)
    assert len(messages) == 2 and "get failed: SDKTransportError" in messages[0]
    assert report.verification.ok and report.verification.checked == 50
    script = _script(get={1: SDKForbidden("403 forbidden")})
    with pytest.raises(BackendError, match="SDKForbidden: 403 forbidden") as caught:
        vecbridge.migrate(src.collection_url, f"{SCHEME}:///{tmp_path / 'c'}", verify="sample", sample_size=50,
                          backoff=0.001, on_retry=messages.append)
    assert not isinstance(caught.value, BackendUnavailableError)
    assert script.calls["get"] == 1 and len(messages) == 2, "not retried"


def test_retries_exhausted_leave_a_resumable_checkpoint(tmp_path, records):
    src = faiss_source(str(tmp_path / "a"), records)
    target = f"{SCHEME}:///{tmp_path / 'b'}"
    _script(upsert={n: SDKTransportError("connection refused") for n in range(4, 99)})
    cp = tmp_path / "state.json"
    with pytest.raises(RetriesExhaustedError, match="gave up after 2 retries.*90 of 300.*--resume"):
        vecbridge.migrate(src.collection_url, target, batch_size=30, checkpoint=str(cp), retries=2, backoff=0.001)
    state = json.loads(cp.read_text())
    assert state["position"] == 90 and state["status"] == "copying"
    _script()  # the server is back
    report = vecbridge.migrate(src.collection_url, target, batch_size=30, checkpoint=str(cp), resume=True,
                               verify="full")
    assert report.records_skipped == 90 and report.records_copied == len(records) - 90
    assert report.verification.ok and not cp.exists()
    _holds(tmp_path / "b", records)
