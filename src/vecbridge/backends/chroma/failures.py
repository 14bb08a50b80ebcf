"""Chroma's native exceptions -> vecbridge's error classes: the backend's one error table.

chromadb gives types for most failures (``chromadb.errors``; an HTTP error body names
its type and the client raises that type).  Three need more than a type:

* a dropped or refused connection is an ``httpx.TransportError``, but chromadb raises
  ``ValueError("Could not connect to a Chroma server…")`` from inside ``except
  httpx.ConnectError`` when it (re)connects (``chromadb/api/client.py``,
  ``_validate_tenant_database`` and ``get_user_identity``): such a ``ValueError`` is told
  by the transport error in its ``__context__``, never by its words;
* a collection name taken already comes back from Chroma's Rust frontend as a plain
  ``ChromaError`` (server) or an ``InternalError`` (embedded), not as the
  ``UniqueConstraintError`` chromadb defines (seen with chromadb 1.5.9, both forms): only
  the message of the Rust engine (``chromadb_rust_bindings``, the frontend's
  create-collection error: ``"Collection [NAME] already exists"``) tells it, so
  :func:`_engine_error` matches it;
* ``NotFoundError`` names a missing collection, tenant or database alike; only its
  message (``"Collection [NAME] does not exist"``, ``"Tenant [NAME] not found"``…) tells
  which, so :func:`_not_found` makes it ``CollectionNotFoundError`` unless it names a
  tenant or a database;
* a read that meets a write of the same records can fail with ``"Error finding id"``
  (raised inside ``chromadb_rust_bindings`` when its HNSW index names a record its
  records no longer hold; seen with 1.5.9): only the message tells it;
  :func:`index_out_of_step` recognises it and the collection reads again
  (``ChromaCollection.retry_delay``); it is ``BackendUnavailableError`` because a retry cures it.
  A Chroma server answers a read that meets the persisting of the index it reads
  vectors from (``local_hnsw``) with ``"Error creating hnsw segment reader: Nothing found
  on disk"`` (seen with 1.5.9, a get with vectors racing adds and deletes): the same kind.
"""

from __future__ import annotations

import re

import httpx
from chromadb.errors import ChromaError, NotFoundError, RateLimitError, UniqueConstraintError

from ...base import ErrorRule
from ...errors import (
    BackendUnavailableError,
    CollectionExistsError,
    CollectionNotFoundError,
    VecbridgeError,
)

__all__ = ["ERRORS", "index_out_of_step"]

_EXISTS = re.compile(r"Collection \[.*\] already exists")
_OUT_OF_STEP = ("Error finding id", "Error creating hnsw segment reader: Nothing found on disk")


def index_out_of_step(exc: BaseException | None) -> bool:
    """Is ``exc`` Chroma's index out of step with its records for a moment (see above)?"""
    return isinstance(exc, ChromaError) and any(text in str(exc) for text in _OUT_OF_STEP)


def _not_found(exc: BaseException) -> type[VecbridgeError] | None:
    return None if str(exc).startswith(("Tenant", "Database")) else CollectionNotFoundError


def _engine_error(exc: BaseException) -> type[VecbridgeError] | None:
    if _EXISTS.search(str(exc)):
        return CollectionExistsError
    if index_out_of_step(exc):
        return BackendUnavailableError
    return None


def _lost_connection(exc: BaseException) -> type[VecbridgeError] | None:
    """A ValueError chromadb raised while handling a transport error (see the module docstring)."""
    seen = exc.__context__
    for _ in range(4):  # the chain is short; never loop on a cycle
        if seen is None:
            return None
        if isinstance(seen, (httpx.TransportError, ConnectionError, TimeoutError)):
            return BackendUnavailableError
        seen = seen.__context__
    return None


#: The table (``BaseClient.error_map``), first match wins; the core adds the standard
#: library's transport errors after it.
ERRORS: tuple[ErrorRule, ...] = (
    (httpx.TransportError, BackendUnavailableError),  # ConnectError, ReadError, RemoteProtocolError, timeouts
    (RateLimitError, BackendUnavailableError),
    (NotFoundError, _not_found),
    (UniqueConstraintError, CollectionExistsError),
    (ChromaError, _engine_error),
    (ValueError, _lost_connection),
)
