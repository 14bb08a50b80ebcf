"""vecbridge: one Collection protocol for every vector database, chosen by URL.

>>> import vecbridge
>>> client = vecbridge.connect("faiss://")
>>> docs = client.create_collection("docs", dimension=3)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    BackendError,
    BackendLockedError,
    BackendNotInstalledError,
    BackendUnavailableError,
    CollectionExistsError,
    CollectionNotFoundError,
    DimensionMismatchError,
    DuplicateIdError,
    EmbeddingError,
    EmbeddingMismatchError,
    InvalidCollectionNameError,
    InvalidFilterError,
    InvalidMetadataError,
    InvalidRecordError,
    InvalidURLError,
    InvalidVectorError,
    RecordNotFoundError,
    UnsupportedFeatureError,
    UnsupportedFilterError,
    VecbridgeError,
)
from .protocol import Client, Collection
from .registry import register_backend
from .types import METRICS, Hit, Metric, Partition, Record
from .url import URL

if TYPE_CHECKING:
    from .migrate import MigrationReport

__version__ = "0.1.0"

__all__ = [
    "METRICS",
    "URL",
    "BackendError",
    "BackendLockedError",
    "BackendNotInstalledError",
    "BackendUnavailableError",
    "Client",
    "Collection",
    "CollectionExistsError",
    "CollectionNotFoundError",
    "DimensionMismatchError",
    "DuplicateIdError",
    "EmbeddingError",
    "EmbeddingMismatchError",
    "Hit",
    "InvalidCollectionNameError",
    "InvalidFilterError",
    "InvalidMetadataError",
    "InvalidRecordError",
    "InvalidURLError",
    "InvalidVectorError",
    "Metric",
    "Partition",
    "Record",
    "RecordNotFoundError",
    "UnsupportedFeatureError",
    "UnsupportedFilterError",
    "VecbridgeError",
    "connect",
    "migrate",
    "open_collection",
    "register_backend",
]


def connect(url: str | URL, **options: Any) -> Client:
    """Connect to the database named by ``url``.

    Query parameters of the URL become options; keyword arguments win over them.
    """
    from .registry import get_backend

    parsed = URL.parse(url)
    factory = get_backend(parsed.scheme)
    merged = parsed.options(**options)
    merged.pop("collection", None)
    return factory(parsed, **merged)  # type: ignore[no-any-return]


def open_collection(url: str | URL, *, dimension: int | None = None, metric: str = "cosine",
                    index: dict[str, Any] | None = None, embedding: Any = None, **options: Any) -> Collection:
    """Open the collection named by the URL's ``collection`` query parameter.

    With ``dimension`` (or ``embedding``) given, a missing collection is created.  Closing
    the collection closes the client opened for it.
    """
    parsed = URL.parse(url)
    name = options.pop("collection", None) or parsed.query.get("collection")
    client = connect(parsed, **options)
    if not name:
        name = getattr(client, "default_collection", None)
        if not name:
            client.close()
            raise InvalidURLError(f"{parsed} names no collection: add '?collection=NAME' to the URL")
    try:
        if dimension is None and embedding is None:
            coll = client.get_collection(str(name))
        else:
            coll = client.get_or_create_collection(str(name), dimension, metric, index,  # type: ignore[call-arg]
                                                   embedding=embedding)
    except BaseException:
        client.close()
        raise
    coll._owns_client = True  # type: ignore[attr-defined]
    return coll


def migrate(source_url: str | URL, target_url: str | URL, **kwargs: Any) -> MigrationReport:
    """Copy a collection between any two backends; see :func:`vecbridge.migrate.migrate`."""
    from .migrate import migrate as _migrate

    return _migrate(source_url, target_url, **kwargs)
