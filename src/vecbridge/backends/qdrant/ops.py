"""The Qdrant collection's I/O as data, so that the sync and the async client share every decision.

Each collection hook is written once as an *ops generator* (``QdrantCollection._ops_*``):
it decides what to ask (the point ids, the filter, the payload selector, the page sizes,
where a partition stops) and yields each native request as a :class:`Call` -- the method of
``qdrant_client.QdrantClient`` / ``AsyncQdrantClient`` (the two have the same methods and
arguments) with its keyword arguments -- receiving the native answer back.  A scan also
yields its batches (``list[Record]``), which the driver hands to the caller.  The sync
collection drives the ops with its ``QdrantClient`` (:func:`run`, :func:`iterate`);
``aio.py`` drives the very same ops with an ``AsyncQdrantClient``.  Only the I/O differs.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from ...types import Record

__all__ = ["Call", "Ops", "collect", "iterate", "order_key", "rebatch", "run"]


@dataclass(frozen=True)
class Call:
    """One native request: ``getattr(native_client, method)(**kwargs)``; ``action`` names it in errors."""

    action: str
    method: str
    kwargs: dict[str, Any] = field(default_factory=dict)


#: Yields :class:`Call` (sent back its answer) and, in a scan, batches (sent back ``None``).
Ops = Generator[Any, Any, Any]


def run(ops: Ops, call: Callable[[Call], Any]) -> Any:
    """Drive ``ops`` that yield only calls; return what they return."""
    result = None
    while True:
        try:
            item = ops.send(result)
        except StopIteration as stop:
            return stop.value
        result = call(item)


def iterate(ops: Ops, call: Callable[[Call], Any]) -> Iterator[list[Record]]:
    """Drive the ops of a scan: the calls answered by ``call``, the batches handed out."""
    result = None
    while True:
        try:
            item = ops.send(result)
        except StopIteration:
            return
        if isinstance(item, Call):
            result = call(item)
        else:
            result = None
            yield item


def collect(ops: Ops) -> Ops:
    """``ops`` with their batches gathered into the one list they return (``yield from``)."""
    out: list[Record] = []
    result = None
    while True:
        try:
            item = ops.send(result)
        except StopIteration:
            return out
        if isinstance(item, Call):
            result = yield item
        else:
            result = None
            out += item


def rebatch(ops: Ops, size: int) -> Ops:
    """``ops`` whose batches come out in batches of exactly ``size`` (the last one shorter)."""
    held: list[Record] = []
    result = None
    while True:
        try:
            item = ops.send(result)
        except StopIteration:
            break
        if isinstance(item, Call):
            result = yield item
            continue
        result = None
        held += item
        start = 0
        while len(held) - start >= size:
            yield held[start:start + size]
            start += size
        del held[:start]
    if held:
        yield held


def order_key(point_id: Any) -> tuple[int, int]:
    """Where a point id sits in Qdrant's id order: every integer id before every UUID, integers
    by value, UUIDs by their 128-bit value.

    That is the server's order (``ExtendedPointId``: ``NumId(u64) < Uuid``, derived ``Ord``)
    and local mode's (``LocalCollection._universal_id`` sorts ``("", n)`` before ``(uuid, 0)``,
    and a canonical UUID string sorts as its number: fixed-width lower-case hex).
    """
    if isinstance(point_id, bool):
        raise TypeError(f"not a Qdrant point id: {point_id!r}")
    if isinstance(point_id, int):
        return (0, point_id)
    return (1, uuid.UUID(str(point_id)).int)
