"""What a migration did and what its verification found: plain dataclasses, ``to_dict()`` for ``--json``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The migration's errors live in the one exception tree (vecbridge.errors); named here too.
from ..errors import MigrationError, MigrationInterrupted, RetriesExhaustedError

__all__ = [
    "VERIFY_MODES",
    "MigrationError",
    "MigrationInterrupted",
    "MigrationReport",
    "Mismatch",
    "Plan",
    "RetriesExhaustedError",
    "VerificationResult",
]

#: Verification modes, cheapest first.
VERIFY_MODES = ("none", "count", "sample", "full")


@dataclass
class Mismatch:
    """One difference between a source record and the target's."""

    id: str
    field: str  # "missing", "vector", "metadata", "document", "count", "unread" (not compared)
    detail: str


@dataclass
class VerificationResult:
    """The outcome of comparing the target with the source.

    ``checked`` is the number of records compared field by field (0 for ``count``); a
    record that ``sample`` or ``full`` set out to compare and could not read back is a
    difference (field ``"unread"``), so ``ok`` never stands on fewer records than intended;
    ``mismatches`` holds the first differences found (at most ``limit``), and
    ``mismatch_count`` how many there were in all.
    """

    mode: str
    ok: bool = True
    checked: int = 0
    source_count: int = 0
    target_count: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    mismatch_count: int = 0
    #: Records set out to be compared that could not be read back (counted in ``mismatch_count``).
    unread: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    limit: int = 100

    def add(self, mismatch: Mismatch) -> None:
        self.ok = False
        self.mismatch_count += 1
        if mismatch.field == "unread" and mismatch.id:
            self.unread += 1
        if len(self.mismatches) < self.limit:
            self.mismatches.append(mismatch)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.pop("limit")
        return out

    def summary(self) -> str:
        counts = f"source {self.source_count:,} records, target {self.target_count:,}"
        what = f"{self.checked:,} records compared field by field, " if self.mode in ("sample", "full") else ""
        if self.ok:
            return f"verification ({self.mode}): ok - {what}{counts}"
        unread = f"{self.unread:,} could not be read back, " if self.unread else ""
        return f"verification ({self.mode}): FAILED - {self.mismatch_count:,} difference(s); {what}{unread}{counts}"


@dataclass
class Plan:
    """What a migration will do, decided before anything is written."""

    source: str  # redacted URL (or description of an object given)
    target: str
    source_collection: str
    target_collection: str
    dimension: int
    metric: str
    source_count: int
    index: dict[str, Any] = field(default_factory=dict)
    mapped_from: str | None = None  # the source's name when the target cannot hold it
    target_exists: bool = False
    target_count: int = 0
    action: str = "create"  # "create", "write into existing", "resume"
    resume_from: int = 0
    batch_size: int = 0
    batch_rule: str = ""
    max_request_bytes: int = 0
    checkpoint: str | None = None
    verify: str = "sample"
    #: Re-embedding: the spec of the model that makes the target's vectors (the source's dimension
    #: was ``source_dimension``).
    reembed: str | None = None
    source_dimension: int = 0
    #: The target's limits on a record's size, checked for every record before the first write.
    size_limits: list[str] = field(default_factory=list)
    #: The layouts (``vecbridge``, ``native``, ``langchain``, ``llamaindex``) of the source and of the
    #: target (the one to create, or the existing collection's); ``mapping``: the source's mapping in
    #: words when it is not in vecbridge's layout.
    source_layout: str = "vecbridge"
    target_layout: str = "vecbridge"
    mapping: list[str] = field(default_factory=list)
    #: Every record was read before the first write (the pre-scan) and the conversions below counted.
    scanned: bool = False
    #: Conversions by rule with their counts: made reading the source (its ``to_metadata``), made
    #: writing the target's framework layout (its ``encode``); ``losses``: what the target's layout
    #: cannot carry from the source's, in words.  ``reads_counted``: the source's backend counts its
    #: read conversions (else the plan cannot list them, and ``strict`` refuses).
    read_conversions: dict[str, int] = field(default_factory=dict)
    write_conversions: dict[str, int] = field(default_factory=dict)
    losses: list[str] = field(default_factory=list)
    #: What a target outside vecbridge's layout says of itself (its mapping's notes: what it gives up,
    #: refuses, or filters otherwise), once it is open.
    target_notes: list[str] = field(default_factory=list)
    reads_counted: bool = True
    #: ``--strict``: any conversion refuses the copy before anything is written.
    strict: bool = False
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def conversion_lines(self) -> list[str]:
        """Every conversion counted, one line each (empty: none, or no pre-scan)."""
        return ([f"{n:,} {rule} (reading the source)" for rule, n in self.read_conversions.items()]
                + [f"{n:,} {rule} (writing the target's {self.target_layout} layout)"
                   for rule, n in self.write_conversions.items()])

    def layout_lines(self) -> list[str]:
        """The layouts, the source's mapping, the conversions and losses, for people."""
        lines = [f"layout:     source {self.source_layout}, target {self.target_layout}"
                 + (" (--strict: any conversion refuses the copy)" if self.strict else "")]
        lines += [f"mapping:    {m}" for m in self.mapping]
        converted = self.conversion_lines()
        if converted:
            lines += [f"converted:  {c}" for c in converted]
        elif self.scanned and self.reads_counted and (self.source_layout, self.target_layout) != ("vecbridge",
                                                                                                  "vecbridge"):
            lines.append("converted:  nothing: every value is carried as it is")
        lines += [f"not carried: {loss}" for loss in self.losses]
        lines += [f"the target: {note}" for note in self.target_notes]
        return lines

    def describe(self) -> list[str]:
        """The plan as lines of text for people."""
        name = self.target_collection
        if self.mapped_from:
            name += f" (mapped from {self.mapped_from!r}: the target cannot hold that name)"
        lines = [
            f"source:     {self.source}",
            (f"            collection {self.source_collection!r}: {self.source_count:,} records, "
             f"dimension {self.dimension}, metric {self.metric}"),
            f"target:     {self.target}",
            f"            collection {name}",
        ]
        if self.action == "create":
            index = self.index.get("type", "default")
            lines.append(f"action:     create the target collection (dimension {self.dimension}, metric {self.metric}, "
                         f"index {index}) and copy {self.source_count:,} records")
        elif self.action == "resume":
            lines.append(f"action:     resume: {self.resume_from:,} records are copied already, "
                         f"{max(self.source_count - self.resume_from, 0):,} to go")
        else:
            lines.append(f"action:     upsert {self.source_count:,} records into the existing collection, "
                         f"which holds {self.target_count:,}")
        if self.reembed:
            lines.append(f"vectors:    embedded again from the documents by {self.reembed} ({self.dimension} "
                         f"dimensions; the source's have {self.source_dimension})")
        lines.append(f"batches:    {self.batch_size:,} records ({self.batch_rule})")
        lines += self.layout_lines()
        if self.size_limits:
            lines.append(f"limits:     the target holds a record's {', '.join(self.size_limits)}: every record "
                         "is checked before the first write")
        lines.append(f"checkpoint: {self.checkpoint or 'none'}")
        lines.append(f"verify:     {self.verify}")
        lines += [f"note:       {n}" for n in self.notes]
        lines += [f"PROBLEM:    {p}" for p in self.problems]
        return lines


@dataclass
class MigrationReport:
    """The result of :func:`vecbridge.migrate`.

    Attributes
    ----------
    source, target
        The URLs, with passwords and api keys shown as ``***``.
    source_collection, target_collection
        The collection names; ``mapped_from`` is the source's name when the target
        could not hold it and the tool chose ``target_collection`` instead.
    records_copied
        Records written by this run.
    records_skipped
        Records not written again because an earlier, interrupted run had copied
        them (``--resume``).
    records_total
        Records in the source when the run began.
    seconds, records_per_second
        Wall time of the copy (without verification) and ``records_copied / seconds``.
    verification
        What was compared and what differed (``None`` with ``verify="none"`` or a dry run).
    """

    source: str
    target: str
    source_collection: str
    target_collection: str
    mapped_from: str | None = None
    records_copied: int = 0
    records_skipped: int = 0
    records_total: int = 0
    seconds: float = 0.0
    records_per_second: float = 0.0
    batch_size: int = 0
    resumed: bool = False
    retries: int = 0
    dry_run: bool = False
    checkpoint: str | None = None
    verification: VerificationResult | None = None
    plan: Plan | None = None
    notes: list[str] = field(default_factory=list)
    #: Partitions copied at once (1: one stream), how (``threads`` or ``ray``), and the partitions.
    workers: int = 1
    engine: str = "threads"
    partitions: int = 0

    @property
    def ok(self) -> bool:
        """True unless the plan found problems or verification found differences."""
        if self.plan is not None and self.plan.problems:
            return False
        return self.verification is None or self.verification.ok

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (URLs redacted)."""
        out = asdict(self)
        if self.verification is not None:
            out["verification"] = self.verification.to_dict()
        out["ok"] = self.ok
        return out

    def summary(self) -> list[str]:
        """The report as lines of text for people."""
        if self.dry_run:
            return (self.plan.describe() if self.plan else []) + ["dry run: nothing was written"]
        name = repr(self.target_collection) + (f" (mapped from {self.mapped_from!r})" if self.mapped_from else "")
        lines = [(f"copied {self.records_copied:,} records in {self.seconds:.2f} s "
                  f"({self.records_per_second:,.0f} records/s)"),
                 f"  from {self.source} collection {self.source_collection!r}",
                 f"  to   {self.target} collection {name}"]
        if self.plan is not None:
            lines += [f"  {line}" for line in self.plan.layout_lines()]
        if self.partitions:
            lines.append(f"  {self.partitions} partitions, {self.workers} at once ({self.engine})")
        if self.records_skipped:
            lines.append(f"  skipped {self.records_skipped:,} records copied by the interrupted run (resumed)")
        if self.retries:
            lines.append(f"  recovered from {self.retries} transient error(s)")
        lines += [f"  note: {n}" for n in self.notes]
        if self.verification is not None:
            lines.append(self.verification.summary())
            for m in self.verification.mismatches[:20]:
                lines.append(f"  {m.id!r}: {m.field}: {m.detail}")
            more = self.verification.mismatch_count - min(20, len(self.verification.mismatches))
            if more > 0:
                lines.append(f"  ... and {more:,} more")
        else:
            lines.append("verification: none")
        return lines

    def __str__(self) -> str:
        return "\n".join(self.summary())
