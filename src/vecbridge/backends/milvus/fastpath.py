"""Every private pymilvus use of the backend, feature-detected, with the public API as fallback.

Why a fast path: ``MilvusClient.upsert`` takes rows as dicts and turns each vector
into a Python list of floats, element by element; for 10,000 vectors of 768
dimensions that is most of a write's time.  Here the request is built column by
column and the vectors go in as the raw float32 bytes of the numpy array (a packed
repeated float that protobuf parses without a Python loop), then handed to the
connection's ``upsert`` as a prebuilt ``upsert_param``, with the write's timestamp
read from the result (session consistency needs it).  Every write of the backend is
an upsert (``add`` too: see :mod:`.collection`), so redoing one is harmless.

What it relies on, none of it public: ``MilvusClient._get_connection()`` and
``._generate_call_context()``; the handler's ``upsert`` accepting ``context=``,
``schema=`` and a prebuilt request; ``pymilvus.grpc_gen`` message classes with the
field numbers of Milvus's ``schema.proto``.  Tested with pymilvus 3.0.2 (pyproject
pins ``<3.1``).  At first use :func:`detect` checks each piece; if one is missing or
a signature differs, or if the fast call raises ``TypeError``, ``AttributeError`` or
pymilvus's ``ParamError`` (an argument it no longer takes), the process switches to
the public ``MilvusClient.upsert`` for good, with one debug log line, and the slice
is written again that way.  The public path returns no timestamp, so the read after
it is Strong.
"""

from __future__ import annotations

import inspect
import logging
import threading
from typing import Any

import numpy as np

from .codec import DOCUMENT, ID, VECTOR, EncodedBatch
from .translator import META_FIELD

__all__ = ["Writer", "build_request", "detect", "fast_path_problem", "reset"]

log = logging.getLogger(__name__)

_lock = threading.Lock()
#: ``None``: not yet looked at; ``""``: the fast path works; otherwise why it does not.
_problem: str | None = None


def reset() -> None:
    """Forget the outcome of :func:`detect` (tests; a pymilvus upgraded in place)."""
    global _problem
    with _lock:
        _problem = None


def fast_path_problem() -> str | None:
    """Why the fast path is off, ``""`` if it is on, ``None`` before the first write."""
    return _problem


def _disable(reason: str) -> None:
    global _problem
    with _lock:
        if not _problem:
            _problem = reason
            log.debug("vecbridge milvus: using pymilvus's public upsert: %s", reason)


def _accepts_context(fn: Any) -> bool:
    """``fn`` takes ``context=`` and extra keywords (where ``schema`` and ``upsert_param`` go)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "context" in params and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def detect(native: Any) -> str:
    """``""`` if ``native`` (a ``pymilvus.MilvusClient``) offers what the fast path needs, else why not."""
    try:
        from pymilvus.grpc_gen import milvus_pb2, schema_pb2

        req = milvus_pb2.UpsertRequest.DESCRIPTOR.fields_by_name
        if not {"collection_name", "fields_data", "num_rows"} <= set(req):
            return "UpsertRequest has no collection_name/fields_data/num_rows"
        for name in ("VarChar", "JSON", "FloatVector"):
            schema_pb2.DataType.Value(name)
        fd = schema_pb2.FieldData.DESCRIPTOR.fields_by_name
        vf = schema_pb2.VectorField.DESCRIPTOR.fields_by_name
        fa = schema_pb2.FloatArray.DESCRIPTOR.fields_by_name
        # the numbers _vector_field writes by hand
        if (fd["type"].number, fd["field_name"].number, fd["vectors"].number) != (1, 2, 4) or \
                (vf["dim"].number, vf["float_vector"].number) != (1, 2) or fa["data"].number != 1:
            return "schema.proto field numbers differ from those the fast path encodes"
        for attr in ("_get_connection", "_generate_call_context"):
            if not callable(getattr(native, attr, None)):
                return f"MilvusClient.{attr} is missing"
        handler = native._get_connection()
        if not _accepts_context(getattr(handler, "upsert", None)):
            return f"{type(handler).__name__}.upsert has another signature"
        if not callable(getattr(handler, "_prepare_batch_upsert_request", None)):  # where upsert_param is read
            return f"{type(handler).__name__}._prepare_batch_upsert_request is missing"
    except (ImportError, AttributeError, KeyError, ValueError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _vector_field(vectors: np.ndarray) -> bytes:
    """A serialized ``FieldData`` holding ``vectors`` as FLOAT_VECTOR, built from raw bytes."""
    from pymilvus.grpc_gen import schema_pb2

    raw = np.ascontiguousarray(vectors, dtype="<f4").tobytes()
    float_array = _field(1, raw)  # FloatArray.data: packed floats
    vector_field = _varint(1 << 3) + _varint(vectors.shape[1]) + _field(2, float_array)  # dim, float_vector
    return (_varint(1 << 3) + _varint(schema_pb2.DataType.Value("FloatVector"))  # type
            + _field(2, VECTOR.encode()) + _field(4, vector_field))  # field_name, vectors


def build_request(collection: str, e: EncodedBatch, start: int, stop: int) -> Any:
    """An Upsert request for rows ``start:stop`` of ``e``, column by column.

    The database travels in the call's metadata (pymilvus's call context), as for
    pymilvus's own requests.
    """
    from pymilvus.grpc_gen import milvus_pb2, schema_pb2

    varchar, json = schema_pb2.DataType.Value("VarChar"), schema_pb2.DataType.Value("JSON")
    cls = milvus_pb2.UpsertRequest
    req = cls(collection_name=collection, num_rows=stop - start)
    ids = req.fields_data.add(type=varchar, field_name=ID)
    ids.scalars.string_data.data.extend(e.ids[start:stop])
    docs = req.fields_data.add(type=varchar, field_name=DOCUMENT)
    docs.scalars.string_data.data.extend(e.documents[start:stop])
    meta = req.fields_data.add(type=json, field_name=META_FIELD)
    meta.scalars.json_data.data.extend(e.json[start:stop])
    number = cls.DESCRIPTOR.fields_by_name["fields_data"].number
    req.MergeFromString(_field(number, _vector_field(e.vectors[start:stop])))  # appends to fields_data
    return req


def _api_changed(exc: Exception) -> bool:
    """An error that says pymilvus no longer takes the fast path's call (an upsert may be redone)."""
    if isinstance(exc, (TypeError, AttributeError)):
        return True
    try:
        from pymilvus.exceptions import ParamError
    except ImportError:
        return False
    return isinstance(exc, ParamError)


class Writer:
    """Upserts slices of an :class:`EncodedBatch` into one collection."""

    def __init__(self, native: Any, collection: str, call_options: dict[str, Any]):
        self._native, self._name, self._opts = native, collection, call_options
        global _problem
        with _lock:
            if _problem is None:
                _problem = detect(native)
                if _problem:
                    log.debug("vecbridge milvus: using pymilvus's public upsert: %s", _problem)
        self._handler = self._context = None
        if not _problem:
            self._handler = native._get_connection()
            self._context = native._generate_call_context()

    def upsert(self, e: EncodedBatch, start: int, stop: int) -> int:
        """Upsert rows ``start:stop``; the write's timestamp, or 0 when unknown (read Strong next)."""
        if self._handler is not None and not _problem:
            req = build_request(self._name, e, start, stop)
            try:
                # an empty `schema` stops pymilvus describing the collection for a prebuilt request
                result = self._handler.upsert(self._name, [], context=self._context, schema={"fields": []},
                                              upsert_param=req, **self._opts)
            except Exception as exc:
                if not _api_changed(exc):
                    raise
                _disable(f"the fast upsert failed: {type(exc).__name__}: {exc}")
            else:
                return int(getattr(result, "timestamp", 0) or 0)
        self._native.upsert(self._name, e.rows(start, stop), **self._opts)
        return 0
