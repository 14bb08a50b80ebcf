"""Compare a target collection with its source: ``count``, ``sample`` or ``full``.

``count`` compares the numbers of records.  ``sample`` also compares, field by
field, records whose ids were drawn uniformly at random from the source (during
the copy, at no extra cost, or by an id-only scan).  ``full`` compares every
record, streamed in batches: the source is scanned, the same ids are fetched from
the target.  Vectors must agree within float32 rounding (1e-6 of the vector's
largest component); metadata values must have the same types and values (``1`` is
not ``1.0``, ``True`` is not ``1``); documents must be equal, ``None`` included.

A target in a framework layout (``langchain``, ``llamaindex``) is compared with what that
layout makes of the source's records (:func:`expectation`): each source record is encoded as
the target's backend encodes it before writing and decoded as it decodes after reading
(:class:`vecbridge.layouts.FrameworkLayout`), so a LlamaIndex ``_node_content`` whose id, text
and metadata the encoding refreshed is no difference (nodes are compared as the JSON they hold),
and node keys a LangChain layout leaves out (a loss the plan declared) are not expected in the
target; a value changed otherwise is.  A cosine target outside vecbridge's layout is compared
by the vectors' directions: Qdrant keeps such vectors normalised (its mapping says so), and a
cosine score depends on the direction alone.

Verification never passes on nothing: a record it set out to compare and could not
read back (a sampled id the source no longer finds, a scan that yields fewer records
than the source counts) is a difference, and the result says how many records were
compared.

``full`` with ``workers=N`` splits the source with ``partitions(N)`` and compares the
partitions at once, each in a thread that scans its part of the source while the
target's copies of the previous batch are fetched: verifying a parallel copy takes
about as long as the copy did, not N times longer.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ..errors import UnsupportedFeatureError, VecbridgeError
from ..layouts import FRAMEWORKS, FrameworkLayout, framework_layout
from ..mapping import to_metadata
from ..types import INCLUDE_ALL, Record
from .pipeline import Pipeline
from .progress import Progress
from .report import Mismatch, VerificationResult

__all__ = ["UNREAD", "VECTOR_RTOL", "Reservoir", "compare", "expectation", "verify_collections"]


#: Vectors match when every component differs by at most this much of the largest one.
VECTOR_RTOL = 1e-6
ALL = list(INCLUDE_ALL)


def _show(value: Any) -> str:
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    kind = "bool" if isinstance(value, bool) else type(value).__name__
    return f"{text} ({kind})"


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same types, also inside dicts and lists (``1 == 1.0`` is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def _vector_difference(a: Any, b: Any) -> str | None:
    if a is None or b is None:
        return None if a is None and b is None else f"{'source' if a is None else 'target'} has no vector"
    va, vb = np.asarray(a, dtype=np.float32).ravel(), np.asarray(b, dtype=np.float32).ravel()
    if va.shape != vb.shape:
        return f"dimension {va.shape[0]} != {vb.shape[0]}"
    if np.array_equal(va, vb):
        return None
    scale = float(max(np.abs(va).max(initial=0.0), np.abs(vb).max(initial=0.0)))
    diff = np.abs(va.astype(np.float64) - vb.astype(np.float64))
    bad = diff > VECTOR_RTOL * scale
    if not bad.any():
        return None
    i = int(np.argmax(diff))
    return (f"{int(bad.sum())} of {va.shape[0]} components differ; largest at [{i}]: "
            f"{float(va[i])!r} != {float(vb[i])!r}")


def _node_json(meta: dict[str, Any]) -> dict[str, Any]:
    """A LlamaIndex node (``_node_content``) compared as the JSON it holds, its own metadata by the
    contract's rule (:func:`vecbridge.mapping.to_metadata`): one serialiser's key order or spacing,
    or a backend keeping the node's metadata nested as the application wrote it where the
    record's keys are dotted, is no difference."""
    raw = meta.get("_node_content")
    if not isinstance(raw, str):
        return meta
    try:
        node = json.loads(raw)
    except ValueError:
        return meta
    if isinstance(node, dict) and isinstance(node.get("metadata"), dict):
        try:
            node["metadata"] = to_metadata(node["metadata"])
        except VecbridgeError:
            pass  # a value metadata cannot hold: compared as it is
    return {**meta, "_node_content": node}


def compare(src: Record, tgt: Record | None, dimension: int | None = None) -> list[Mismatch]:
    """The differences between a source record and the target's record of the same id.

    ``dimension``: the target's vectors were made anew (a re-embedding migration), so only
    their dimension is compared, not their values."""
    if tgt is None:
        return [Mismatch(src.id, "missing", "not in the target")]
    out = []
    if dimension is None:
        vec = _vector_difference(src.vector, tgt.vector)
    else:
        got = None if tgt.vector is None else int(np.asarray(tgt.vector).size)
        vec = None if got == dimension else f"the re-embedded vector has {got} dimensions, not {dimension}"
    if vec:
        out.append(Mismatch(src.id, "vector", vec))
    ma, mb = _node_json(src.metadata or {}), _node_json(tgt.metadata or {})
    if not _same(ma, mb):
        parts = []
        for key in sorted(set(ma) | set(mb)):
            if key not in mb:
                parts.append(f"{key!r} missing in the target")
            elif key not in ma:
                parts.append(f"{key!r} only in the target")
            elif not _same(ma[key], mb[key]):
                parts.append(f"{key!r}: {_show(ma[key])} != {_show(mb[key])}")
        out.append(Mismatch(src.id, "metadata", "; ".join(parts)))
    if src.document != tgt.document or type(src.document) is not type(tgt.document):
        out.append(Mismatch(src.id, "document", f"{_show(src.document)} != {_show(tgt.document)}"))
    return out


class Expectation:
    """How a target outside vecbridge's layout is compared with its source: each source record as
    the target's framework layout makes it (encode, then decode), and, for a cosine target, the
    vectors by direction (Qdrant keeps cosine vectors normalised outside vecbridge's layout, and
    a cosine score depends on nothing else)."""

    def __init__(self, layout: FrameworkLayout | None, directions: bool):
        self.layout, self.directions = layout, directions

    def _unit(self, rec: Record) -> Record:
        if not self.directions or rec.vector is None:
            return rec
        v = np.asarray(rec.vector, dtype=np.float64)
        norm = float(np.linalg.norm(v))
        return rec if norm == 0.0 else Record(rec.id, (v / norm).astype(np.float32), rec.metadata, rec.document)

    def source(self, rec: Record) -> Record:
        """What the source record ``rec`` is expected to read back as from the target."""
        if self.layout is not None:
            try:
                text, meta = self.layout.encode(rec.id, rec.document, rec.metadata)
            except VecbridgeError:
                text, meta = rec.document, dict(rec.metadata or {})  # the plan refused it; compared as it is
            document, metadata = self.layout.decode(text, meta)
            rec = Record(rec.id, rec.vector, metadata, document)
        return self._unit(rec)

    def target(self, rec: Record | None) -> Record | None:
        return None if rec is None else self._unit(rec)


#: What a source record is expected to be in the target (``None``: itself).
Expect = Expectation | None


def expectation(target_layout: str, backend: str, metric: str | None = None) -> Expect:
    """How to compare a source with a target in ``target_layout`` on ``backend`` (the target's own
    backend name) of ``metric``: ``None`` for vecbridge's layout (every value exactly as read)."""
    if target_layout == "vecbridge":
        return None
    layout = None
    if target_layout in FRAMEWORKS:
        try:
            layout = framework_layout(target_layout, backend)
        except UnsupportedFeatureError:
            layout = None  # no such target can exist; the plan refused it
    return Expectation(layout, metric == "cosine")


def _pair(expect: Expect, src: Record, tgt: Record | None) -> tuple[Record, Record | None]:
    return (src, tgt) if expect is None else (expect.source(src), expect.target(tgt))


class Reservoir:
    """A uniform random sample of ``size`` ids from a stream of ids (Vitter's algorithm R)."""

    def __init__(self, size: int, seed: int | None = None):
        self.size = size
        self.seen = 0
        self.ids: list[str] = []
        self._seed = seed
        self._rng = random.Random(seed)

    def reset(self) -> None:
        """Forget every id seen."""
        self.seen = 0
        self.ids = []
        self._rng = random.Random(self._seed)

    def add(self, ids: Iterable[str]) -> None:
        size, rng = self.size, self._rng
        for id_ in ids:
            self.seen += 1
            if len(self.ids) < size:
                self.ids.append(id_)
            else:
                j = rng.randrange(self.seen)
                if j < size:
                    self.ids[j] = id_


def _chunks(seq: Sequence[str], n: int) -> Iterable[Sequence[str]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


#: The Mismatch field of a source record that could not be read back to be compared.
UNREAD = "unread"


def _compare_ids(source: Any, target: Any, ids: Sequence[str], result: VerificationResult,
                 dimension: int | None = None, expect: Expect = None) -> None:
    src = {r.id: r for r in source.get(ids=list(ids), include=ALL)}
    tgt = {r.id: r for r in target.get(ids=list(ids), include=ALL)}
    for id_ in ids:
        if id_ not in src:
            # Deleted since it was drawn, or a source that cannot find its own ids: either
            # way this record was not compared, and an unverified record is no "ok".
            result.add(Mismatch(id_, UNREAD, "the source does not find this id (get(ids=...)): it was deleted "
                                            "during verification, or the source cannot read its own ids back"))
            continue
        result.checked += 1
        for m in compare(*_pair(expect, src[id_], tgt.get(id_)), dimension):
            result.add(m)


def _compare_scan(source: Any, target: Any, batch_size: int, step: Callable[[int], None],
                  reembedded: int | None, partition: Any = None, expect: Expect = None
                  ) -> tuple[int, list[Mismatch]]:
    """(records compared, differences) of one scan of ``source`` (or of one partition of it)."""
    checked, found_all = 0, []

    def pairs() -> Iterable[tuple[list[Record], list[Record]]]:
        for batch in source.scan(batch_size=batch_size, include=ALL, partition=partition):
            yield batch, target.get(ids=[r.id for r in batch], include=ALL)

    # The source scan and the target lookups of the next batch run while this one is compared.
    with Pipeline(pairs(), depth=2, name="vecbridge-verify") as items:
        for src_batch, tgt_batch in items:
            found = {r.id: r for r in tgt_batch}
            for rec in src_batch:
                checked += 1
                found_all += compare(*_pair(expect, rec, found.get(rec.id)), reembedded)
            step(len(src_batch))
    return checked, found_all


def _compare_all(source: Any, target: Any, batch_size: int, step: Callable[[int], None],
                 reembedded: int | None, workers: int, result: VerificationResult, expect: Expect = None) -> None:
    if workers <= 1:
        parts: list[Any] = [None]
    else:
        parts = list(source.partitions(workers))
    lock = threading.Lock()

    def locked_step(n: int) -> None:
        with lock:
            step(n)

    if len(parts) == 1:
        outcomes = [_compare_scan(source, target, batch_size, step, reembedded, parts[0], expect)]
    else:
        with ThreadPoolExecutor(max_workers=len(parts) or 1, thread_name_prefix="vecbridge-verify") as pool:
            futures = [pool.submit(_compare_scan, source, target, batch_size, locked_step, reembedded, p, expect)
                       for p in parts]
            outcomes = [f.result() for f in futures]
    for checked, mismatches in outcomes:
        result.checked += checked
        for m in mismatches:
            result.add(m)


def verify_collections(source: Any, target: Any, mode: str, *, batch_size: int = 500,
                       sample_ids: Sequence[str] | None = None, sample_size: int = 1000,
                       allow_extra: bool = False, progress: Progress | None = None,
                       seed: int | None = None, reembedded: int | None = None,
                       workers: int = 1, expect: Expect = None) -> VerificationResult:
    """Compare ``target`` with ``source`` in ``mode`` (``count``, ``sample`` or ``full``).

    Parameters
    ----------
    sample_ids
        For ``sample``: the ids to compare; drawn by an id-only scan of the source when ``None``.
    allow_extra
        The target held records before the copy (``--into-existing``): it may hold more than the source.
    reembedded
        The target's vectors were embedded again (``reembed=``) with this dimension: ids, metadata
        and documents are compared, and each vector's dimension.
    workers
        For ``full``: the source's partitions compared at once (``source.partitions(workers)``).
    expect
        What a source record is in the target (:func:`expectation`: a framework layout's
        conversions); ``None``: the record itself.
    """
    t0 = time.monotonic()
    result = VerificationResult(mode=mode)
    result.source_count = source.count()
    result.target_count = target.count()
    if result.target_count != result.source_count:
        if allow_extra and result.target_count > result.source_count:
            result.notes.append(f"the target holds {result.target_count - result.source_count:,} records more "
                                "than the source (it held records before the copy)")
        else:
            result.add(Mismatch("", "count", f"the source holds {result.source_count:,} records, "
                                             f"the target {result.target_count:,}"))
    step: Callable[[int], None] = progress.advance if progress is not None else (lambda n: None)
    if mode == "sample":
        if sample_ids is None:
            pool = Reservoir(sample_size, seed)
            for batch in source.scan(batch_size=max(batch_size, 1000), include=[]):
                pool.add(r.id for r in batch)
            sample_ids = pool.ids
        if progress is not None:
            progress.start("verify", len(sample_ids))
        for chunk in _chunks(list(sample_ids), batch_size):
            _compare_ids(source, target, chunk, result, reembedded, expect)
            step(len(chunk))
        wanted = min(sample_size, result.source_count)
        if len(sample_ids) < wanted:  # the source's scan gave fewer ids than it counts
            result.add(Mismatch("", UNREAD, f"the source counts {result.source_count:,} records but its scan gave "
                                            f"{len(sample_ids):,} ids: {wanted:,} should have been compared"))
    elif mode == "full":
        if progress is not None:
            progress.start("verify", result.source_count)
        _compare_all(source, target, batch_size, step, reembedded, workers, result, expect)
        if result.checked != result.source_count:
            result.add(Mismatch("", UNREAD, f"the source counts {result.source_count:,} records but its scan gave "
                                            f"{result.checked:,}: every record should have been compared"))
    elif mode != "count":
        raise ValueError(f"unknown verification mode {mode!r}")
    if progress is not None:
        progress.finish()
    result.seconds = time.monotonic() - t0
    return result
