"""The Milvus backend's error table (see :func:`vecbridge.base.native_errors`).

Why: a migration retries only :class:`~vecbridge.errors.BackendUnavailableError`, and
pymilvus reports what a retry can cure in its own ways: an unreachable server as
``MilvusException(code=2, "Fail connecting to server ...")``; gRPC's ``UNAVAILABLE`` and
``DEADLINE_EXCEEDED`` as ``grpc.RpcError`` once its own retries are spent;
``MilvusUnavailableException``; and a quota hit as code 8 (``RATE_LIMIT``).  Everything
else stays a :class:`~vecbridge.errors.BackendError`.
"""

from __future__ import annotations

from typing import Any

import grpc
from pymilvus.exceptions import MilvusException, MilvusUnavailableException

from ...base import ErrorRule
from ...errors import BackendUnavailableError

__all__ = ["ERRORS"]

_CONNECT_FAILED, _RATE_LIMIT = 2, 8


def _rpc(exc: BaseException) -> Any:
    code = getattr(exc, "code", None)
    transient = callable(code) and code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    return BackendUnavailableError if transient else None


def _milvus(exc: BaseException) -> Any:
    code = getattr(exc, "code", None)
    if code == _RATE_LIMIT or (code == _CONNECT_FAILED and "Fail connecting" in str(exc)):
        return BackendUnavailableError
    return None


ERRORS: tuple[ErrorRule, ...] = (
    (MilvusUnavailableException, BackendUnavailableError),
    (MilvusException, _milvus),
    (grpc.RpcError, _rpc),
)
