"""The plan's pre-scan: every source record read once, before the first write.

A copy that would stop half-way, or change what it carries, must say so before it writes.
One scan of the source (without vectors unless a check needs them) finds:

- the records that break a size limit of the target (:class:`~.plan.SizeCheck`);
- in a dry run, every record that the contract's validation refuses (:func:`~.plan.check_records`);
- the **read conversions** of a source vecbridge did not create: its backend counts what
  :func:`vecbridge.mapping.to_metadata` converted in ``collection.conversions``; the scan reads
  every record once, so the counter's growth over the scan is the count for the whole source
  (nothing is read twice);
- the **write conversions** of a framework layout target: its
  :meth:`~vecbridge.layouts.FrameworkLayout.encode`, run here on every record with a
  :class:`~vecbridge.mapping.Conversions` (what the target's backend will run on the same
  records), plus :func:`vecbridge.layouts.carry_notes`;
- the **target's refusals**: the core's id rule for a native key (:func:`vecbridge.mapping.id_to_native`)
  and the target collection's ``_vb_check_batch`` (a backend's own refusal of a value its native
  schema cannot take), on every batch; a refusal names the record and what.

Why the conversions of a source without a counter are not guessed: the records the scan sees
are already converted (a dotted key may have been a nested object or a key with a dot; a left-out
null leaves no trace), so only the backend that read the native values can count them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ..base import BaseCollection
from ..errors import InvalidRecordError, UnsupportedFeatureError
from ..layouts import FRAMEWORKS, carry_notes, framework_layout
from ..mapping import CollectionMapping, Conversions, id_to_native
from ..types import INCLUDE_ALL, Record
from ..validation import Batch, validate_batch
from .copier import _naming
from .plan import NAMED_PROBLEMS, SizeCheck, check_records, layout_of
from .progress import Progress
from .report import Plan

__all__ = ["Prescan", "checks_target", "mapping_lines", "prepare_layouts", "strict_problems", "target_notes"]


def mapping_lines(coll: Any, backend: str) -> list[str]:
    """The source's mapping in words when it is not in vecbridge's layout (empty when it is)."""
    layout = layout_of(coll)
    if layout == "vecbridge":
        return []
    if layout in FRAMEWORKS:
        try:
            return framework_layout(layout, backend).describe()
        except UnsupportedFeatureError:
            pass
    mapping = getattr(coll, "mapping", None)
    return mapping.describe() if isinstance(mapping, CollectionMapping) else [f"layout:   {layout}"]


def _reads_nothing_to_convert(coll: Any) -> bool:
    """A native collection whose mapping has no metadata at all (a FAISS index file) converts nothing."""
    m = getattr(coll, "mapping", None)
    return isinstance(m, CollectionMapping) and not (m.metadata_field or m.metadata_fields or m.free_keys)


def prepare_layouts(plan: Plan, source: Any, src_backend: str, tgt_backend: str) -> None:
    """The layout parts of ``plan`` known before the scan: the source's layout and mapping, the
    target layout's availability on its backend, and what a copy between the layouts cannot carry."""
    plan.source_layout = layout_of(source)
    plan.mapping = mapping_lines(source, src_backend)
    if plan.target_layout in FRAMEWORKS:
        try:
            framework_layout(plan.target_layout, tgt_backend)
        except UnsupportedFeatureError as exc:
            plan.problems.append(f"the target cannot be made in the layout {plan.target_layout!r}: {exc}")
    plan.losses = carry_notes(plan.source_layout, plan.target_layout)
    counter = getattr(source, "conversions", None)
    plan.reads_counted = (plan.source_layout == "vecbridge" or isinstance(counter, Counter)
                          or _reads_nothing_to_convert(source))
    if not plan.reads_counted:
        plan.notes.append(f"the {src_backend} source does not count the conversions its reads make (nested objects "
                          "as dotted keys, nulls left out, dates as strings): the plan cannot list them")


def target_notes(target: Any, backend: str) -> list[str]:
    """What a target outside vecbridge's layout says of itself beyond its layout's description (its
    mapping's notes: e.g. Qdrant's normalised cosine vectors, what Chroma refuses), for the plan."""
    mapping = getattr(target, "mapping", None)
    layout = layout_of(target)
    if layout == "vecbridge" or not isinstance(mapping, CollectionMapping):
        return []
    described: set[str] = set()
    if layout in FRAMEWORKS:
        try:
            described = set(framework_layout(layout, backend).describe())
        except UnsupportedFeatureError:
            pass
    return [note for note in mapping.notes if note not in described]


def checks_target(target: Any) -> bool:
    """Whether ``target`` can refuse a record the core's validation accepts: a collection outside
    vecbridge's layout with a native key of integers or UUIDs, or a ``_vb_check_batch`` of its
    backend's own.  A collection in vecbridge's layout holds every record the contract accepts
    (its size limits are checked apart), so it is not asked: a copy between two of them reads
    the source once."""
    if target is None or layout_of(target) == "vecbridge":
        return False
    mapping = getattr(target, "mapping", None)
    if isinstance(mapping, CollectionMapping) and mapping.id_kind in ("int", "uuid"):
        return True
    hook = getattr(type(target), "_vb_check_batch", None)
    return hook is not None and hook is not BaseCollection._vb_check_batch


class Prescan:
    """One pass over the source's records; what it finds goes into ``plan``.

    ``validate``: check every record with the contract's validation too (a dry run);
    ``target``: a target collection whose own refusals are asked (:func:`checks_target`);
    ``count``: count the conversions (the first scan; a later hook-only scan does not);
    ``layout_backend``: the target backend's own name, for its framework layout (default ``tgt_backend``)."""

    def __init__(self, plan: Plan, tgt_caps: Any, tgt_backend: str, vector_bytes: int, *, validate: bool = False,
                 target: Any = None, count: bool = True, layout_backend: str | None = None):
        self.plan = plan
        self.sizes = SizeCheck(tgt_caps, tgt_backend, vector_bytes) if count else None
        self.validate = validate
        self.target = target if checks_target(target) else None
        self.count = count
        self.encoder = (framework_layout(plan.target_layout, layout_backend or tgt_backend)
                        if count and plan.target_layout in FRAMEWORKS and not plan.problems else None)
        self.written = Conversions()
        self.invalid = 0
        self.refused = 0

    @property
    def include(self) -> list[str]:
        vectors = (self.validate or self.target is not None) and self.plan.reembed is None
        return list(INCLUDE_ALL) if vectors else ["metadata", "document"]

    def run(self, source: Any, progress: Progress | None = None) -> None:
        plan = self.plan
        counter = getattr(source, "conversions", None)
        before = Counter(counter) if isinstance(counter, Counter) and self.count else None
        if progress is not None:
            progress.start("check", plan.source_count)
        for batch in source.scan(batch_size=max(plan.batch_size, 1), include=self.include):
            self._batch(batch)
            if progress is not None:
                progress.advance(len(batch))
        if progress is not None:
            progress.finish()
        if self.sizes is not None:
            plan.problems += self.sizes.tail()
        if self.invalid > NAMED_PROBLEMS:
            plan.notes.append(f"{self.invalid - NAMED_PROBLEMS:,} more batches hold a record that cannot be written")
        if self.refused > NAMED_PROBLEMS:
            plan.problems.append(f"{self.refused - NAMED_PROBLEMS:,} more batches hold a record the target refuses")
        if not self.count:
            return
        plan.scanned = True
        if before is not None:
            grown: Counter[str] = Counter(counter) - before  # type: ignore[arg-type]
            plan.read_conversions = {k: int(v) for k, v in sorted(grown.items())}
        plan.write_conversions = {k: int(v) for k, v in sorted(self.written.items())}
        if plan.strict:
            plan.problems += strict_problems(plan)

    def _batch(self, batch: list[Record]) -> None:
        plan = self.plan
        if self.sizes is not None:
            plan.problems += self.sizes.add(batch)
        if self.validate:
            why = check_records(batch, plan.dimension, plan.metric, vectors=plan.reembed is None)
            if why:
                self.invalid += 1
                if self.invalid <= NAMED_PROBLEMS:
                    plan.problems.append(why)
        if self.encoder is not None:
            for r in batch:
                try:
                    self.encoder.encode(r.id, r.document, r.metadata, self.written)
                except InvalidRecordError as exc:
                    self._refuse(f"record {r.id!r} cannot be written to the target's {plan.target_layout} layout: "
                                 f"{exc}")
        if self.target is not None:
            why = self._target_refusal(batch)
            if why:
                self._refuse(why)

    def _refuse(self, why: str) -> None:
        self.refused += 1
        if self.refused <= NAMED_PROBLEMS:
            self.plan.problems.append(why)

    def _target_refusal(self, records: list[Record]) -> str | None:
        """Why the target refuses ``records`` (the first record at fault named), or ``None``."""
        target, plan = self.target, self.plan
        assert target is not None
        vectors = None if plan.reembed is not None else [r.vector for r in records]
        try:
            b: Batch = validate_batch([r.id for r in records], vectors, [r.metadata or {} for r in records],
                                      [r.document for r in records], dimension=plan.dimension, metric=plan.metric,
                                      require_vectors=vectors is not None)
        except (InvalidRecordError, ValueError):
            return None  # the contract's own refusal: check_records names it (sample, dry run, the copy)
        mapping = getattr(target, "mapping", None)
        if isinstance(mapping, CollectionMapping) and mapping.id_kind in ("int", "uuid"):
            for id_ in b.ids:  # the core's rule for a native key (CONTRACT §7)
                try:
                    id_to_native(id_, mapping.id_kind, f"the target's key {mapping.id_field or 'id'!r}")
                except InvalidRecordError as exc:
                    return f"record {id_!r} cannot be written to the target: {exc}"
        try:
            target._vb_check_batch(b)
        except InvalidRecordError as exc:
            why = _naming(records, exc)  # the record it names, by its id
            return why if why.startswith("record ") else f"the target refuses a record: {why}"
        return None


def strict_problems(plan: Plan) -> list[str]:
    """``--strict``: every conversion the plan counted, as one refusal (nothing is written)."""
    found = [f"{n:,} {rule} (reading the source)" for rule, n in plan.read_conversions.items() if n]
    found += [f"{n:,} {rule} (writing the target's {plan.target_layout} layout)"
              for rule, n in plan.write_conversions.items() if n]
    out = []
    if found:
        out.append("--strict: the copy would not carry every value as it is: " + "; ".join(found)
                   + "; run without --strict to accept these conversions")
    if not plan.reads_counted:
        out.append("--strict: the source's backend does not count the conversions its reads make, so the copy "
                   "cannot be shown to carry every value as it is; run without --strict")
    return out
