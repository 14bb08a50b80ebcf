"""Native partitions of a Qdrant collection: point-id ranges read with the ordered scroll.

Qdrant's scroll walks the points in id order (:func:`ops.order_key`: integer ids, then UUIDs)
and starts at any point id, so a partition is a range ``[lower, upper)`` of point ids (kind
``range``; ``None`` is open).  The split points come from a random sample of point ids
(Qdrant's ``SampleQuery``, server 1.11+ and local mode): the ``n - 1`` evenly spaced sample
quantiles.  Whatever the sample, the ranges are contiguous and cover the whole id space, so
together they return every point exactly once; the sample only decides how even they are.  A
collection of at most ``n * SAMPLE_PER_PARTITION`` points is sampled whole, so its split is
exact and the same every time.  Qdrant has no range condition on point ids, so a partition's
scan stops at ``upper`` itself (reading at most one page past it).

The bounds are point ids as Qdrant gives them (an ``int`` or a UUID string), JSON as they
are; ``extra`` says ``{"by": "point_id"}``.
"""

from __future__ import annotations

from typing import Any

from qdrant_client import models

from ...types import Partition
from .ops import Call, Ops, order_key

#: Sampled point ids per partition asked for.
SAMPLE_PER_PARTITION = 256
EXTRA = {"by": "point_id"}


def ours(partition: Partition) -> bool:
    """Whether this backend made ``partition`` (an id range of the ordered scroll)."""
    return partition.kind == "range" and partition.extra.get("by") == EXTRA["by"]


def split_points(ids: list[Any], n: int) -> list[Any]:
    """At most ``n - 1`` increasing point ids that cut ``ids`` (a sample) into ``n`` even parts."""
    keyed = sorted({order_key(i): i for i in ids}.items())
    out: list[Any] = []
    for i in range(1, n):
        j = round(i * len(keyed) / n)
        if 0 < j < len(keyed) and (not out or order_key(out[-1]) < keyed[j][0]):
            out.append(keyed[j][1])
    return out


def ops_partitions(name: str, n: int) -> Ops:
    """The partitions of collection ``name``: a count, then (for more than one) a sample."""
    whole = [Partition(name, 0, 1, "range", extra=dict(EXTRA))]
    if n == 1:
        return whole
    total = int((yield Call("count", "count", {"collection_name": name, "exact": True})).count)
    if total < 2:
        return whole
    answer = yield Call("sample point ids", "query_points", {
        "collection_name": name, "query": models.SampleQuery(sample=models.Sample.RANDOM),
        "limit": min(total, n * SAMPLE_PER_PARTITION), "with_payload": False, "with_vectors": False})
    bounds = [None, *split_points([p.id for p in answer.points], n), None]
    count = len(bounds) - 1
    return [Partition(name, i, count, "range", bounds[i], bounds[i + 1], dict(EXTRA)) for i in range(count)]
