"""The Milvus backend's error table: ``MilvusClient.error_map`` (see :func:`vecbridge.base.classify`).

Why: a migration retries only :class:`~vecbridge.errors.BackendUnavailableError`, and
pymilvus reports what a retry can cure in several ways: ``MilvusUnavailableException``;
gRPC's ``UNAVAILABLE`` and ``DEADLINE_EXCEEDED`` as ``grpc.RpcError`` once its own
retries are spent; and ``MilvusException`` with an error code: 2 (pymilvus's
``Status.CONNECT_FAILED`` for a server it cannot reach, and the server's
``ErrServiceUnavailable``), 8 (``ErrorCode.RATE_LIMIT``, a quota hit), or any status the
server marked ``retriable`` (a server that is starting: ``ErrServiceNotReady``).

A missing collection has a type (``CollectionNotExistException``) or the code 100
(``ErrorCode.COLLECTION_NOT_FOUND``, server and Milvus Lite alike).

An expression the engine refuses has no type nor a code of its own; only the message
tells (:func:`_refused_filter`).  Everything else stays a
:class:`~vecbridge.errors.BackendError`.
"""

from __future__ import annotations

import re
from typing import Any

import grpc
from pymilvus.exceptions import CollectionNotExistException, ErrorCode, MilvusException, MilvusUnavailableException

from ...base import ErrorRule
from ...errors import BackendUnavailableError, CollectionNotFoundError, UnsupportedFilterError

__all__ = ["ERRORS"]

#: pymilvus ``client.types.Status.CONNECT_FAILED``; Milvus's merr ``ErrServiceUnavailable``.
_CONNECT_FAILED = 2
#: Milvus Lite's ``LEGACY_ILLEGAL_ARGUMENT`` (milvus_lite/adapter/grpc/errors.py), the code
#: of its filter errors and of other bad arguments.
_LITE_ILLEGAL_ARGUMENT = 6
#: milvus_lite/search/filter/exceptions.py: every FilterError renders "<what> at column N".
_LITE_FILTER_MESSAGE = re.compile(r" at column \d+")


def _rpc(exc: BaseException) -> Any:
    code = getattr(exc, "code", None)
    transient = callable(code) and code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    return BackendUnavailableError if transient else None


def _refused_filter(exc: MilvusException) -> bool:
    """Whether the engine refused an expression.  Message matches, as no type or code exists:
    Milvus 2.3's proxy says "cannot parse expression: ..." (internal/parser/planparserv2,
    code 65535); Milvus Lite raises a FilterError, sent as code 6 with "... at column N"."""
    message = str(exc.message)
    if "cannot parse expression" in message:
        return True
    return exc.code == _LITE_ILLEGAL_ARGUMENT and bool(_LITE_FILTER_MESSAGE.search(message))


def _milvus(exc: BaseException) -> Any:
    assert isinstance(exc, MilvusException)
    code = exc.code
    if code in (_CONNECT_FAILED, ErrorCode.RATE_LIMIT) or getattr(exc, "retriable", False):
        return BackendUnavailableError
    if code == ErrorCode.COLLECTION_NOT_FOUND:
        return CollectionNotFoundError
    if _refused_filter(exc):
        return UnsupportedFilterError
    return None


ERRORS: tuple[ErrorRule, ...] = (
    (MilvusUnavailableException, BackendUnavailableError),
    (CollectionNotExistException, CollectionNotFoundError),
    (MilvusException, _milvus),
    (grpc.RpcError, _rpc),
)
