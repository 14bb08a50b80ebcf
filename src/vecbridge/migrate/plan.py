"""Plan a migration before anything is written: names, shapes, batch size, checkpoint.

The planner reads the source's dimension, metric and count and looks at the
target: it picks the target collection's name (mapping a name the target backend
cannot hold to one it can), checks an existing target's dimension and metric,
decides between creating, resuming and writing into an existing collection, and
sizes the batches.  Whatever would stop the copy half-way is found here, before any
write, and listed in ``Plan.problems`` with what and why.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..capabilities import Capabilities, capabilities_of
from ..errors import CollectionNotFoundError, InvalidRecordError, InvalidURLError, UnsupportedFeatureError
from ..types import INCLUDE_ALL, Record
from ..validation import MAX_ID_BYTES, PORTABLE_NAME, size_violations, validate_batch
from .checkpoint import Checkpoint, State, default_path
from .endpoint import Side
from .report import Plan

__all__ = [
    "DEFAULT_REQUEST_BYTES",
    "MAX_ROWS",
    "NAMED_PROBLEMS",
    "SizeCheck",
    "check_records",
    "layout_of",
    "make_plan",
    "map_name",
    "record_bytes",
    "rows_per_batch",
    "scan_size_problems",
    "size_problems",
    "wire_bytes_per_float",
]

#: Bytes one request may carry: half of gRPC's default 4 MiB message limit, leaving room
#: for the protocol's own overhead and for records larger than the estimate.
DEFAULT_REQUEST_BYTES = 2 * 1024 * 1024
#: Rows per batch at most, whatever the dimension and the target's own limit.
MAX_ROWS = 5000
#: Records validated against the target before the copy starts.
PREFLIGHT_SAMPLE = 100
_FIXED_OVERHEAD = 64  # per record: field tags, lengths, separators


def wire_bytes_per_float(src: Side, tgt: Side) -> int:
    """The bytes one vector component takes on the wire of the slower side."""
    return max(src.capabilities.wire_bytes_per_float, tgt.capabilities.wire_bytes_per_float)


def limit_names(caps: Capabilities) -> list[str]:
    """The target's limits on a record's size, in words (empty: none but the contract's)."""
    out = [f"id at most {caps.max_id_bytes:,} bytes"] if caps.max_id_bytes < MAX_ID_BYTES else []
    out += [f"{what} at most {n:,} bytes" for what, n in (("document", caps.max_document_bytes),
                                                        ("metadata", caps.max_metadata_bytes)) if n is not None]
    if caps.max_request_bytes is not None:
        out.append(f"write request at most {caps.max_request_bytes:,} bytes")
    return out


def size_problems(records: Sequence[Record], caps: Capabilities, backend: str, vector_bytes: int = 0) -> list[str]:
    """One sentence per limit of the target that a record of ``records`` breaks, naming the record
    and the limit, in the order of the records.  ``vector_bytes``: a vector's size on the wire
    (for the target's request limit)."""
    found = [(i, f"record {records[i].id!r} cannot be written to the target: its {what} is {n:,} bytes, the "
                 f"{backend} target holds a {what} of at most {limit:,} bytes")
             for i, what, n, limit in size_violations([r.id for r in records], [r.metadata for r in records],
                                                      [r.document for r in records], max_id_bytes=caps.max_id_bytes,
                                                      max_document_bytes=caps.max_document_bytes,
                                                      max_metadata_bytes=caps.max_metadata_bytes,
                                                      metadata_bytes=caps.metadata_bytes)]
    if caps.max_request_bytes is not None:  # one record alone must fit in a request
        for i, r in enumerate(records):
            n = record_bytes(r, vector_bytes)
            if n > caps.max_request_bytes:
                found.append((i, f"record {r.id!r} cannot be written to the target: it takes about {n:,} bytes "
                                 f"in a write request, the {backend} target accepts requests of at most "
                                 f"{caps.max_request_bytes:,} bytes"))
    found.sort(key=lambda t: t[0])
    return [text for _, text in found]


#: Records named by a refusal at most; the others are counted.
NAMED_PROBLEMS = 20


class SizeCheck:
    """Collects the size problems of a stream of batches: the first ``NAMED_PROBLEMS`` named,
    every one counted (the same sentences for a dry run and a real one)."""

    def __init__(self, caps: Capabilities, backend: str, vector_bytes: int):
        self.caps, self.backend, self.vector_bytes = caps, backend, vector_bytes
        self.active = bool(limit_names(caps))
        self.named: list[str] = []
        self.total = 0

    def add(self, records: Sequence[Record]) -> list[str]:
        """Check ``records``; return the sentences newly named."""
        if not self.active:
            return []
        bad = size_problems(records, self.caps, self.backend, self.vector_bytes)
        self.total += len(bad)
        new = bad[:max(0, NAMED_PROBLEMS - len(self.named))]
        self.named += new
        return new

    def tail(self) -> list[str]:
        """The sentence counting the records not named, if any."""
        more = self.total - len(self.named)
        return [f"{more:,} more records break the target's size limits"] if more > 0 else []


def scan_missing_documents(source: Any, batch_size: int) -> list[str]:
    """Re-embedding needs every record's document: one sentence naming the records that have
    none (the first ``NAMED_PROBLEMS``) and counting them; empty when all have one."""
    missing: list[str] = []
    total = 0
    for batch in source.scan(batch_size=batch_size, include=["document"]):
        for r in batch:
            if r.document is None:
                total += 1
                if len(missing) < NAMED_PROBLEMS:
                    missing.append(repr(r.id))
    if not total:
        return []
    more = f" and {total - len(missing):,} more" if total > len(missing) else ""
    return [f"{total:,} records have no document to embed again: {', '.join(missing)}{more}; re-embedding "
            "needs a document in every record"]


def scan_size_problems(source: Any, caps: Capabilities, backend: str, batch_size: int,
                       vector_bytes: int = 0) -> list[str]:
    """Every record of ``source`` that breaks a size limit of the target (the first
    ``NAMED_PROBLEMS`` named, the others counted), read without vectors; ``[]`` when the
    target has no such limit."""
    check = SizeCheck(caps, backend, vector_bytes)
    if not check.active:
        return []
    for batch in source.scan(batch_size=batch_size, include=["metadata", "document"]):
        check.add(batch)
    return check.named + check.tail()


def record_bytes(record: Record, vector_bytes: int) -> int:
    """An estimate of the bytes ``record`` takes in a write request."""
    meta = record.metadata
    size = vector_bytes + _FIXED_OVERHEAD + len(record.id.encode("utf-8"))
    if meta:
        size += len(json.dumps(meta, ensure_ascii=False).encode("utf-8"))
    if record.document:
        size += len(record.document.encode("utf-8"))
    return size


def rows_per_batch(dimension: int, bytes_per_float: int, budget: int, sample: Sequence[Record] = (),
                   max_rows: int | None = None) -> int:
    """Rows that fit in ``budget`` bytes, from the dimension and the mean size of ``sample``'s other fields."""
    vector_bytes = dimension * bytes_per_float
    if sample:
        mean = sum(record_bytes(r, vector_bytes) for r in sample) / len(sample)
    else:
        mean = vector_bytes + _FIXED_OVERHEAD
    return int(max(1, min(MAX_ROWS, max_rows or MAX_ROWS, budget // max(mean, 1))))


def map_name(name: str, pattern: re.Pattern[str] = PORTABLE_NAME) -> str | None:
    """A name that ``pattern`` accepts, derived from ``name``; ``None`` when none is found.

    Characters outside ``[A-Za-z0-9_]`` become ``_``; a name not starting with a
    letter gets a ``c_`` prefix; a name too long is cut and given a short hash of
    the original so that two long names do not collide.
    """
    if pattern.fullmatch(name):
        return name
    digest = hashlib.sha1(name.encode("utf-8")).hexdigest()[:8]
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not s or not s[0].isalpha():
        s = "c_" + s
    s = s.rstrip("_") or "c"
    if len(s) > 63:
        s = s[:54].rstrip("_") + "_" + digest
    if len(s) < 3:
        s = s + "_" + digest[:4]
    for candidate in (s, s.lower(), s.lower()[:30].rstrip("_") + "_" + digest):
        if pattern.fullmatch(candidate):
            return candidate
    return None


def _location(side: Side) -> str:
    """The side as a checkpoint key: redacted URL with the collection as given."""
    if side.url is not None:
        return side.url.render()
    return f"{side.display}?collection={side.name or ''}"


def check_records(records: Sequence[Record], dimension: int, metric: str, vectors: bool = True) -> str | None:
    """Why ``records`` cannot be written to a collection of this shape, naming the first record
    at fault; or ``None``.  ``vectors=False``: the vectors are made anew (re-embedding), so
    only ids, metadata and documents are checked.  (The target's size limits: :class:`SizeCheck`.)"""
    if not records:
        return None

    def check(batch: Sequence[Record]) -> None:
        vecs = np.stack([np.asarray(r.vector, dtype=np.float32) for r in batch]) if vectors else None
        validate_batch([r.id for r in batch], vecs, [r.metadata or {} for r in batch], [r.document for r in batch],
                       dimension=dimension, metric=metric, require_vectors=vectors)

    try:
        check(records)
        return None
    except (InvalidRecordError, ValueError) as exc:
        for r in records:  # find the first record at fault, to name it
            try:
                check([r])
            except (InvalidRecordError, ValueError) as one:
                reason = re.sub(r"^(metadatas|documents|vectors|ids)\[0\]", r"its \1", str(one))
                return f"record {r.id!r} cannot be written to the target: {reason}"
        return f"the records cannot be written to the target: {exc}"


def target_name(src_name: str, tgt: Side, caps: Capabilities) -> tuple[str, str | None, list[str]]:
    """(name, mapped_from, problems) for the target collection."""
    pattern, rule, backend = caps.name_pattern, caps.name_rule, tgt.backend
    if tgt.name_given:
        assert tgt.name is not None
        return tgt.name, None, []
    mapped = map_name(src_name, pattern)
    if mapped is None:
        why = (f"the {backend} target cannot hold the collection name {src_name!r} (names are {rule}) "
               "and no name could be derived: add '?collection=NAME' to the target URL")
        return src_name, None, [why]
    return mapped, (src_name if mapped != src_name else None), []


def layout_of(coll: Any) -> str:
    """A collection's layout (``vecbridge``, ``native``, ``langchain``, ``llamaindex``)."""
    config = getattr(coll, "config", None)
    found = config.get("layout") if isinstance(config, dict) else None
    return str(found) if found else "vecbridge"


def make_plan(src: Side, tgt: Side, *, batch_size: int | None, max_request_bytes: int, resume: bool,
              restart: bool, into_existing: bool, verify: str,
              checkpoint: str | None | bool, reembed: Any = None, layout: str | None = None,
              strict: bool = False) -> tuple[Plan, State, Checkpoint | None]:
    """Look at both sides and decide; raise only when the source cannot be read at all.

    ``reembed``: an Embedder whose vectors replace the source's (the target gets its dimension);
    ``layout``: the target's layout asked for (``None``: an existing target's, else vecbridge's);
    ``strict``: any conversion refuses the copy (found by the pre-scan, :mod:`.prescan`)."""
    if not src.named():
        raise InvalidURLError(f"the source {src.display} names no collection: add '?collection=NAME' to its URL")
    source = src.collection
    dimension, metric, count = int(source.dimension), str(source.metric), int(source.count())
    source_dimension = dimension
    if reembed is not None:
        dimension = int(reembed.dimension)
    given = tgt.given_collection
    client = getattr(given, "_client", None) if given is not None else tgt.client()
    caps = capabilities_of(client)
    name, mapped_from, problems = target_name(source.name, tgt, caps)
    tgt.name = name
    notes: list[str] = []
    index = dict(getattr(source, "index", None) or {})
    if index.get("type") not in caps.index_types:
        index = {}  # the target's default index
    plan = Plan(source=src.display, target=tgt.display, source_collection=source.name, target_collection=name,
                dimension=dimension, metric=metric, source_count=count, index=index, mapped_from=mapped_from,
                verify=verify, problems=problems, notes=notes, max_request_bytes=max_request_bytes,
                reembed=None if reembed is None else str(reembed.spec), source_dimension=source_dimension,
                strict=strict)

    # The target collection: absent (create it) or present (it must match).
    target = given
    if target is None and client is not None and not problems:
        try:
            target = client.get_collection(name)
        except CollectionNotFoundError:
            target = None
        except UnsupportedFeatureError as exc:  # e.g. it exists in another layout than the URL's layout=
            problems.append(f"the target collection {name!r} cannot be written as asked: {exc}")
    backend = tgt.backend
    plan.target_layout = layout or (layout_of(target) if target is not None else "vecbridge")
    if target is not None:
        tgt.set_collection(target)
        if layout_of(target) != plan.target_layout:
            problems.append(f"the target collection {name!r} exists in the layout {layout_of(target)!r}, not "
                            f"{plan.target_layout!r}: choose another target collection, or its layout")
        plan.target_exists = True
        plan.target_count = int(target.count())
        if src.same_database(tgt) and target.name == source.name:
            problems.append("the source and the target are the same collection")
        if int(target.dimension) != dimension:
            problems.append(f"the target collection {name!r} exists with dimension {target.dimension}, "
                            f"the source's is {dimension}")
        if str(target.metric) != metric:
            problems.append(f"the target collection {name!r} exists with metric {target.metric!r}, "
                            f"the source's is {metric!r}")
    elif not problems:
        if not caps.name_pattern.fullmatch(name):
            problems.append(f"the {backend} target cannot hold the collection name {name!r}: names are "
                            f"{caps.name_rule}")
        if metric not in caps.metrics:
            problems.append(f"the {backend} target has no {metric!r} metric (it offers {', '.join(caps.metrics)}): "
                            "the source's scores could not be kept")
        max_dim = caps.max_dimension
        if max_dim is not None and dimension > int(max_dim):
            problems.append(f"the {backend} target holds vectors of at most {max_dim} dimensions, "
                            f"the source's have {dimension}")
    if tgt.in_memory:
        notes.append("the target is an in-memory database: the copy is gone when this process ends")

    # Batch size: rows from the dimension and the byte budget, unless given.
    sample = source.get(limit=min(PREFLIGHT_SAMPLE, count), include=list(INCLUDE_ALL)) if count else []
    src_caps = capabilities_of(getattr(source, "_client", None))
    bpf = max(src_caps.wire_bytes_per_float, caps.wire_bytes_per_float)
    budget = min(max_request_bytes, caps.max_request_bytes or max_request_bytes)
    if batch_size:
        plan.batch_size, plan.batch_rule = int(batch_size), "as given"
    else:
        plan.batch_size = rows_per_batch(dimension, bpf, budget, sample, caps.max_batch_rows)
        plan.batch_rule = (f"{budget / 2**20:g} MiB per request, {dimension} floats x {bpf} bytes "
                           f"plus ids, metadata and documents per record"
                           + (f", at most {caps.max_batch_rows:,} rows" if caps.max_batch_rows else ""))
    why = check_records(sample, dimension, metric, vectors=reembed is None)
    if why:
        problems.append(why)
    # Size limits are checked on every record, by the caller, once the plan holds (a scan).
    plan.size_limits = limit_names(caps)

    # Checkpoint and what to do with records already in the target.
    cp = None
    if checkpoint is not False:
        path = checkpoint if isinstance(checkpoint, str) else default_path(_location(src), _location(tgt))
        cp = Checkpoint(path)
        plan.checkpoint = str(cp.path)
    saved = cp.load() if cp is not None else None
    state = State(source=src.display, target=tgt.display, source_collection=source.name, target_collection=name,
                  dimension=dimension, metric=metric, source_count=count)
    if saved is not None and (saved.source_collection, saved.target_collection) != (source.name, name):
        problems.append(f"the checkpoint {plan.checkpoint} belongs to another migration "
                        f"({saved.source_collection!r} -> {saved.target_collection!r}): pass another --checkpoint")
        saved = None
    if saved is not None and not resume and not restart:
        problems.append(f"an interrupted migration left the checkpoint {plan.checkpoint} ({saved.position:,} of "
                        f"{saved.source_count:,} records copied): pass --resume to continue it or --restart "
                        "to copy everything again")
    if saved is not None and restart:
        state.created_target = saved.created_target and target is not None
        notes.append("--restart: the checkpoint is discarded and every record is copied again (upserts)")
    elif saved is not None and resume:
        state = saved
        state.created_target = saved.created_target and target is not None
        if target is None and saved.position:
            notes.append("the target collection of the interrupted run is gone: copying everything again")
            state.reset()
        elif saved.source_count != count or saved.dimension != dimension:
            notes.append(f"the source changed since the interrupted run ({saved.source_count:,} records then, "
                         f"{count:,} now): copying every record again (upserts: nothing is doubled)")
            state.reset()
        elif saved.created_target and plan.target_count < saved.position:
            notes.append(f"the target holds {plan.target_count:,} records, fewer than the {saved.position:,} the "
                         "checkpoint counts: copying every record again")
            state.reset()
        state.source_count = count
        plan.action, plan.resume_from = "resume", state.position
    elif resume:
        notes.append("--resume: no checkpoint found, so the copy starts at the first record")
    if saved is None and target is not None and plan.target_count:
        state.preexisting = plan.target_count  # held before this migration: may stay beside the copy
    if target is not None and plan.action != "resume":
        plan.action = "write into existing"
        if plan.target_count and not (resume or into_existing or state.created_target):
            problems.append(f"the target collection {name!r} already holds {plan.target_count:,} records: pass "
                            "--into-existing to upsert into it, or --resume to continue an interrupted migration")
    return plan, state, cp
