"""The Qdrant backend's error table: qdrant-client's exceptions -> vecbridge error classes.

qdrant-client raises different things for one failure depending on the form:

- REST: a transport failure (refused, reset, timeout) reaches the caller as
  ``ResponseHandlingException`` whose ``source`` is the ``httpx.TransportError``
  (``qdrant_client/http/api_client.py``, ``ApiClient.send_inner``); a server answer other
  than 2xx is ``UnexpectedResponse`` with its ``status_code``; a 429 with Retry-After is
  ``ResourceExhaustedResponse``.
- gRPC: a ``grpc.RpcError`` with a status ``code()``.
- local mode: plain ``ValueError``/``RuntimeError`` with only a message.  The only row
  that reads a message is :func:`_local_value_error`; the folder lock is recognised by
  the exception it is raised from, not by its text (:func:`folder_locked`).

:class:`~vecbridge.errors.BackendUnavailableError` is for what a retry can cure: a refused or
dropped connection, a timeout, a server that is starting or overloaded (502/503/504, 429,
gRPC UNAVAILABLE/DEADLINE_EXCEEDED/RESOURCE_EXHAUSTED).  A 404 answered by Qdrant itself (a
JSON status body) on a collection call is :class:`~vecbridge.errors.CollectionNotFoundError`;
a 404 without that body (a wrong ``prefix``, a proxy) stays a ``BackendError``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from ...base import ErrorRule
from ...errors import (
    BackendLockedError,
    BackendUnavailableError,
    CollectionExistsError,
    CollectionNotFoundError,
    VecbridgeError,
)

try:  # the gRPC rows exist only where grpcio is installed (qdrant-client requires it today)
    import grpc
except ImportError:  # pragma: no cover - depends on the installation
    grpc = None

#: HTTP statuses a retry can cure: too many requests (without Retry-After, which
#: qdrant-client turns into ResourceExhaustedResponse), a proxy in front of a server that is
#: starting or gone.
_RETRY_STATUSES = frozenset({429, 502, 503, 504})


def folder_locked(exc: BaseException) -> bool:
    """Whether ``exc`` is local mode refusing a folder whose lock another client holds.

    ``QdrantLocal._load`` (``qdrant_client/local/qdrant_local.py``) takes a non-blocking
    exclusive portalocker lock and, when that fails, raises a plain ``RuntimeError`` inside
    its ``except LockException`` block, so the ``LockException`` is the error's
    ``__context__``.  That pair is the test, not the text.  portalocker is looked up in
    ``sys.modules``: it was imported if it raised anything (and importing it afresh can fail
    on a read-only system).
    """
    locker = sys.modules.get("portalocker.exceptions")
    lock_exc = getattr(locker, "LockException", None)
    return (isinstance(exc, RuntimeError) and lock_exc is not None
            and isinstance(exc.__context__, lock_exc))


def _folder_lock_rule(exc: BaseException) -> type[VecbridgeError] | None:
    return BackendLockedError if folder_locked(exc) else None


def qdrant_status(exc: UnexpectedResponse) -> str | None:
    """The error Qdrant itself wrote in its JSON answer (``{"status": {"error": …}}``), or
    ``None`` when the body is not Qdrant's (a proxy's page, an empty 404)."""
    try:
        status = json.loads(exc.content).get("status")
    except (ValueError, AttributeError, TypeError):
        return None
    error = status.get("error") if isinstance(status, dict) else None
    return error if isinstance(error, str) else None


def _unexpected_response(exc: BaseException) -> type[VecbridgeError] | None:
    assert isinstance(exc, UnexpectedResponse)
    code = exc.status_code
    if code in _RETRY_STATUSES:
        return BackendUnavailableError
    if code == 404 and qdrant_status(exc) is not None:
        return CollectionNotFoundError  # the server's own "Collection `x` doesn't exist!"
    if code == 409:
        return CollectionExistsError  # StorageError::AlreadyExists; only creation can hit it
    return None


def _response_handling(exc: BaseException) -> type[VecbridgeError] | None:
    source = getattr(exc, "source", None)
    if isinstance(source, (httpx.TransportError, ConnectionError, TimeoutError)):
        return BackendUnavailableError
    return None  # e.g. a pydantic ValidationError: the answer did not parse, no retry cures it


def _grpc_error(exc: BaseException) -> type[VecbridgeError] | None:
    code_of = getattr(exc, "code", None)
    code = code_of() if callable(code_of) else None
    if grpc is None or code is None:
        return None
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED):
        return BackendUnavailableError
    if code == grpc.StatusCode.NOT_FOUND:
        return CollectionNotFoundError
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return CollectionExistsError
    return None


def _local_value_error(exc: BaseException) -> type[VecbridgeError] | None:
    """Local mode's collection errors, which exist only as messages: ``QdrantLocal._get_collection``
    raises ``ValueError(f"Collection {name} not found")`` and ``create_collection``
    ``ValueError(f"Collection {name} already exists")`` (qdrant_client/local/qdrant_local.py,
    qdrant-client 1.20)."""
    text = str(exc)
    if text.startswith("Collection ") and text.endswith(" not found"):
        return CollectionNotFoundError
    if text.startswith("Collection ") and text.endswith(" already exists"):
        return CollectionExistsError
    return None


ERROR_MAP: tuple[ErrorRule, ...] = (
    (httpx.TransportError, BackendUnavailableError),
    (ResourceExhaustedResponse, BackendUnavailableError),  # 429: the server asks to retry later
    (ResponseHandlingException, _response_handling),
    (UnexpectedResponse, _unexpected_response),
    *(((grpc.RpcError, _grpc_error),) if grpc is not None else ()),
    (RuntimeError, _folder_lock_rule),
    (ValueError, _local_value_error),
)


def detail(exc: BaseException) -> str | None:
    """A better one-line account of ``exc`` than its ``str``, where qdrant-client hides it:
    gRPC's ``details()``, Qdrant's JSON status of an HTTP answer, the transport error
    inside a ``ResponseHandlingException``."""
    details = getattr(exc, "details", None)
    if callable(details):
        text: Any = details()
        return str(text) if text else None
    if isinstance(exc, UnexpectedResponse):
        status = qdrant_status(exc)
        return f"{exc.status_code} {status}" if status else None
    if isinstance(exc, ResponseHandlingException):
        source = exc.source
        return f"{type(source).__name__}: {source}" if source is not None else None
    return None
