"""The vecbridge exception tree.

::

    VecbridgeError
    ├── InvalidURLError              the URL cannot be parsed or names no backend
    ├── BackendNotInstalledError     the backend's client library is missing (says what to pip install)
    ├── CollectionNotFoundError
    ├── CollectionExistsError
    ├── InvalidCollectionNameError   a name the backend cannot hold (the message gives its rule)
    ├── InvalidRecordError           ids / lengths / duplicates in one batch
    │   ├── DimensionMismatchError   a vector of the wrong dimension
    │   ├── InvalidVectorError       NaN, inf, a zero vector in a cosine collection
    │   └── InvalidMetadataError     a key or value the contract does not allow
    ├── InvalidFilterError           a ``where`` that is not valid filter language
    ├── UnsupportedFilterError       valid, but this backend cannot run it natively
    ├── UnsupportedFeatureError      an index type, metric or mode the backend lacks
    ├── DuplicateIdError             ``add`` of an id that exists already
    ├── RecordNotFoundError          ``update`` of an id that does not exist
    ├── EmbeddingMismatchError       an embedder other than the one that made a collection's vectors
    ├── EmbeddingError               the embedding model or endpoint failed or refused (key, model, dimension)
    ├── MigrationError               a migration refused before its first write, or a record it cannot
    │                                write (``problems`` lists every reason)
    └── BackendError                 the database failed; the native exception is ``__cause__``
        ├── BackendUnavailableError  what a retry can cure: refused or dropped connection, timeout,
        │                            a server that is starting (the only error a migration retries)
        ├── BackendLockedError       an embedded folder or file is held by another process
        └── RetriesExhaustedError    a migration's database stayed unavailable through every retry;
                                     the checkpoint allows ``--resume``

    KeyboardInterrupt                (Python's; outside the tree, so that ``except Exception`` never
    └── MigrationInterrupted         swallows Ctrl-C) Ctrl-C or SIGTERM stopped a migration; the
                                     message says how far it got and how to resume

Every message says what was wrong, where (batch position, metadata key, operator,
backend) and, where it helps, what to do.  Messages never contain a password.
The migration's errors are importable from :mod:`vecbridge.migrate` as well.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "BackendLockedError",
    "BackendNotInstalledError",
    "BackendUnavailableError",
    "CollectionExistsError",
    "CollectionNotFoundError",
    "DimensionMismatchError",
    "DuplicateIdError",
    "EmbeddingError",
    "EmbeddingMismatchError",
    "InvalidCollectionNameError",
    "InvalidFilterError",
    "InvalidMetadataError",
    "InvalidRecordError",
    "InvalidURLError",
    "InvalidVectorError",
    "MigrationError",
    "MigrationInterrupted",
    "RecordNotFoundError",
    "RetriesExhaustedError",
    "UnsupportedFeatureError",
    "UnsupportedFilterError",
    "VecbridgeError",
]


class VecbridgeError(Exception):
    """Base class of every error vecbridge raises."""


class InvalidURLError(VecbridgeError, ValueError):
    """The URL cannot be parsed, or its scheme names no known backend."""


class BackendNotInstalledError(VecbridgeError, ImportError):
    """The client library a backend needs is not installed."""


class CollectionNotFoundError(VecbridgeError, LookupError):
    """The named collection does not exist."""


class CollectionExistsError(VecbridgeError):
    """A collection of that name exists already."""


class InvalidCollectionNameError(VecbridgeError, ValueError):
    """A collection name the backend cannot hold; the message states the rule."""


class InvalidRecordError(VecbridgeError, ValueError):
    """A batch is malformed: bad ids, lengths that differ, an id twice."""


class DimensionMismatchError(InvalidRecordError):
    """A vector's dimension differs from the collection's."""


class InvalidVectorError(InvalidRecordError):
    """A vector holds NaN or inf, or is zero in a cosine collection."""


class InvalidMetadataError(InvalidRecordError):
    """A metadata key or value is not allowed by the contract."""


class InvalidFilterError(VecbridgeError, ValueError):
    """A ``where`` filter is not valid filter language."""


class UnsupportedFilterError(VecbridgeError):
    """A valid filter that this backend cannot run natively."""


class UnsupportedFeatureError(VecbridgeError):
    """An index type, metric or mode that this backend lacks."""


class DuplicateIdError(VecbridgeError):
    """``add`` was given an id that exists already; nothing was written."""


class RecordNotFoundError(VecbridgeError, LookupError):
    """``update`` was given an id that does not exist; nothing was written."""


class EmbeddingMismatchError(VecbridgeError):
    """A collection's vectors were made by another model or dimension than the embedder given."""


class EmbeddingError(VecbridgeError):
    """The embedding model or endpoint failed, or refused the request (a wrong key, model or
    dimension); the native exception is ``__cause__``, the message never holds the key."""


class BackendError(VecbridgeError):
    """The database failed.  The native exception is kept as ``__cause__``."""


class BackendUnavailableError(BackendError):
    """The database could not be reached for now: a refused or dropped connection, a timeout,
    a server that is starting.  The only error a migration retries."""


class BackendLockedError(BackendError):
    """An embedded database's folder or file is in use by another process; the message names
    the path and says what to do (close the other process, or use the database's server)."""


class RetriesExhaustedError(BackendError):
    """A migration's database stayed unavailable through every retry; the checkpoint allows ``--resume``."""


class MigrationError(VecbridgeError, ValueError):
    """The migration was refused before anything was written (or cannot go on as asked).

    ``problems`` lists every reason found, one sentence each.
    """

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class MigrationInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM in the command) stopped the copy; the message says how far it got.

    A ``KeyboardInterrupt``, not a :class:`VecbridgeError`: code that catches ``Exception``
    must not swallow an interruption."""
