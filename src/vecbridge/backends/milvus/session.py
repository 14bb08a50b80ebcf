"""Read timestamps of session consistency, shared by every Milvus client of this process.

Why shared: ``add`` checks for its ids and then writes, under the core's per-collection
lock (:mod:`vecbridge.locks`, keyed by ``MilvusClient.location`` and the collection).
That check, made through one client, must see what another client of the process wrote
just before, or the lock would serialise two adds that both find nothing.  So the
timestamp a read waits for is kept per collection of the process, not per client (see
``MilvusClient.read_consistency``).
"""

from __future__ import annotations

import threading

__all__ = ["READ_TIMESTAMPS", "READ_TIMESTAMPS_LOCK", "WRITE_COUNTS"]

#: (location, database, collection) -> the timestamp the next read must wait for, or
#: ``None``: read Strong (see MilvusClient.read_consistency).
READ_TIMESTAMPS: dict[tuple[str, str, str], int | None] = {}
#: (location, database, collection) -> writes so far: a Strong read that a write overlapped
#: does not make later reads cheap.
WRITE_COUNTS: dict[tuple[str, str, str], int] = {}
READ_TIMESTAMPS_LOCK = threading.Lock()
