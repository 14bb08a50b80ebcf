"""Wire formats: pgvector's binary ``vector``, binary COPY rows, and metadata as jsonb text.

No ``pgvector`` Python package is needed: a vector travels in pgvector's own binary
form (``int16 dim, int16 unused, dim x float4``, big-endian), built for a whole batch
at once with numpy, both as a query parameter and inside binary ``COPY``.

Metadata goes to jsonb as JSON text and comes back through ``json.loads``, which keeps
``1`` an int and ``1.0`` a float because jsonb keeps a number's decimal scale.  The one
exception is a float written with a positive exponent (``1e+20``): jsonb would print it
back as ``100000000000000000000``, an int, so such floats are written out in plain
decimal notation with a ``.0`` (:func:`dump_json`).  Filter values go through the same
function, so stored numbers and filter numbers compare as the same decimals.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import numpy as np
from psycopg import pq
from psycopg.adapt import AdaptersMap, Dumper, Loader

__all__ = ["VectorData", "copy_chunks", "dump_json", "make_adapters", "vector_param"]

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
    """Adapters of the pool's connections: binary vectors both ways, jsonb through json.loads."""
    from psycopg import adapters as global_adapters
    from psycopg.types.json import set_json_loads

    amap = AdaptersMap(global_adapters)
    dumper = type("VectorDumper", (_VectorDumper,), {"oid": vector_oid})
    amap.register_dumper(VectorData, dumper)
    amap.register_loader(vector_oid, _VectorLoader)

    class _Ctx:  # set_json_loads wants an AdaptContext; pin json.loads whatever is set globally
        adapters = amap
        connection = None

    set_json_loads(json.loads, _Ctx())  # type: ignore[arg-type]
    return amap


# -- JSON -----------------------------------------------------------------------------
def _plain_float(x: float) -> str:
    text = repr(x)
    if "e+" not in text:
        return text
    return format(Decimal(text), "f") + ".0"  # 1e+20 -> 100000000000000000000.0: jsonb keeps it a float


def _slow_json(value: Any) -> str:
    if isinstance(value, float):
        return _plain_float(value)
    if isinstance(value, dict):
        return "{" + ",".join(_encode(k) + ":" + _slow_json(v) for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_slow_json(v) for v in value) + "]"
    return _encode(value)


def dump_json(value: Any) -> str:
    """JSON text of metadata (or of a filter value) that jsonb gives back with the same types."""
    text = _encode(value)
    # Only a float with a positive exponent needs care; "e+" inside a string merely takes the slow path.
    return _slow_json(value) if "e+" in text else text


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
