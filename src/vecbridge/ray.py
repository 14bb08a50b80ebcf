"""Ray for vecbridge: a Ray Data datasource and datasink for any URL, and Ray tasks for migrations.

``pip install "vecbridge[ray]"``.  Ray is an existing distributed engine: vecbridge only
splits the work into the collection's partitions (``collection.partitions(n)``) and lets
Ray place it, on this machine or on a cluster.

>>> import vecbridge.ray as vbray                                   # doctest: +SKIP
>>> ds = vbray.read_vecbridge("SCHEME:///data?collection=docs", partitions=8)
>>> ds = ds.map_batches(add_a_field)
>>> vbray.write_vecbridge(ds, "OTHER://db.example:6333?collection=docs")

Rows have four columns: ``id`` (string), ``vector`` (a float32 tensor of the collection's
dimension), ``metadata`` (the record's metadata as a JSON string: Arrow would force one
schema on every record's dict, and JSON keeps ``1`` apart from ``1.0`` and ``True``) and
``document`` (string or null).  The datasink takes the same columns; ``metadata`` may also
hold dicts.

``vecbridge migrate --engine ray`` (``migrate(…, engine="ray")``) runs each partition's copy
as a Ray task: the task connects to both sides by URL, copies its partition with the same
:class:`~vecbridge.migrate.copier.Copier` as a local copy (retries, byte-sized batches),
and streams its position back after every written batch; the driver keeps every
partition's position in the migration's checkpoint, so a run whose driver was killed
resumes each partition where it stopped.  Both sides must be URLs that another process
can open (not in-memory databases, not a ``Collection`` object).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, cast

import numpy as np

from .errors import BackendNotInstalledError, VecbridgeError
from .types import INCLUDE_ALL

try:
    import ray
    from ray.data import Datasource, ReadTask
    from ray.data.block import BlockAccessor, BlockMetadata
    from ray.data.datasource import Datasink
except ImportError as exc:  # pragma: no cover - the extra is not installed
    raise BackendNotInstalledError('vecbridge.ray needs Ray Data: pip install "vecbridge[ray]"') from exc

__all__ = ["VecbridgeDatasink", "VecbridgeDatasource", "copy_with_ray", "ray_problems", "read_vecbridge",
           "write_vecbridge"]

ALL = list(INCLUDE_ALL)


# -- Ray Data ------------------------------------------------------------------------------
def _table(records: list[Any]) -> Any:
    import pyarrow as pa
    from ray.data._internal.tensor_extensions.arrow import ArrowTensorArray

    vectors = np.stack([np.asarray(r.vector, dtype=np.float32) for r in records])
    return pa.table({
        "id": pa.array([r.id for r in records], pa.string()),
        "vector": ArrowTensorArray.from_numpy(vectors),
        "metadata": pa.array([json.dumps(r.metadata or {}, ensure_ascii=False) for r in records], pa.string()),
        "document": pa.array([r.document for r in records], pa.string()),
    })


def _read_partition(url: str, partition: str, batch_size: int) -> Iterator[Any]:
    import vecbridge
    from vecbridge.types import Partition

    coll = vecbridge.open_collection(url)
    try:
        for batch in coll.scan(batch_size=batch_size, include=ALL, partition=Partition.from_json(partition)):
            if batch:
                yield _table(batch)
    finally:
        coll.close()  # type: ignore[attr-defined]


class VecbridgeDatasource(Datasource):  # type: ignore[misc]
    """The records of one collection, one read task per partition (``collection.partitions(n)``)."""

    def __init__(self, url: str, partitions: int = 8, batch_size: int = 1000):
        import vecbridge

        self._url, self._batch_size = str(url), int(batch_size)
        coll = vecbridge.open_collection(self._url)
        try:
            self._parts = [p.to_json() for p in coll.partitions(int(partitions))]
            self._count, self._dimension = int(coll.count()), int(coll.dimension)
        finally:
            coll.close()  # type: ignore[attr-defined]

    def get_name(self) -> str:
        return "vecbridge"

    def estimate_inmemory_data_size(self) -> int | None:
        return self._count * (self._dimension * 4 + 256)

    def get_read_tasks(self, parallelism: int, per_task_row_limit: int | None = None,
                       data_context: Any = None) -> list[Any]:
        """One task per partition whatever ``parallelism`` asks: the partitions are the split."""
        n = max(len(self._parts), 1)
        rows = self._count // n
        tasks = []
        for part in self._parts:
            meta = BlockMetadata(num_rows=rows, size_bytes=rows * (self._dimension * 4 + 256), exec_stats=None,
                                 input_files=None)

            def read(part: str = part, url: str = self._url, size: int = self._batch_size) -> Iterable[Any]:
                return _read_partition(url, part, size)

            tasks.append(ReadTask(read, meta, per_task_row_limit=per_task_row_limit))
        return tasks


def read_vecbridge(url: str, partitions: int = 8, *, batch_size: int = 1000, **read_args: Any) -> Any:
    """A Ray Dataset of the collection that ``url`` names (``?collection=NAME``): one read task per
    partition; columns ``id``, ``vector``, ``metadata`` (JSON), ``document``."""
    source = VecbridgeDatasource(url, partitions=partitions, batch_size=batch_size)
    return ray.data.read_datasource(source, **read_args)


def _column(batch: dict[str, Any], name: str, n: int) -> list[Any]:
    values = batch.get(name)
    return [None] * n if values is None else list(values)


class VecbridgeDatasink(Datasink):  # type: ignore[misc]
    """Upserts rows (``id``, ``vector``, ``metadata``, ``document``) into the collection of ``url``;
    the collection is created when absent (``dimension`` from the data unless given)."""

    def __init__(self, url: str, *, dimension: int | None = None, metric: str = "cosine",
                 batch_size: int = 500):
        self._url, self._dimension, self._metric, self._batch_size = str(url), dimension, metric, int(batch_size)

    def get_name(self) -> str:
        return "vecbridge"

    def on_write_start(self, schema: Any = None) -> None:
        import vecbridge
        from vecbridge.url import URL

        url = URL.parse(self._url)
        name = url.query.get("collection")
        if not name:
            raise VecbridgeError(f"write_vecbridge: {url.render()} names no collection: add '?collection=NAME'")
        with vecbridge.connect(url.with_query(collection=None)) as client:
            if str(name) in client.list_collections():
                return
            dimension = self._dimension or _dimension_of(schema)
            if dimension is None:
                raise VecbridgeError(f"write_vecbridge: the collection {name!r} does not exist and the data's "
                                     "'vector' column has no fixed size: pass dimension=")
            client.create_collection(str(name), dimension, self._metric)

    def write(self, blocks: Iterable[Any], ctx: Any) -> int:
        import vecbridge

        coll = vecbridge.open_collection(self._url)
        written = 0
        try:
            for block in blocks:
                batch = cast(dict[str, Any], BlockAccessor.for_block(block).to_numpy())  # every column
                ids = [str(i) for i in batch["id"]]
                vectors = batch["vector"]
                vectors = np.stack([np.asarray(v, dtype=np.float32) for v in vectors]) if vectors.dtype == object \
                    else np.asarray(vectors, dtype=np.float32)
                metas = [json.loads(m) if isinstance(m, str) else (m or {})
                         for m in _column(batch, "metadata", len(ids))]
                docs = [None if d is None else str(d) for d in _column(batch, "document", len(ids))]
                for k in range(0, len(ids), self._batch_size):
                    end = k + self._batch_size
                    coll.upsert(ids[k:end], vectors[k:end], metas[k:end], docs[k:end])
                written += len(ids)
        finally:
            coll.close()  # type: ignore[attr-defined]
        return written


def _dimension_of(schema: Any) -> int | None:
    """The fixed size of the ``vector`` column of an Arrow schema (a tensor or a fixed-size list)."""
    if schema is None:
        return None
    try:
        vtype = schema.field("vector").type
    except (KeyError, AttributeError):
        return None
    shape = getattr(vtype, "shape", None)
    if shape and len(shape) == 1 and shape[0]:
        return int(shape[0])
    size = getattr(vtype, "list_size", None)
    return int(size) if size else None


def write_vecbridge(ds: Any, url: str, *, dimension: int | None = None, metric: str = "cosine",
                    batch_size: int = 500, **write_args: Any) -> None:
    """Upsert the rows of the Ray Dataset ``ds`` into the collection of ``url`` (created when absent)."""
    ds.write_datasink(VecbridgeDatasink(url, dimension=dimension, metric=metric, batch_size=batch_size),
                      **write_args)


# -- migrations: one Ray task per partition -----------------------------------------------
def ray_problems(src: Any, tgt: Any) -> list[str]:
    """Why the Ray engine cannot copy between these sides (empty when it can)."""
    out = []
    for side in (src, tgt):
        if side.url is None:
            out.append(f"the Ray engine needs the {side.role} as a URL (its tasks connect from other processes), "
                       "not an object")
            continue
        caps = side.capabilities
        if side.in_memory or not caps.persistent:
            out.append(f"the {side.role} {side.display} is an in-memory database: a Ray task, in another process, "
                       "would find it empty (use engine='threads')")
        elif not caps.shared_between_processes:
            out.append(f"the {side.role} {side.display} cannot be opened by several processes at once: use "
                       "engine='threads'")
    return out


def _connect(address: str | None) -> bool:
    """Join (or start) a Ray instance; True when this call started the connection."""
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False)
    else:  # RAY_ADDRESS if set, else a local instance
        ray.init(log_to_driver=False, include_dashboard=False)
    return True


def _copy_partition(config: dict[str, Any], part: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The Ray task: copy one partition, yield its position after each written batch, then its sample."""
    from vecbridge.migrate.checkpoint import State, advance
    from vecbridge.migrate.copier import Copier, RetryPolicy
    from vecbridge.migrate.endpoint import Connections, Side
    from vecbridge.migrate.parallel import PartState
    from vecbridge.migrate.progress import Progress
    from vecbridge.migrate.verify import Reservoir

    messages: queue.Queue[dict[str, Any]] = queue.Queue()

    class Reporter:  # the copier's saver: the driver saves
        def commit(self, state: Any, ids: list[str]) -> None:
            advance(state, ids)
            messages.put({"kind": "progress", "position": state.position, "last_id": state.last_id,
                          "copied": state.copied})

    def run() -> None:
        conns = Connections()
        try:
            src, tgt = Side(config["source"], "source", conns), Side(config["target"], "target", conns)
            tgt.name = config["target_collection"]
            whole = State(source="", target="", source_collection=src.name or "", target_collection=tgt.name,
                          dimension=config["dimension"], metric=config["metric"], source_count=config["count"])
            ps = PartState.of(part, whole)
            sampler = Reservoir(config["sample_size"])
            copier = Copier(src, tgt, ps, batch_size=config["batch_size"],
                            max_request_bytes=config["max_request_bytes"], bytes_per_float=config["bytes_per_float"],
                            checkpoint=None, progress=Progress(enabled=False), sampler=sampler,
                            retry=RetryPolicy(config["retries"], config["backoff"]), partition=ps.part,
                            saver=Reporter())
            stats = copier.run()
            messages.put({"kind": "final", "copied": stats.copied, "skipped": stats.skipped, "retries": stats.retries,
                          "notes": stats.notes, "seen": sampler.seen, "ids": sampler.ids})
        except BaseException as exc:  # noqa: BLE001 - raised by the task below
            messages.put({"kind": "error", "error": exc})
        finally:
            conns.close()

    threading.Thread(target=run, name="vecbridge-ray-copy", daemon=True).start()
    while True:
        item = messages.get()
        while item["kind"] == "progress":  # only the newest position matters
            try:
                nxt = messages.get_nowait()
            except queue.Empty:
                break
            if nxt["kind"] != "progress":
                yield item
            item = nxt
        if item["kind"] == "error":
            raise item["error"]
        yield item
        if item["kind"] == "final":
            return


_remote: Any = None


def _task() -> Any:
    global _remote
    if _remote is None:
        _remote = ray.remote(num_returns="streaming", max_retries=0)(_copy_partition)
    return _remote


def _cause(exc: BaseException) -> BaseException:
    """The exception raised inside the task (Ray wraps it)."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc


def copy_with_ray(src: Any, tgt: Any, state: Any, parts: list[Any], saver: Any, bar: Any, *, workers: int,
                  address: str | None, sample_size: int, copier_args: dict[str, Any]) -> Any:
    """Copy ``parts`` as Ray tasks, at most ``workers`` at once; their positions go to ``saver``."""
    from vecbridge.migrate.copier import _Stats
    from vecbridge.migrate.parallel import ParallelResult, merge_samples
    from vecbridge.migrate.progress import SharedProgress
    from vecbridge.migrate.verify import Reservoir

    started = _connect(address)
    retry = copier_args["retry"]
    config = {"source": src.url.render(hide_secrets=False), "target": tgt.url.render(hide_secrets=False),
              "target_collection": tgt.name, "dimension": state.dimension, "metric": state.metric,
              "count": state.source_count, "sample_size": sample_size, "batch_size": copier_args["batch_size"],
              "max_request_bytes": copier_args["max_request_bytes"],
              "bytes_per_float": copier_args["bytes_per_float"], "retries": retry.retries, "backoff": retry.backoff}
    progress = SharedProgress(bar)
    stats, lock, stop = _Stats(), threading.Lock(), threading.Event()
    samples: dict[int, tuple[int, list[str]]] = {}
    running: list[Any] = []
    stats.skipped = sum(p.position for p in parts if p.done)

    def run_one(i: int, part: Any) -> None:
        if stop.is_set():
            return
        progress.skip(part.position)  # passed over by the task's id-only scan
        gen = _task().remote(config, part.to_dict())
        with lock:
            running.append(gen)
        try:
            for ref in gen:
                msg = ray.get(ref)
                if msg["kind"] == "progress":
                    progress.advance(max(0, msg["copied"] - part.copied))
                    saver.report(part, msg["position"], msg["last_id"], msg["copied"])
                else:
                    saver.done(part)
                    with lock:
                        samples[i] = (msg["seen"], list(msg["ids"]))
                        stats.copied += msg["copied"]
                        stats.skipped += msg["skipped"]
                        stats.retries += msg["retries"]
                        stats.notes += msg["notes"]
        except ray.exceptions.RayError as exc:  # the task's own exception, not Ray's wrapper
            raise _cause(exc) from None

    def cancel_all() -> None:
        stop.set()
        with lock:
            gens = list(running)
        for gen in gens:
            try:
                ray.cancel(gen, force=True)
            except Exception:  # noqa: BLE001, S110 - a finished task cannot be cancelled
                pass

    todo = [(i, p) for i, p in enumerate(parts) if not p.done]
    first: BaseException | None = None
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(todo) or 1)),
                                thread_name_prefix="vecbridge-ray") as pool:
            futures = [pool.submit(run_one, i, p) for i, p in todo]
            try:
                _, pending = wait(futures, return_when=FIRST_EXCEPTION)
                if pending:
                    cancel_all()
                    wait(pending)
            except BaseException:
                cancel_all()
                raise
            for f in futures:
                exc = f.exception()
                if exc is not None and first is None and not _cancelled(exc):
                    first = exc
    finally:
        if started:
            ray.shutdown()
    if first is not None:
        raise first
    result = ParallelResult(stats=stats)
    result.sampler = (merge_samples([samples[i] for i in range(len(parts))], sample_size)
                      if len(samples) == len(parts) else Reservoir(sample_size))
    return result


def _cancelled(exc: BaseException) -> bool:
    """A task this driver cancelled after another one failed."""
    return isinstance(exc, ray.exceptions.TaskCancelledError)
