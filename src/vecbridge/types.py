"""Value types shared by every backend."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Union

import numpy as np

__all__ = ["INCLUDE_ALL", "METRICS", "Hit", "Include", "MetadataValue", "Metric", "Partition", "Record"]

Metric = Literal["cosine", "l2", "ip"]
#: The metric names of the contract.
METRICS: tuple[str, ...] = ("cosine", "l2", "ip")

Include = Literal["vector", "metadata", "document"]
INCLUDE_ALL: tuple[str, ...] = ("vector", "metadata", "document")

Scalar = Union[str, int, float, bool]
MetadataValue = Union[Scalar, list[str], list[int], list[float], list[bool]]


def _eq_vec(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return bool(np.array_equal(a, b))


@dataclass(frozen=True, eq=False)
class Record:
    """One stored record.

    Fields that were not asked for with ``include`` are ``None``.
    """

    id: str
    vector: np.ndarray | None = None
    metadata: dict[str, Any] | None = None
    document: str | None = None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (
            self.id == other.id
            and _eq_vec(self.vector, other.vector)
            and self.metadata == other.metadata
            and self.document == other.document
        )

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True, eq=False)
class Hit:
    """One query result.

    ``distance`` is lower-is-closer and ``score`` higher-is-closer, with the same
    meaning on every backend (see the score table of the contract).
    """

    id: str
    score: float
    distance: float
    metadata: dict[str, Any] | None = None
    document: str | None = None
    vector: np.ndarray | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Partition:
    """One part of a collection (``collection.partitions(n)``), read by ``scan(partition=p)``.

    ``kind`` says how the backend split it: ``range`` (keys from ``lower``, inclusive, to
    ``upper``, exclusive; ``None`` is open), ``offset`` (positions ``lower`` to ``upper`` of a
    stable order) or ``hash`` (the records whose id hashes to ``index`` modulo ``count``).
    Together the ``count`` partitions of one call hold every record exactly once.  A partition
    pickles and turns into JSON and back, so that another process or machine can read it.
    """

    collection: str
    index: int
    count: int
    kind: str
    lower: Any = None
    upper: Any = None
    #: The backend's own details (a key field's name, a Milvus partition, …), JSON values only.
    extra: dict[str, Any] = field(default_factory=dict, hash=False)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Partition:
        data = json.loads(text)
        if not isinstance(data, dict) or {"collection", "index", "count", "kind"} - set(data):
            raise ValueError(f"not a vecbridge partition: {text[:200]!r}")
        return cls(**data)
