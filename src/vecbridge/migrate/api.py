""":func:`migrate` and :func:`verify`: plan, copy, checkpoint, verify, report."""

from __future__ import annotations

import time
from typing import Any

from ..base import CONFIG_KEYS
from ..errors import UnsupportedFeatureError
from ..mapping import LAYOUTS
from ..url import URL
from .checkpoint import Checkpoint, State
from .copier import Copier, RetryPolicy, _Stats
from .endpoint import Connections, Side
from .parallel import ENGINES, SharedSaver, copy_in_threads, partition_states, resolve_workers
from .plan import (
    DEFAULT_REQUEST_BYTES,
    layout_of,
    make_plan,
    rows_per_batch,
    scan_missing_documents,
    target_name,
    wire_bytes_per_float,
)
from .prescan import Prescan, checks_target, prepare_layouts, target_notes
from .progress import Progress, make_progress
from .report import VERIFY_MODES, MigrationError, MigrationInterrupted, MigrationReport, Plan, VerificationResult
from .verify import Reservoir, expectation, verify_collections

__all__ = ["migrate", "verify"]

Target = Any  # a URL (str or vecbridge.URL), a Collection, or a Client (target only)


def _check_mode(verify: str) -> str:
    if verify not in VERIFY_MODES:
        raise MigrationError(f"verify must be one of {', '.join(VERIFY_MODES)}, not {verify!r}")
    return verify


def _positive(value: Any, name: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise MigrationError(f"{name} must be a positive integer, not {value!r}")


def _prescan(src: Side, tgt: Side, plan: Plan, progress: Progress | None, *, validate: bool = False,
             target: Any = None, count: bool = True) -> None:
    """Read every source record once and put what the target would refuse or convert into the plan
    (:mod:`.prescan`); a dry run (``validate``) checks each record against the contract too, with
    the same sentences a real run refuses with."""
    Prescan(plan, tgt.capabilities, tgt.backend, plan.dimension * wire_bytes_per_float(src, tgt),
            validate=validate, target=target, count=count, layout_backend=tgt.backend_name).run(src.collection,
                                                                                              progress)


def _needs_prescan(plan: Plan, target: Any) -> bool:
    """Whether a real run reads the source before its first write: for the target's size limits,
    for the conversions of a layout other than vecbridge's (counted, and refused by ``strict``),
    and for the refusals of a target that can refuse what the contract accepts."""
    return bool(plan.size_limits) or (plan.source_layout, plan.target_layout) != ("vecbridge", "vecbridge") \
        or checks_target(target)


def _with_layout(spec: Any, layout: str | None) -> tuple[Any, str | None]:
    """The target with the layout asked for as its URL option ``layout=`` (the backend creates and
    expects that layout), and the layout; a ``layout=`` already in the URL must agree."""
    if layout is not None and layout not in LAYOUTS:
        raise MigrationError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
    if isinstance(spec, (str, URL)):
        url = URL.parse(spec)
        given = url.query.get("layout")
        given = None if given in (None, "") else str(given)
        if layout is None:
            return spec, given
        if given is not None and given != layout:
            raise MigrationError(f"the target URL says layout={given} but the layout asked for is {layout!r}: "
                                 "drop one of them, or make them agree")
        return url.with_query(layout=layout), layout
    if layout is None:
        return spec, None
    if hasattr(spec, "scan"):  # a Collection: its layout is what it is
        have = layout_of(spec)
    else:  # a Client: the layout it creates is its option
        options = getattr(spec, "options", None)
        have = str((options.get("layout") if isinstance(options, dict) else None) or "vecbridge")
    if have != layout:
        raise MigrationError(f"the target {type(spec).__name__} is in the layout {have!r}, not {layout!r}: pass "
                             f"the target as a URL (the layout is its option layout={layout}), or open it with "
                             f"layout={layout!r}")
    return spec, layout


def _create_target(tgt: Side, plan: Plan, state: State) -> Any:
    """Create the target collection in the plan's layout; a backend that cannot make that layout
    refuses here, before any record is written (a collection it made in another layout is removed)."""
    client = tgt.client()
    name = plan.target_collection
    try:
        created = client.create_collection(name, plan.dimension, plan.metric, plan.index or None)
    except UnsupportedFeatureError as exc:
        raise MigrationError(f"the target collection {name!r} cannot be created: {exc}; nothing was written") \
            from exc
    tgt.set_collection(created)
    state.created_target = True
    got = layout_of(created)
    if got != plan.target_layout:
        _remove_created(tgt, plan, f"the {tgt.backend} target made the collection {name!r} in the layout {got!r}, "
                                   f"not {plan.target_layout!r}: it cannot create that layout")
    return created


def _remove_created(tgt: Side, plan: Plan, why: str) -> None:
    """Remove the target collection this run created, then refuse with ``why`` (nothing half-written)."""
    name = plan.target_collection
    try:
        tgt.client().delete_collection(name)
        done = f"the collection {name!r} this run created was removed again; nothing was written"
    except Exception as exc:  # noqa: BLE001 -- the refusal is the error to report; say what is left behind
        done = f"the collection {name!r} this run created could not be removed ({exc}): remove it by hand"
    raise MigrationError(f"{why}; {done}")


_SOURCE_ONLY = ("mapping", "file")


def _carried_config(coll: Any) -> dict[str, Any]:
    """The entries of a collection's configuration that a copy carries: all but the ones the
    target's creation decides (dimension, metric, index, layout) and those that describe where the
    source's records live (``mapping``, ``file``: a native collection's, not the target's)."""
    config = getattr(coll, "config", None)
    if not isinstance(config, dict):
        return {}
    return {k: v for k, v in config.items() if k not in CONFIG_KEYS and k not in _SOURCE_ONLY}


def migrate(source: str | URL | Any, target: str | URL | Any, *, batch_size: int | None = None,
            resume: bool = False, restart: bool = False, into_existing: bool = False, verify: str = "sample",
            sample_size: int = 1000, dry_run: bool = False, checkpoint: str | bool | None = None,
            progress: Any = False, max_request_bytes: int = DEFAULT_REQUEST_BYTES, retries: int = 5,
            backoff: float = 1.0, on_retry: Any = None, reembed: Any = None, workers: int | None = None,
            engine: str = "threads", ray_address: str | None = None, strict: bool = False,
            layout: str | None = None) -> MigrationReport:
    """Copy a collection, with its ids, vectors, metadata and documents, to another backend.

    Parameters
    ----------
    source, target
        URLs naming the collection with ``?collection=NAME`` (the target's name
        defaults to the source's, mapped to a name the target can hold when needed);
        or open ``Collection`` objects; or, for the target, a ``Client``.
    batch_size
        Records per batch; by default computed from the dimension so that a request
        stays under ``max_request_bytes`` (batches are split further when large
        metadata or documents would exceed it).
    resume
        Continue an interrupted run from its checkpoint.  Records it copied are not
        written again (only its last batch may be, an idempotent upsert).
    restart
        Discard the checkpoint of an interrupted run and copy every record again.
    into_existing
        Allow upserting into a target collection that already holds records.
    verify
        ``"none"``, ``"count"``, ``"sample"`` (``sample_size`` random records compared
        field by field) or ``"full"`` (every record).
    dry_run
        Plan, read every source record and check that the target could take it;
        write nothing.  The report's ``plan`` lists any problem.
    checkpoint
        The checkpoint file; default ``.vecbridge/migrate-<hash>.json`` in the working
        directory; ``False`` for none.  It is removed once the run has finished and
        verified.
    progress
        ``True`` for a progress line on stderr, or a callable ``(phase, done, total)``.
    retries, backoff
        A :class:`~vecbridge.BackendUnavailableError` (refused or dropped connection,
        timeout, a server that is starting) is retried ``retries`` times, waiting
        ``backoff`` seconds, doubling each time (at most 30 s), with both sides
        reconnected.  Any other error stops the run at once (checkpoint kept).
    on_retry
        Called with a one-line message before each retry.
    reembed
        A spec (``PROVIDER:MODEL[?options]``) or an Embedder: every document is embedded again
        by it into a target of its dimension, whose stored embedding spec becomes this one;
        records without a document are listed by the plan and refused before any write.
    workers
        Partitions copied at once (``source.partitions(workers)``), each with its own writer and
        its own entry in the checkpoint; ``verify="full"`` then compares the partitions at once
        too.  Default: 4 into a server target, 1 into an embedded or in-memory one (see
        :func:`vecbridge.migrate.parallel.default_workers`); on ``resume``, the interrupted run's.
    engine
        ``"threads"`` (this process) or ``"ray"``: each partition's copy is a Ray task
        (:mod:`vecbridge.ray`, ``pip install "vecbridge[ray]"``), its progress saved here.
    ray_address
        The Ray cluster to use (``ray.init(address=...)``); default: the one this process is
        connected to, else ``RAY_ADDRESS``, else a local instance started for the copy.
    strict
        Refuse the copy, before anything is written, if any value would be converted: read from a
        source vecbridge did not create (nested objects, nulls, dates …) or written into a framework
        layout; the plan lists every conversion with its count either way.
    layout
        The layout of the target collection to create: ``"vecbridge"`` (the default), ``"native"``,
        ``"langchain"`` or ``"llamaindex"``; it reaches the target as its URL option ``layout=``
        (one already in the URL must agree).  A target backend without that layout is refused
        before anything is written.

    Returns
    -------
    MigrationReport

    Raises
    ------
    MigrationError
        The plan found problems (nothing was written), or a record cannot be written.
    RetriesExhaustedError
        A backend stayed unavailable; the checkpoint allows ``resume=True``.
    BackendError
        A failure a retry cannot cure (permission, disk, a rejected record), raised at
        its first occurrence; the checkpoint allows ``resume=True`` once its cause is fixed.
    """
    if resume and restart:
        raise MigrationError("resume and restart exclude each other")
    _check_mode(verify)
    _positive(batch_size, "batch_size")
    _positive(sample_size, "sample_size")
    _positive(max_request_bytes, "max_request_bytes")
    _positive(workers, "workers")
    if engine not in ENGINES:
        raise MigrationError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if engine == "ray" and reembed is not None:
        raise MigrationError("re-embedding (reembed=) runs with engine='threads' only: the model would be loaded "
                             "in every Ray task")
    embedder = None
    if reembed is not None:
        from ..embeddings import get_embedder

        embedder = get_embedder(reembed)
    bar = make_progress(progress)
    conns = Connections()
    try:
        target, wanted = _with_layout(target, layout)
        src, tgt = Side(source, "source", conns), Side(target, "target", conns)
        plan, state, cp = make_plan(src, tgt, batch_size=batch_size, max_request_bytes=max_request_bytes,
                                    resume=resume, restart=restart, into_existing=into_existing, verify=verify,
                                    checkpoint=False if dry_run and checkpoint is None else checkpoint,
                                    reembed=embedder, layout=wanted, strict=strict)
        prepare_layouts(plan, src.collection, src.backend_name, tgt.backend_name)
        existing = tgt.collection if plan.target_exists else None
        plan.target_notes = target_notes(existing, tgt.backend_name)
        report = MigrationReport(source=plan.source, target=plan.target, source_collection=plan.source_collection,
                                 target_collection=plan.target_collection, mapped_from=plan.mapped_from,
                                 records_total=plan.source_count, batch_size=plan.batch_size, plan=plan,
                                 checkpoint=plan.checkpoint, resumed=plan.action == "resume",
                                 notes=list(plan.notes))
        if embedder is not None and not plan.problems:
            plan.problems += scan_missing_documents(src.collection, max(plan.batch_size, 1000))
        if dry_run:
            if not plan.problems:
                _prescan(src, tgt, plan, bar, validate=True, target=existing)
            if existing is None and plan.target_layout != "vecbridge":
                plan.notes.append(f"a real run asks the new target collection ({plan.target_layout} layout) to "
                                  "refuse what it cannot take once it is created, before the first record is "
                                  "written; a dry run creates nothing")
            report.dry_run = True
            report.checkpoint = None
            return report
        if not plan.problems and _needs_prescan(plan, existing):
            # A record the target cannot hold, or a conversion --strict refuses, stops the copy
            # before its first write.
            _prescan(src, tgt, plan, None, target=existing)
        if engine == "ray":
            from ..ray import ray_problems

            plan.problems += ray_problems(src, tgt)
        if plan.problems:
            raise MigrationError(plan.problems)
        n_workers, notes = resolve_workers(workers, state, src, tgt, plan.source_count, plan.batch_size,
                                           plan.action == "resume", plan.checkpoint)
        report.notes += notes
        parallel = engine == "ray" or n_workers > 1 or state.partitions is not None
        report.workers, report.engine = n_workers, engine

        t0 = time.monotonic()
        if not plan.target_exists:
            created = _create_target(tgt, plan, state)
            plan.target_notes = target_notes(created, tgt.backend_name)
            if checks_target(created):  # a new native or framework collection may refuse a value too
                _prescan(src, tgt, plan, None, target=created, count=False)
                if plan.problems:
                    _remove_created(tgt, plan, "; ".join(plan.problems))
            carried = _carried_config(src.collection)
            if embedder is not None:  # the target's vectors are the new model's
                from ..embeddings import stored

                carried["embedding"] = stored(embedder)
            if carried:  # what else the source's configuration says (e.g. its embedding spec)
                try:
                    created.set_config(**carried)
                except UnsupportedFeatureError as exc:  # the records can still be copied: say what is not
                    report.notes.append(f"the configuration entries {', '.join(sorted(carried))} of the source "
                                        f"were not copied: {exc}")
        if state.started == 0.0:
            state.started = time.time()
        state.status = "copying"
        if cp is not None:
            cp.save(state)
        policy = RetryPolicy(retries=retries, backoff=backoff)
        copier_args: dict[str, Any] = {"batch_size": plan.batch_size, "max_request_bytes": max_request_bytes,
                                       "bytes_per_float": wire_bytes_per_float(src, tgt), "retry": policy,
                                       "on_retry": on_retry, "embedder": embedder}
        try:
            if parallel:
                stats, sampler = _copy_partitions(src, tgt, (source, target), conns, state, cp, bar,
                                                  workers=n_workers, engine=engine, ray_address=ray_address,
                                                  sample_size=sample_size, copier_args=copier_args)
                report.partitions = len(state.partitions or [])
            else:
                sampler = Reservoir(sample_size)
                stats = Copier(src, tgt, state, checkpoint=cp, progress=bar, sampler=sampler,
                               **copier_args).run()
        except KeyboardInterrupt as exc:
            where = (f"; the checkpoint {cp.path} is kept: run again with --resume to continue" if cp is not None
                     else "")
            raise MigrationInterrupted(f"interrupted with {state.position:,} of {state.source_count:,} records "
                                       f"copied{where}") from exc
        report.seconds = time.monotonic() - t0
        report.records_copied = stats.copied
        report.records_skipped = stats.skipped
        report.retries = stats.retries
        report.notes += stats.notes
        report.records_per_second = stats.copied / report.seconds if report.seconds > 0 else 0.0
        state.status = "copied"
        if cp is not None:
            cp.save(state)
        if verify != "none":
            # Records the target held before the copy may stay there (--into-existing).
            extra = state.preexisting > 0
            ids = sampler.ids if sampler.seen == state.position else None
            report.verification = policy.call(
                lambda: verify_collections(src.collection, tgt.collection, verify, batch_size=plan.batch_size,
                                           sample_ids=ids, sample_size=sample_size, allow_extra=extra,
                                           progress=bar, reembedded=plan.dimension if embedder else None,
                                           workers=n_workers,
                                           expect=expectation(plan.target_layout, tgt.backend_name,
                                                              plan.metric)),
                reopen=(src, tgt), on_retry=on_retry)
        if cp is not None and report.ok:
            cp.remove()
            report.checkpoint = None
        elif cp is not None:
            report.notes.append(f"the checkpoint {cp.path} is kept: --restart copies every record again")
        return report
    finally:
        bar.finish()
        conns.close()


def verify(source: str | URL | Any, target: str | URL | Any, *, mode: str = "full", sample_size: int = 1000,
           batch_size: int | None = None, progress: Any = False, workers: int = 1) -> VerificationResult:
    """Compare the target collection with the source (``count``, ``sample`` or ``full``).

    The target's collection name defaults to the source's (mapped as :func:`migrate`
    maps it).  Nothing is written.  ``workers``: ``full`` compares that many partitions
    of the source at once.
    """
    if _check_mode(mode) == "none":
        raise MigrationError("verify needs a mode other than 'none'")
    _positive(batch_size, "batch_size")
    _positive(workers, "workers")
    conns = Connections()
    bar = make_progress(progress)
    try:
        src, tgt = Side(source, "source", conns), Side(target, "target", conns)
        if not src.named():
            raise MigrationError(f"the source {src.display} names no collection: add '?collection=NAME' to its URL")
        source_coll = src.collection
        if not tgt.name_given:
            tgt.name, _, problems = target_name(source_coll.name, tgt, tgt.capabilities)
            if problems:
                raise MigrationError(problems)
        bpf = wire_bytes_per_float(src, tgt)
        size = batch_size or rows_per_batch(int(source_coll.dimension), bpf, DEFAULT_REQUEST_BYTES)
        target_coll = tgt.collection
        return verify_collections(source_coll, target_coll, mode, batch_size=size, sample_size=sample_size,
                                  progress=bar, workers=workers,
                                  expect=expectation(layout_of(target_coll), tgt.backend_name,
                                                     str(target_coll.metric)))
    finally:
        bar.finish()
        conns.close()



def _copy_partitions(src: Side, tgt: Side, specs: tuple[Any, Any], conns: Connections, state: State,
                     cp: Checkpoint | None, bar: Progress, *, workers: int, engine: str, ray_address: str | None,
                     sample_size: int, copier_args: dict[str, Any]) -> tuple[_Stats, Reservoir]:
    """The parallel copy (:mod:`.parallel`): partitions from the checkpoint or made now, their
    progress in the checkpoint, one progress line; (stats, the merged sample of copied ids)."""
    parts = partition_states(state, src.collection, workers)
    state.engine = engine
    saver = SharedSaver(state, parts, cp)

    def where() -> str:
        done = f"{state.position:,} of {state.source_count:,} records are copied"
        return done if cp is None else f"{done}, the checkpoint {cp.path} is kept: run again with --resume to continue"

    try:
        saver.save_now()  # the partitions are on disk before the first write
        bar.start("copy", state.source_count, sum(p.position for p in parts if p.done))
        if engine == "ray":
            from ..ray import copy_with_ray

            try:
                result = copy_with_ray(src, tgt, state, parts, saver, bar, workers=workers, address=ray_address,
                                       sample_size=sample_size, copier_args=copier_args)
            finally:  # the tasks wrote from other processes: this process's reads (verification) must see it
                tgt.collection._vb_written_elsewhere()
        else:
            result = copy_in_threads(src, tgt, specs, conns, state, parts, saver, bar, workers=workers,
                                     sample_size=sample_size, copier_args=copier_args, where=where)
        bar.finish()
    finally:
        saver.close()
    return result.stats, result.sampler
