"""Parallel copies: the source's partitions copied at once, each with its own checkpoint entry.

``migrate(…, workers=N)`` splits the source with ``collection.partitions(N)`` (key
ranges where the backend has keys, a stable id hash otherwise) and runs one
:class:`~vecbridge.migrate.copier.Copier` per partition in a thread pool.  Each worker
has its own connection to a server (so that a retry's reconnection touches only its
own) and shares the one client of an embedded database (whose folder admits one
client per process).  Every copier hands its progress to one :class:`SharedSaver`,
which keeps a position per partition in the migration's checkpoint file, so a killed
run resumes each partition where it stopped.  The partitions are those of the first
run: a resumed run reads them from the checkpoint, whatever number of workers it is
given (the workers are threads; the partitions are the work).

The default number of workers (:func:`default_workers`) is 1 wherever parallel writers
cannot help: a target that is not a server (an embedded folder or file, an in-memory
database: its writes are serialised in this process anyway), a target that several
processes cannot share, a small collection.  The decision reads the target's
:class:`~vecbridge.capabilities.Capabilities` and the URL's form, never a backend name.

``engine="ray"`` runs the same partition copies as Ray tasks (:mod:`vecbridge.ray`),
reporting to the same :class:`SharedSaver`.
"""

from __future__ import annotations

import bisect
import json
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from ..types import Partition
from .checkpoint import BackgroundSaver, Checkpoint, State, advance
from .copier import Copier, Stopped, _Stats
from .endpoint import Connections, Side
from .progress import Progress, SharedProgress
from .report import MigrationError
from .verify import Reservoir

__all__ = ["DEFAULT_WORKERS", "ENGINES", "PartState", "SharedSaver", "copy_in_threads", "default_workers",
           "merge_samples", "partition_states", "resolve_workers", "worker_side"]

#: Workers chosen for a server target when none are given.
DEFAULT_WORKERS = 4
#: Below this many batches a parallel copy costs more than it saves.
MIN_BATCHES_PER_WORKER = 4
ENGINES = ("threads", "ray")


@dataclass
class PartState:
    """One partition's part of the checkpoint: the fields a :class:`Copier` moves, as in :class:`State`."""

    partition: dict[str, Any]
    position: int = 0
    last_id: str | None = None
    copied: int = 0
    done: bool = False
    # Read by the copier, not saved (the whole State holds them).
    dimension: int = 0
    metric: str = "cosine"
    source_count: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"partition": self.partition, "position": self.position, "last_id": self.last_id,
                "copied": self.copied, "done": self.done}

    @classmethod
    def of(cls, data: dict[str, Any], state: State) -> PartState:
        return cls(partition=dict(data["partition"]), position=int(data.get("position", 0)),
                   last_id=data.get("last_id"), copied=int(data.get("copied", 0)), done=bool(data.get("done")),
                   dimension=state.dimension, metric=state.metric, source_count=state.source_count)

    @property
    def part(self) -> Partition:
        return Partition.from_json(json.dumps(self.partition))


def partition_states(state: State, source: Any, n: int) -> list[PartState]:
    """The partitions of the checkpoint, or ``n`` new ones of ``source`` (put in ``state``)."""
    if state.partitions is None:
        parts = source.partitions(n)
        state.partitions = [PartState(json.loads(p.to_json())).to_dict() for p in parts]
        state.position, state.last_id = 0, None
    return [PartState.of(d, state) for d in state.partitions]


class SharedSaver:
    """Keeps every partition's progress in the one checkpoint ``state`` and saves it in the background.

    ``commit`` is called by the copiers' threads after each written batch; the state is
    changed and serialised under one lock, so a saved file never holds half of a batch's
    update.  Without a checkpoint file the state is kept all the same (for the report).
    """

    def __init__(self, state: State, parts: list[PartState], checkpoint: Checkpoint | None):
        self.state, self.parts = state, parts
        self.lock = threading.Lock()
        self._bg = BackgroundSaver(checkpoint) if checkpoint is not None else None

    def _sync(self) -> None:
        self.state.position = sum(p.position for p in self.parts)
        self.state.partitions = [p.to_dict() for p in self.parts]
        if self._bg is not None:
            self._bg.submit(self.state)

    def commit(self, part: Any, ids: list[str]) -> None:
        with self.lock:
            advance(part, ids)
            self.state.copied += len(ids)
            self.state.last_id = None  # positions are per partition
            self._sync()

    def report(self, part: PartState, position: int, last_id: str | None, copied: int) -> None:
        """A copy in another process (a Ray task) says where its partition is now."""
        with self.lock:
            self.state.copied += max(0, copied - part.copied)
            part.position, part.last_id, part.copied = position, last_id, copied
            self._sync()

    def done(self, part: PartState) -> None:
        with self.lock:
            part.done = True
            self._sync()

    def save_now(self) -> None:
        with self.lock:
            self._sync()
        if self._bg is not None:
            self._bg.flush()

    def close(self) -> None:
        if self._bg is not None:
            self._bg.close()


def merge_samples(samples: Sequence[tuple[int, list[str]]], size: int, seed: int | None = None) -> Reservoir:
    """One uniform sample of ``size`` ids from disjoint streams, given each stream's
    ``(records seen, uniform sample of min(size, seen) ids)``: draw ``size`` positions of the
    whole without replacement, count how many fall in each stream, take that many of its sample."""
    rng = random.Random(seed)
    total = sum(seen for seen, _ in samples)
    out = Reservoir(size, seed)
    out.seen = total
    bounds = []
    acc = 0
    for seen, _ in samples:
        acc += seen
        bounds.append(acc)
    counts = [0] * len(samples)
    for pos in rng.sample(range(total), min(size, total)):
        counts[bisect.bisect_right(bounds, pos)] += 1
    for (_, ids), k in zip(samples, counts):
        out.ids += rng.sample(ids, min(k, len(ids)))
    return out


def _is_server(side: Side) -> bool:
    """A URL of the server form: a host (``scheme://host:port``), or a user and a socket folder
    (``pgvector://user@/db?host=/run/pg``); the embedded forms have neither (``scheme:///path``,
    ``scheme://``)."""
    url = side.url
    return url is not None and (url.host is not None or url.username is not None or "host" in url.query)


def default_workers(src: Side, tgt: Side, count: int, batch_size: int) -> int:
    """Workers for the pair when none are given: :data:`DEFAULT_WORKERS` into a server that
    other processes share (parallel requests hide its network round trips), else 1."""
    caps = tgt.capabilities
    if not (_is_server(tgt) and caps.shared_between_processes and caps.persistent):
        return 1  # an embedded or in-memory target writes in this process: one writer is as fast
    if count < 2 * MIN_BATCHES_PER_WORKER * max(batch_size, 1):
        return 1
    return max(1, min(DEFAULT_WORKERS, count // (MIN_BATCHES_PER_WORKER * max(batch_size, 1))))


def resolve_workers(requested: int | None, state: State, src: Side, tgt: Side, count: int, batch_size: int,
                    resuming: bool, checkpoint: str | None) -> tuple[int, list[str]]:
    """(workers, notes): the number given, or the interrupted run's, or the pair's default.

    A single-stream checkpoint counts its position in one scan of the whole source, which no
    partition shares: such a run continues with one worker, and asking for more is refused."""
    notes: list[str] = []
    saved_parts = state.partitions
    if resuming and saved_parts is None and state.position > 0:
        if requested is not None and requested > 1:
            raise MigrationError(f"the checkpoint {checkpoint} was written by a copy with one worker "
                                 f"({state.position:,} records copied in one scan of the source): resume it with "
                                 "--workers 1, or pass --restart to copy every record again with "
                                 f"{requested} workers")
        return 1, notes
    if resuming and saved_parts is not None:
        n = requested or len(saved_parts)
        if requested is not None and requested != len(saved_parts):
            notes.append(f"the interrupted run's {len(saved_parts)} partitions are resumed by {requested} "
                         f"worker(s)")
        return max(1, n), notes
    if requested is not None:
        return requested, notes
    return default_workers(src, tgt, count, batch_size), notes


def worker_side(base: Side, spec: Any, shared: Connections) -> tuple[Side, Connections | None]:
    """A side for one worker: its own connection to a server (closed by the caller), the shared
    client of an embedded or in-memory database, or the caller's own object."""
    own = Connections() if _is_server(base) and base.owned else None
    side = Side(spec, base.role, own if own is not None else shared)
    side.name = base.name
    return side, own


@dataclass
class ParallelResult:
    """What the partition copies did, summed."""

    stats: _Stats = field(default_factory=_Stats)
    sampler: Reservoir = field(default_factory=lambda: Reservoir(0))


def copy_in_threads(src: Side, tgt: Side, specs: tuple[Any, Any], shared: Connections, state: State,
                    parts: list[PartState], saver: SharedSaver, bar: Progress, *, workers: int,
                    sample_size: int, copier_args: dict[str, Any], where: Callable[[], str]) -> ParallelResult:
    """Copy ``parts`` with ``workers`` threads, one :class:`Copier` each; return the summed stats.

    The first failure stops the other copies at their next batch and is raised once they have
    stopped (their progress is in the checkpoint)."""
    progress = SharedProgress(bar)
    stop = threading.Event()
    samples: dict[int, tuple[int, list[str]]] = {}
    stats = _Stats()
    lock = threading.Lock()

    def work(i: int, part: PartState) -> None:
        s, s_own = worker_side(src, specs[0], shared)
        t, t_own = worker_side(tgt, specs[1], shared)
        try:
            sampler = Reservoir(sample_size)
            copier = Copier(s, t, part, checkpoint=None, progress=progress, sampler=sampler, partition=part.part,
                            saver=saver, stop=stop, where=where, **copier_args)
            got = copier.run()
            saver.done(part)
            with lock:
                samples[i] = (sampler.seen, list(sampler.ids))
                stats.copied += got.copied
                stats.skipped += got.skipped
                stats.retries += got.retries
                stats.notes += got.notes
        finally:
            for conns in (s_own, t_own):
                if conns is not None:
                    conns.close()

    todo = [(i, p) for i, p in enumerate(parts) if not p.done]
    stats.skipped = sum(p.position for p in parts if p.done)  # finished by an earlier run
    first: BaseException | None = None
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo) or 1)),
                            thread_name_prefix="vecbridge-partition") as pool:
        futures: list[Future[None]] = [pool.submit(work, i, p) for i, p in todo]
        try:
            _, pending = wait(futures, return_when=FIRST_EXCEPTION)
            if pending:  # one failed: stop the others at their next batch
                stop.set()
                wait(pending)
        except BaseException:  # Ctrl-C / SIGTERM in the main thread: stop every copy, keep their progress
            stop.set()
            for f in futures:
                f.cancel()
            wait(futures)
            raise
        for f in futures:
            exc = f.exception()
            if exc is not None and not isinstance(exc, Stopped) and first is None:
                first = exc
    if first is not None:
        raise first
    result = ParallelResult(stats=stats)
    all_seen = len(samples) == len(parts)
    result.sampler = (merge_samples([samples[i] for i in range(len(parts))], sample_size) if all_seen
                      else Reservoir(sample_size))
    return result

