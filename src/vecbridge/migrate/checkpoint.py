"""The checkpoint: a small JSON file rewritten atomically after every written batch.

Resume is defined by two numbers kept here: ``position``, how many source records,
counted in the source's scan order, are known to be in the target; and ``last_id``,
the id of the record at ``position - 1``.  A resumed run scans the source again in
the same order, passes over the first ``position`` records without writing them, and
checks that the record it passes last has the id ``last_id``.  Records after
``position`` that reached the target before the interruption are upserted again:
the same id with the same content, so no record is doubled and none is lost.

The file is written to a temporary name, flushed to disk (fsync), then renamed
over the old one, so that a process killed at any moment (SIGKILL included)
leaves either the previous checkpoint or the new one, never a torn file.

A parallel copy (``workers=N``, ``engine="ray"``) keeps the same two numbers per
partition in ``partitions`` (the partition itself, as its JSON object, with its own
``position`` and ``last_id``); the top-level ``position`` is then their sum.  The
partitions are those of the first run, so a resumed run reads the same parts whatever
number of workers it is given.

The copier saves through :class:`BackgroundSaver`: the state of each written
batch is handed to a thread that writes it while the next batch is being written
(an fsync costs milliseconds).  When batches come faster than saves, only the
newest state is written.  A checkpoint therefore never claims more than the target
holds; at worst it lags one batch behind, which a resume writes again (upserts).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

from .report import MigrationError

__all__ = ["CHECKPOINT_DIR", "BackgroundSaver", "Checkpoint", "Position", "State", "advance", "default_path"]

#: Where checkpoints go by default, relative to the working directory.
CHECKPOINT_DIR = ".vecbridge"
_VERSION = 1


@dataclass
class State:
    """What a checkpoint file holds."""

    source: str
    target: str
    source_collection: str
    target_collection: str
    dimension: int
    metric: str
    source_count: int
    position: int = 0
    last_id: str | None = None
    copied: int = 0  # records written, over every run
    created_target: bool = False
    preexisting: int = 0  # records the target held before the first run (--into-existing)
    status: str = "copying"  # "copying", then "copied" once every record is written
    started: float = 0.0
    updated: float = 0.0
    version: int = _VERSION
    #: A parallel copy: one entry per partition (``partition``: the Partition's JSON object;
    #: ``position``, ``last_id``, ``copied``, ``done``); ``None`` for a single stream.
    partitions: list[dict[str, Any]] | None = None
    #: How the partitions were copied ("threads" or "ray"); informative only.
    engine: str = "threads"

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1)

    def reset(self) -> None:
        """Copy every record again: no position, no partitions (the next run makes new ones)."""
        self.position, self.last_id, self.partitions = 0, None, None


class Position(Protocol):
    """What a copier moves: a whole :class:`State`, or one partition's part of it."""

    position: int
    last_id: str | None
    copied: int
    dimension: int
    metric: str
    source_count: int


def advance(state: Position, ids: list[str]) -> None:
    """``ids`` (in scan order) are in the target now: move ``state`` (a :class:`State` or
    one partition's part of it) past them."""
    state.position += len(ids)
    state.last_id = ids[-1]
    state.copied += len(ids)


def default_path(source: str, target: str, base: str | Path | None = None) -> Path:
    """``.vecbridge/migrate-<hash>.json`` in the working directory.

    The hash is taken over the two locations with their secrets already removed,
    so the same migration finds the same file, and no secret reaches the disk.
    """
    digest = hashlib.sha256(f"{source}\n{target}".encode()).hexdigest()[:16]
    return Path(base if base is not None else Path.cwd() / CHECKPOINT_DIR) / f"migrate-{digest}.json"


class Checkpoint:
    """Load, save atomically and remove the state file of one migration."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._dir_created = False

    def load(self) -> State | None:
        """The saved state, or ``None`` when there is no file."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise MigrationError(f"cannot read the checkpoint {self.path}: {exc.strerror}") from None
        try:
            data: dict[str, Any] = json.loads(text)
            if data.get("version") != _VERSION:
                raise ValueError(f"version {data.get('version')!r}, expected {_VERSION}")
            known = {f.name for f in fields(State)}
            return State(**{k: v for k, v in data.items() if k in known})
        except (ValueError, TypeError) as exc:
            raise MigrationError(f"the checkpoint {self.path} is not a vecbridge checkpoint ({exc}); "
                                 "remove it or pass --restart") from None

    def save(self, state: State) -> None:
        """Write ``state`` atomically: temporary file, fsync, rename, fsync of the folder."""
        state.updated = time.time()
        self.write(state.to_json().encode("utf-8"))

    def write(self, data: bytes) -> None:
        """Write the serialised state atomically."""
        folder = self.path.parent
        if not self._dir_created:
            folder.mkdir(parents=True, exist_ok=True)
            self._dir_created = True
        tmp = folder / f".{self.path.name}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        _fsync_dir(folder)

    def remove(self) -> None:
        """Delete the file (and the default folder when it is left empty)."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        if self.path.parent.name == CHECKPOINT_DIR:
            with contextlib.suppress(OSError):
                self.path.parent.rmdir()  # only succeeds when empty


class BackgroundSaver:
    """Save checkpoints in a thread, newest state first, so the writer never waits on an fsync.

    ``submit`` snapshots the state (it may change right after); ``flush`` waits until
    the newest snapshot is on disk and raises what the thread met (a full disk).
    """

    def __init__(self, checkpoint: Checkpoint):
        self.checkpoint = checkpoint
        self._cond = threading.Condition()
        self._pending: bytes | None = None
        self._busy = False
        self._error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="vecbridge-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closed:
                    self._cond.wait()
                if self._pending is None:
                    return
                data, self._pending, self._busy = self._pending, None, True
            try:
                self.checkpoint.write(data)
            except BaseException as exc:  # noqa: BLE001 - reported to the writer by submit/flush
                with self._cond:
                    self._error = exc
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _raise(self) -> None:
        if self._error is not None:
            exc, self._error = self._error, None
            raise exc

    def commit(self, state: State, ids: list[str]) -> None:
        """``ids`` were written: advance ``state`` past them and save it."""
        advance(state, ids)
        self.submit(state)

    def submit(self, state: State) -> None:
        state.updated = time.time()
        data = state.to_json().encode("utf-8")
        with self._cond:
            self._raise()
            self._pending = data
            self._cond.notify_all()

    def flush(self) -> None:
        with self._cond:
            while self._pending is not None or self._busy:
                self._cond.wait()
            self._raise()

    def close(self) -> None:
        """Write what is pending, then stop the thread."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        self._raise()


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable; not every platform can open a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
