"""Wire formats: pgvector's binary ``vector``, binary COPY rows, and metadata as jsonb text.

No ``pgvector`` Python package is needed: a vector travels in pgvector's own binary
form (``int16 dim, int16 unused, dim x float4``, big-endian), built for a whole batch
at once with numpy, both as a query parameter and inside binary ``COPY``.

Metadata goes to jsonb as JSON text and comes back through ``json.loads``, which keeps
``1`` an int and ``1.0`` a float because jsonb keeps a number's decimal scale.  jsonb
compares numbers as exact decimals, so every number must be written at its exact value,
not merely as text that reads back as the same float:

* Python writes a float as the shortest decimal that reads back as it, which from 1e16
  up is not its value (``float(2**60)`` prints ``1.152921504606847e+18``, which is
  ``2**60 + 24``): jsonb would find it unequal to the int ``2**60`` and greater than it.
  Such a float is an integer, so it is written as that integer's digits plus ``.0``
  (the ``.0`` also keeps it a float: jsonb prints ``1e+20`` back as an int).  A float
  below 1e16 needs nothing: its shortest decimal is exact when it is an integer, and
  otherwise no integer lies between it and its shortest decimal (the integers near it
  are floats themselves, each nearer to its own decimal), nor does any other float.
* jsonb has no negative zero (``-0.0`` prints back as ``0.0``).  ``-0.0`` is written as
  zero at a scale no other float is written with (:data:`NEG_ZERO`), which compares
  equal to every zero, as in Python, and is read back as ``-0.0`` (:func:`load_json`).
* Filter values go through the same function; an int beyond any storable number
  (metadata ints are int64, floats below 2**1024) is bounded first
  (:func:`filter_value`), because Python cannot write an int of more than 4,300 digits
  as text and the answer is the same.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from psycopg import pq
from psycopg.adapt import AdaptersMap, Dumper, Loader

__all__ = ["NEG_ZERO", "VectorData", "copy_chunks", "dump_json", "filter_value", "load_json", "make_adapters",
           "vector_param"]

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False, allow_nan=False).encode

_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"  # signature, flags, extension
_TRAILER = b"\xff\xff"
_NULL = b"\xff\xff\xff\xff"
_INT32 = struct.Struct(">i").pack
_VEC_HEAD = struct.Struct(">HH").pack
#: Rows per block handed to COPY: bounds the memory of the encoded stream.
COPY_CHUNK = 8192


class VectorData(bytes):
    """One vector already in pgvector's binary input form (a query parameter)."""

    __slots__ = ()


def vector_param(v: np.ndarray) -> VectorData:
    """The binary form of one float32 vector."""
    return VectorData(_VEC_HEAD(v.shape[0], 0) + v.astype(">f4").tobytes())


class _VectorDumper(Dumper):
    format = pq.Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return obj  # type: ignore[no-any-return]


class _VectorLoader(Loader):
    format = pq.Format.BINARY

    def load(self, data: Any) -> np.ndarray:
        return np.frombuffer(data, dtype=">f4", offset=4).astype(np.float32)


def make_adapters(vector_oid: int) -> AdaptersMap:
    """Adapters of the pool's connections: binary vectors both ways, jsonb through :func:`load_json`."""
    from psycopg import adapters as global_adapters
    from psycopg.types.json import set_json_loads

    amap = AdaptersMap(global_adapters)
    dumper = type("VectorDumper", (_VectorDumper,), {"oid": vector_oid})
    amap.register_dumper(VectorData, dumper)
    amap.register_loader(vector_oid, _VectorLoader)

    class _Ctx:  # set_json_loads wants an AdaptContext; pin json.loads whatever is set globally
        adapters = amap
        connection = None

    set_json_loads(load_json, _Ctx())  # type: ignore[arg-type]
    return amap


# -- JSON -----------------------------------------------------------------------------
#: How -0.0 is written: a zero whose scale no other written float has (jsonb keeps the scale).
NEG_ZERO = "0.00000000000000000"
_NEG_ZERO_BYTES = NEG_ZERO.encode()
#: Beyond every storable number (floats are below 2**1024 < 10**309): a filter int past it
#: compares with stored numbers as this bound does.
_BOUND = 10**400


def _exact_float(x: float) -> str:
    if x == 0.0:
        return NEG_ZERO if math.copysign(1.0, x) < 0 else "0.0"
    text = repr(x)
    if "e+" not in text:
        return text  # below 1e16: exact, or with no number of another kind in between (module docstring)
    return str(int(x)) + ".0"  # an integer; its digits are its exact value, and ".0" keeps it a float


def _slow_json(value: Any) -> str:
    if isinstance(value, float):
        return _exact_float(value)
    if isinstance(value, dict):
        return "{" + ",".join(_encode(k) + ":" + _slow_json(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_slow_json(v) for v in value) + "]"
    return _encode(value)


def dump_json(value: Any) -> str:
    """JSON text of metadata (or of a filter value): exact numbers that jsonb gives back with their types."""
    text = _encode(value)
    # Only a float with a positive exponent or a negative zero needs care; the same text inside
    # a string (or "-0.01") merely takes the slow path.
    return _slow_json(value) if "e+" in text or "-0.0" in text else text


def filter_value(value: Any) -> Any:
    """A filter scalar as it is bound: an int beyond every storable number is bounded (same answers)."""
    if isinstance(value, int) and not isinstance(value, bool) and not -_BOUND <= value <= _BOUND:
        return _BOUND if value > 0 else -_BOUND
    return value


def _parse_float(text: str) -> float:
    return -0.0 if text == NEG_ZERO else float(text)


def load_json(data: bytes | str) -> Any:
    """jsonb text to Python, with :data:`NEG_ZERO` read back as ``-0.0``."""
    # A substring test is cheap; the hook makes json parse every float in Python.
    if (_NEG_ZERO_BYTES in data) if isinstance(data, bytes) else (NEG_ZERO in data):
        return json.loads(data, parse_float=_parse_float)
    return json.loads(data)


# -- binary COPY ------------------------------------------------------------------------
def _vector_blocks(vectors: np.ndarray) -> tuple[memoryview, int]:
    """Every row's COPY field (length, dim, unused, floats) in one big-endian buffer."""
    n, d = vectors.shape
    dt = np.dtype([("len", ">i4"), ("dim", ">u2"), ("unused", ">u2"), ("v", ">f4", (d,))])
    blk = np.empty(n, dtype=dt)
    blk["len"] = 4 + 4 * d
    blk["dim"] = d
    blk["unused"] = 0
    blk["v"] = vectors
    return blk.view(np.uint8).data, dt.itemsize


def copy_chunks(ids: Sequence[str], vectors: np.ndarray | None, metadatas: Sequence[dict[str, Any]] | None,
                documents: Sequence[str | None] | None, chunk: int = COPY_CHUNK) -> Iterator[bytes]:
    """A binary COPY stream of ``(id[, embedding][, metadata][, document])`` rows, in blocks.

    The columns present are those not ``None``, in that order.
    """
    n = len(ids)
    nfields = struct.pack(">h", 1 + sum(x is not None for x in (vectors, metadatas, documents)))
    vbuf, step = _vector_blocks(vectors) if vectors is not None else (None, 0)
    pack = _INT32
    out: list[Any] = [_HEADER]
    for start in range(0, n, chunk):
        end = min(n, start + chunk)
        append = out.append
        for i in range(start, end):
            b = ids[i].encode()
            append(nfields + pack(len(b)) + b)
            if vbuf is not None:
                append(vbuf[i * step:(i + 1) * step])
            if metadatas is not None:
                m = dump_json(metadatas[i]).encode()
                append(pack(len(m) + 1) + b"\x01" + m)  # jsonb binary = version byte 1 + text
            if documents is not None:
                doc = documents[i]
                if doc is None:
                    append(_NULL)
                else:
                    b = doc.encode()
                    append(pack(len(b)) + b)
        if end == n:
            out.append(_TRAILER)
        yield b"".join(out)
        out = []
    if n == 0:
        yield _HEADER + _TRAILER
