"""The ``Client`` and ``Collection`` protocols: the contract every backend honours.

The docstrings here are the contract; :mod:`vecbridge.base` implements the shared
part (validation, score conversion, ordering) once, so that a backend only
translates.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .types import Hit, Partition, Record

__all__ = ["Client", "Collection"]

Vectors = Any  # a 2-D numpy array or a list of lists of numbers
Where = Any  # a filter dict, see vecbridge.filters


@runtime_checkable
class Collection(Protocol):
    """A named set of records of one dimension and one metric."""

    name: str
    dimension: int
    metric: str

    def add(self, ids: Sequence[str], vectors: Vectors | None = None,
            metadatas: Sequence[dict[str, Any] | None] | None = None,
            documents: Sequence[str | None] | None = None) -> None:
        """Insert records; an id that exists already raises ``DuplicateIdError`` and nothing is written.

        Without ``vectors``, a collection with an embedder embeds ``documents``."""

    def upsert(self, ids: Sequence[str], vectors: Vectors | None = None,
               metadatas: Sequence[dict[str, Any] | None] | None = None,
               documents: Sequence[str | None] | None = None) -> None:
        """Insert records, or replace whole records whose id exists (embedding documents as ``add``)."""

    def update(self, ids: Sequence[str], vectors: Vectors | None = None,
               metadatas: Sequence[dict[str, Any] | None] | None = None,
               documents: Sequence[str | None] | None = None) -> None:
        """Replace the given fields of existing records; a missing id raises ``RecordNotFoundError``.

        New ``documents`` without ``vectors`` are embedded again in a collection with an embedder."""

    def get(self, ids: Sequence[str] | None = None, where: Where = None, limit: int | None = None,
            offset: int | None = None, include: Sequence[str] | None = None) -> list[Record]:
        """Records by id (in the order given, unknown ids left out) and/or by filter."""

    def query(self, vectors: Vectors | None = None, k: int = 10, where: Where = None,
              include: Sequence[str] | None = None, *,
              text: str | Sequence[str] | None = None) -> list[Hit] | list[list[Hit]]:
        """The ``k`` nearest records, best first: one vector (or ``text=`` string) -> ``list[Hit]``;
        a 2-D batch (or a list of texts) -> a list of those."""

    def delete(self, ids: Sequence[str] | None = None, where: Where = None) -> None:
        """Delete by id, by filter, or both (AND); neither raises ``ValueError``."""

    def count(self, where: Where = None) -> int:
        """The exact number of records (matching ``where``)."""

    def scan(self, batch_size: int = 1000, include: Sequence[str] | None = None, *,
             partition: Partition | None = None) -> Iterator[list[Record]]:
        """Every record exactly once, in batches; memory is bounded by the batch.  With
        ``partition`` (from :meth:`partitions`), that partition's records only."""

    def partitions(self, n: int) -> list[Partition]:
        """At most ``n`` JSON-serialisable partitions that together hold every record exactly once."""

    def peek(self, n: int = 10) -> list[Record]:
        """The first ``n`` records."""


@runtime_checkable
class Client(Protocol):
    """A connection to one database (server or embedded); a context manager."""

    def create_collection(self, name: str, dimension: int | None = None, metric: str = "cosine",
                          index: dict[str, Any] | None = None, *, embedding: Any = None) -> Collection:
        """Create a collection; an existing name raises ``CollectionExistsError``.  With
        ``embedding=`` (a spec or an Embedder) the dimension is the embedder's and its spec is
        stored with the collection."""

    def get_collection(self, name: str, *, embedding: Any = None) -> Collection:
        """Open a collection; a missing one raises ``CollectionNotFoundError``; an ``embedding``
        other than the collection's raises ``EmbeddingMismatchError``."""

    def get_or_create_collection(self, name: str, dimension: int | None = None, metric: str = "cosine",
                                 index: dict[str, Any] | None = None, *, embedding: Any = None) -> Collection:
        """Open a collection, creating it first if it does not exist."""

    def list_collections(self) -> list[str]:
        """The names of every collection, sorted."""

    def delete_collection(self, name: str) -> None:
        """Delete a collection and its records."""

    def close(self) -> None:
        """Release connections and files; the client is unusable afterwards."""

    def __enter__(self) -> Client: ...

    def __exit__(self, *exc: object) -> None: ...


_ = np  # numpy arrays are what ``vector`` fields hold
