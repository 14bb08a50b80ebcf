"""Qdrant: native failures become vecbridge errors through the backend's error table.

A refused connection (a server URL on a port nothing listens on) is what a retry can cure,
over REST and over gRPC; a collection dropped under an open handle is
CollectionNotFoundError; other native failures stay plain BackendErrors.  Before the
table, every one of these was a plain BackendError.
"""

from __future__ import annotations

import json
import socket

import httpx
import numpy as np
import pytest

import vecbridge
from vecbridge.base import classify

pytest.importorskip("qdrant_client")

from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from vecbridge.backends.qdrant import QdrantClient


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nothing listens there


@pytest.mark.parametrize("scheme", ["qdrant", "qdrant+grpc"])
def test_a_refused_connection_is_backend_unavailable(scheme):
    port = _closed_port()
    client = vecbridge.connect(f"{scheme}://127.0.0.1:{port}?timeout=5&api_key=s3cret-key")
    try:
        with pytest.raises(vecbridge.BackendUnavailableError) as info:
            client.list_collections()
        msg = str(info.value)
        assert "list collections" in msg and "s3cret-key" not in msg
        assert info.value.__cause__ is not None  # the native error is kept
        if scheme == "qdrant":
            assert isinstance(info.value.__cause__, ResponseHandlingException)
            assert isinstance(info.value.__cause__.source, httpx.TransportError)
        else:
            import grpc

            assert isinstance(info.value.__cause__, grpc.RpcError)
            assert info.value.__cause__.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        client.close()


@pytest.fixture(params=["memory", "disk"])
def client(request, tmp_path):
    c = vecbridge.connect("qdrant://" if request.param == "memory" else f"qdrant:///{tmp_path}/q")
    yield c
    c.close()


def test_a_dropped_collection_is_collection_not_found(client):
    coll = client.create_collection("dropped", 4, "l2")
    coll.add(["a"], np.ones((1, 4)))
    client.delete_collection("dropped")
    for call in (coll.count, lambda: coll.get(["a"]), lambda: coll.add(["b"], np.ones((1, 4))),
                 lambda: coll.query(np.ones(4), k=1)):
        with pytest.raises(vecbridge.CollectionNotFoundError) as info:
            call()
        assert "dropped" in str(info.value)
        assert info.value.__cause__ is not None


def test_another_native_failure_is_not_unavailable(client):
    client.create_collection("other", 4, "l2")
    # a native call the core's checks never let through
    with pytest.raises(vecbridge.BackendError) as info, client._mapped_errors("query"):
        client._native.query_points("other", query=[1.0, 2.0], limit=1)
    assert type(info.value) is vecbridge.BackendError
    assert info.value.__cause__ is not None


def _response(status: int, body: object) -> UnexpectedResponse:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return UnexpectedResponse(status_code=status, reason_phrase="", content=content, headers=httpx.Headers())


@pytest.mark.parametrize(("exc", "expected"), [
    (_response(404, {"status": {"error": "Not found: Collection `x` doesn't exist!"}, "time": 0.0}),
     vecbridge.CollectionNotFoundError),
    (_response(404, b""), vecbridge.BackendError),  # not Qdrant's answer: a wrong prefix, a proxy
    (_response(409, {"status": {"error": "Wrong input: Collection `x` already exists!"}}),
     vecbridge.CollectionExistsError),
    (_response(503, b"starting"), vecbridge.BackendUnavailableError),
    (_response(429, b""), vecbridge.BackendUnavailableError),
    (_response(400, {"status": {"error": "Wrong input: Vector dimension error"}}), vecbridge.BackendError),
    (ResponseHandlingException(httpx.ReadTimeout("timed out")), vecbridge.BackendUnavailableError),
    (ResponseHandlingException(ValueError("bad answer")), vecbridge.BackendError),
    (RuntimeError("Storage folder /x is already accessed by another instance"), vecbridge.BackendError),
])
def test_table_rows_for_server_answers(exc, expected):
    # A RuntimeError with the lock's text but not raised from portalocker's LockException is
    # not the folder lock: the row tests the exception, not the words.
    assert classify(exc, QdrantClient.error_map) is expected
