"""The pipelined copy: a reader thread scans the source while the writer upserts into the target.

Between them a bounded queue holds at most ``depth`` batches, so memory stays flat
however large the collection, and the copy runs near the speed of the slower
side.  After every written batch the checkpoint is saved, by a background thread
so that the writer does not wait for the disk (see :mod:`vecbridge.migrate.checkpoint`
for what "resume" means and why a checkpoint never runs ahead of the target).

A resumed run passes over the records copied already with an id-only scan (cheap:
no vectors are read), checks that the last one it passes is the checkpoint's
``last_id``, and fetches the remaining records by id.  When that check fails (the
source changed, or its backend does not scan in a stable order) every record is
copied again with upserts, which doubles nothing.

A :class:`~vecbridge.BackendUnavailableError` (a refused or dropped connection, a
timeout, a restarting server: what each backend's error table says a retry can cure)
is retried a bounded number of times with exponential backoff: both sides are
reconnected and the copy resumes in-process from its own state, exactly as
``--resume`` would.  When the retries are spent the run stops with the checkpoint
in place.  Any other error (a permission refused, a full disk, a record the
database rejects) stops the run at once: retrying it would only repeat it.

A parallel copy (:mod:`.parallel`) runs one :class:`Copier` per partition: each scans
``partition=p`` of the source, keeps that partition's part of the checkpoint, and hands
its progress to a saver shared by all of them; a ``stop`` event ends every copier at
its next batch once one of them has failed.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from ..errors import BackendError, BackendUnavailableError, InvalidRecordError
from ..types import INCLUDE_ALL, Partition, Record
from .checkpoint import BackgroundSaver, Checkpoint, Position, advance
from .endpoint import Side
from .pipeline import Pipeline
from .plan import check_records, record_bytes, size_problems
from .progress import Progress, SharedProgress
from .report import MigrationError, RetriesExhaustedError
from .verify import Reservoir

__all__ = ["Copier", "RetryPolicy", "Stopped"]

ALL = list(INCLUDE_ALL)
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """``retries`` attempts after a failure, waiting ``backoff * 2**k`` seconds (at most ``max_wait``)."""

    retries: int = 5
    backoff: float = 1.0
    max_wait: float = 30.0

    def wait(self, attempt: int) -> float:
        return float(min(self.backoff * 2 ** (attempt - 1), self.max_wait))

    def call(self, fn: Callable[[], T], reopen: tuple[Side, ...] = (),
             on_retry: Callable[[str], None] | None = None) -> T:
        """``fn()``, called again from the start after a :class:`BackendUnavailableError` (reads only)."""
        attempt = 0
        while True:
            try:
                return fn()
            except BackendUnavailableError as exc:
                attempt += 1
                if attempt > self.retries:
                    raise
                wait = self.wait(attempt)
                if on_retry is not None:
                    on_retry(f"{exc}; retry {attempt} of {self.retries} in {wait:g} s")
                time.sleep(wait)
                for side in reopen:
                    side.reopen()


# Items the reader hands to the writer.
@dataclass
class _Skip:
    ids: list[str]


@dataclass
class _Write:
    records: list[Record]


@dataclass
class _Columns:
    """One request, in the shape ``upsert`` takes (built by the reader, so the writer only writes)."""

    records: list[Record]
    ids: list[str]
    vectors: np.ndarray
    metadatas: list[dict[str, Any]]
    documents: list[str | None]

    @classmethod
    def of(cls, records: list[Record], embedder: Any = None) -> _Columns:
        docs = [r.document for r in records]
        if embedder is not None:  # a re-embedding copy: new vectors from the documents
            vectors = np.ascontiguousarray(embedder.embed_documents(docs), dtype=np.float32)
        else:
            vectors = np.stack([np.asarray(r.vector, dtype=np.float32) for r in records])
        return cls(records, [r.id for r in records], vectors, [r.metadata or {} for r in records], docs)


@dataclass
class _Restart:
    reason: str


class Stopped(Exception):
    """Another partition's copy failed (or the run was interrupted): this one stops too."""


@dataclass
class _Stats:
    copied: int = 0
    skipped: int = 0
    retries: int = 0
    notes: list[str] = field(default_factory=list)


class Copier:
    """Copy every record of ``src`` into ``tgt``, continuing from ``state``."""

    def __init__(self, src: Side, tgt: Side, state: Position, *, batch_size: int, max_request_bytes: int,
                 bytes_per_float: int, checkpoint: Checkpoint | None, progress: Progress | SharedProgress,
                 sampler: Reservoir,
                 retry: RetryPolicy = RetryPolicy(), depth: int = 2,
                 on_retry: Callable[[str], None] | None = None, embedder: Any = None,
                 partition: Partition | None = None, saver: Any = None, stop: threading.Event | None = None,
                 where: Callable[[], str] | None = None):
        """``partition``: copy only that part of the source (``state`` is then the partition's part
        of the checkpoint); ``saver``: an object with ``commit(state, ids)`` shared with other
        copiers (instead of a saver of ``checkpoint``'s own); ``stop``: set when this copy must end
        at its next batch; ``where``: how far the whole copy got, for an error's message."""
        self.src, self.tgt, self.state = src, tgt, state
        self.partition = partition
        self._shared_saver = saver
        self.stop = stop
        self._where_fn = where
        self.batch_size = batch_size
        self.budget = max_request_bytes
        self.vector_bytes = state.dimension * bytes_per_float
        self.checkpoint = checkpoint
        # A BackgroundSaver of its own, or the saver shared by a parallel copy's copiers (.parallel).
        self._saver: Any = None
        self.progress = progress
        self.sampler = sampler
        self.retry = retry
        self.depth = depth
        self.on_retry = on_retry
        # Re-embedding: the source's vectors are not read; the reader thread embeds the documents,
        # so the model runs while the writer writes the batch before.
        self.embedder = embedder
        self.include = ["metadata", "document"] if embedder is not None else ALL
        # Records an earlier run copied, passed over here (zero again if the copy starts over).
        self.stats = _Stats(skipped=state.position)

    # -- the reader (runs in its own thread): scan, split, build the columns ------------------
    def _items(self, source: Any, position: int, last_id: str | None) -> Iterator[_Skip | _Write | _Restart]:
        size = self.batch_size
        if position:
            seen, aligned = 0, False
            for batch in source.scan(batch_size=max(size, 1000), include=[], partition=self.partition):
                ids = [r.id for r in batch]
                if seen < position:
                    take = min(len(ids), position - seen)
                    yield _Skip(ids[:take])
                    seen += take
                    if seen == position:
                        aligned = ids[take - 1] == last_id
                        if not aligned:
                            break
                    ids = ids[take:]
                for i in range(0, len(ids), size):  # after the copied prefix: fetch whole records by id
                    chunk = ids[i:i + size]
                    yield _Write(source.get(ids=chunk, include=self.include))
            if aligned:
                return
            yield _Restart(f"the source's scan order differs from the interrupted run's (the record at position "
                           f"{position:,} is no longer {last_id!r}): every record is copied again (upserts)")
        for batch in source.scan(batch_size=size, include=self.include, partition=self.partition):
            yield _Write(batch)

    def _chunks(self, records: list[Record]) -> Iterator[list[Record]]:
        """Split a batch so that no request exceeds the byte budget (large documents, metadata)."""
        if not records:
            return
        whole = (len(records) * (self.vector_bytes + 64) + sum(len(r.id) * 4 for r in records)
                 + len(json.dumps([r.metadata for r in records]))
                 + sum(len(r.document.encode("utf-8")) for r in records if r.document))
        if whole <= self.budget:
            yield records
            return
        out: list[Record] = []
        size = 0
        for r in records:
            n = record_bytes(r, self.vector_bytes)
            if out and size + n > self.budget:
                yield out
                out, size = [], 0
            out.append(r)
            size += n
        if out:
            yield out

    def _split(self, items: Iterator[_Skip | _Write | _Restart]) -> Iterator[_Skip | _Columns | _Restart]:
        for item in items:
            if isinstance(item, _Write):
                for chunk in self._chunks(item.records):
                    yield _Columns.of(chunk, self.embedder)
            else:
                yield item

    # -- the writer (runs in the calling thread) ------------------------------------------
    def _write(self, target: Any, cols: _Columns) -> None:
        """Upsert one request's worth of records, then save the checkpoint."""
        state = self.state
        ids = cols.ids
        if self.stop is not None and self.stop.is_set():
            raise Stopped()
        try:
            target.upsert(ids, cols.vectors, cols.metadatas, cols.documents)
        except InvalidRecordError as exc:
            # Name the record: the plan checked every one, so this is a limit the target did not
            # declare, or measures otherwise than the core (e.g. its own encoding of metadata).
            sized = size_problems(cols.records, self.tgt.capabilities, self.tgt.backend, self.vector_bytes)
            why = check_records(cols.records, state.dimension, state.metric, vectors=self.embedder is None) or (sized[0] if sized else
                                                                                 _naming(cols.records, exc))
            raise MigrationError(f"{why}; nothing of that batch was written, {state.position:,} records are "
                                 "copied (the checkpoint is kept)") from exc
        self.stats.copied += len(ids)
        if self._saver is not None:
            self._saver.commit(state, ids)
        else:
            advance(state, ids)
        self.sampler.add(ids)
        self.progress.advance(len(ids))

    def _attempt(self) -> None:
        state = self.state
        source, target = self.src.collection, self.tgt.collection
        self.progress.start("copy", state.source_count, 0)
        pos = 0  # scan position of the next skipped id
        with Pipeline(self._split(self._items(source, state.position, state.last_id)), depth=self.depth) as items:
            for item in items:
                if isinstance(item, _Columns):
                    self._write(target, item)
                elif isinstance(item, _Skip):
                    # After an in-process retry the sample has seen these ids already.
                    fresh = max(0, self.sampler.seen - pos)
                    self.sampler.add(item.ids[fresh:])
                    pos += len(item.ids)
                    self.progress.skip(len(item.ids))
                else:
                    self.stats.notes.append(item.reason)
                    self.stats.skipped = 0
                    self.sampler.reset()
                    state.position, state.last_id = 0, None
                    self.progress.start("copy", state.source_count, 0)
        self.progress.finish()

    def run(self) -> _Stats:
        """Copy until done, retrying :class:`BackendUnavailableError`; return what was done.

        The checkpoint is saved after every written batch, in a background thread;
        when ``run`` returns or raises, the newest state is on disk.
        """
        if self._shared_saver is not None:  # its owner closes it
            self._saver = self._shared_saver
            return self._run()
        saver = self._saver = BackgroundSaver(self.checkpoint) if self.checkpoint is not None else None
        try:
            stats = self._run()
        except BaseException:
            if saver is not None:
                with contextlib.suppress(Exception):  # the first error is the one to report
                    saver.close()
            raise
        if saver is not None:
            saver.close()
        return stats

    def _where(self) -> str:
        """How far the copy got and how to continue, for an error's message."""
        if self._where_fn is not None:
            return self._where_fn()
        done = f"{self.state.position:,} of {self.state.source_count:,} records are copied"
        if self.checkpoint is None:
            return done
        return f"{done}, the checkpoint {self.checkpoint.path} is kept: run again with --resume to continue"

    def _run(self) -> _Stats:
        failures = 0
        while True:
            before = self.state.position
            try:
                self._attempt()
                return self.stats
            except BackendUnavailableError as exc:
                self.progress.finish()
                if self.state.position > before:
                    failures = 0  # progress since the last failure: a new incident
                failures += 1
                if failures > self.retry.retries:
                    raise RetriesExhaustedError(
                        f"{exc} (gave up after {self.retry.retries} retries; {self._where()})") from exc
                wait = self.retry.wait(failures)
                self.stats.retries += 1
                if self.on_retry is not None:
                    self.on_retry(f"{exc}; retry {failures} of {self.retry.retries} in {wait:g} s")
                time.sleep(wait)
                self.src.reopen()
                self.tgt.reopen()
            except BackendError as exc:
                self.progress.finish()
                raise _not_retried(exc, self._where()) from exc


def _naming(records: list[Record], exc: Exception) -> str:
    """The backend's message about ``records[i]`` ("metadatas[3] ..."), with the record's id."""
    text = re.sub(r";? *nothing was written\.?$", "", str(exc))
    m = re.match(r"(ids|vectors|metadatas|documents)\[(\d+)\]", text)
    if m and int(m.group(2)) < len(records):
        return f"record {records[int(m.group(2))].id!r} cannot be written to the target: {text}"
    return text


def _not_retried(exc: BackendError, where: str) -> BackendError:
    """``exc`` (same class, so that a caller can still tell a locked folder from a full disk)
    with why the copy stopped at once and how far it got."""
    message = f"{exc} (not retried: a retry does not cure this error; fix its cause first; {where})"
    try:
        return type(exc)(message)
    except TypeError:  # a subclass with another constructor
        return BackendError(message)
