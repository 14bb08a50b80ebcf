"""Native partitions of a FAISS collection: ranges of SQLite row ids.

Why row ids: they are the ``records`` table's integer primary key, so a range is read in key
order straight off the table's b-tree (``scan(partition=p)`` is the ordinary scan with an
upper bound), and they are never reused (``AUTOINCREMENT``, see :mod:`.store`), so a range
means the same rows in every process that reads it.

Why *sampled* split points: SQLite keeps no statistics that give quantiles, and walking the
table itself reads every vector.  The sample is drawn from the id index instead (every row's
``rid`` is in it, and it is small), with a multiplicative hash of the rid, so that a regular
pattern of deleted rows (every other one, say) does not skew it.  Small collections use every
row id: the split is then exact.  The first partition is open below and the last open above,
so that together they hold every record, also one written after the split was made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...types import Partition

if TYPE_CHECKING:
    from .store import Store

__all__ = ["SAMPLE_PER_PARTITION", "bounds", "rid_partitions"]

#: Row ids sampled per partition wanted: enough that partitions differ in size by a few percent.
SAMPLE_PER_PARTITION = 256
KEY = "rid"


def rid_partitions(store: Store, name: str, n: int) -> list[Partition]:
    """At most ``n`` row-id ranges of about equal size (one for an empty collection)."""
    count = store.count(None)
    if n <= 1 or count <= 1:
        return [Partition(name, 0, 1, "range", None, None, {"key": KEY})]
    sample = store.sample_rids(count, SAMPLE_PER_PARTITION * n)
    parts = min(n, len(sample))
    # split points: the sample's quantiles; a duplicate would make an empty range
    cuts = sorted({int(sample[(i * len(sample)) // parts]) for i in range(1, parts)})
    edges: list[int | None] = [None, *cuts, None]
    total = len(edges) - 1
    return [Partition(name, i, total, "range", edges[i], edges[i + 1], {"key": KEY}) for i in range(total)]


def bounds(partition: Partition) -> tuple[int, int | None]:
    """``(after, upper)`` for the scan: rids greater than ``after``, below ``upper`` (None: no end)."""
    if partition.kind != "range" or partition.extra.get("key") != KEY:
        raise ValueError(f"faiss: this {partition.kind!r} partition was not made by a FAISS collection's "
                         "partitions(n); make it with collection.partitions(n)")
    lower, upper = partition.lower, partition.upper
    for value in (lower, upper):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"faiss: a partition's row-id bounds are integers, not {value!r}")
    return (int(lower) - 1 if lower is not None else 0), upper  # rids start at 1
