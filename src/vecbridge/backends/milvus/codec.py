"""Column-wise write requests and the decoding of Milvus rows into records.

Writes build one ``InsertRequest``/``UpsertRequest`` per slice of the batch, column by
column: the vectors go in as the raw float32 bytes of the numpy array (parsed by
protobuf as a packed repeated float, no Python loop per element); the slices are cut
so that no request passes the server's gRPC message limit (64 MiB on a default
Milvus proxy).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import orjson
from pymilvus.grpc_gen import milvus_pb2, schema_pb2

from ...errors import InvalidMetadataError, InvalidRecordError
from ...types import Record
from ...validation import Batch
from .expr import META_FIELD, MetaCodec

__all__ = [
    "DOCUMENT",
    "ID",
    "MAX_DOCUMENT_BYTES",
    "MAX_ID_BYTES",
    "MAX_JSON_BYTES",
    "METRIC_TYPES",
    "REQUEST_BUDGET",
    "VECTOR",
    "EncodedBatch",
    "build_request",
    "output_fields",
    "row_parts",
    "rows_to_records",
    "vectors_of",
]

ID, VECTOR, DOCUMENT = "id", "vector", "document"
METRIC_TYPES = {"cosine": "COSINE", "l2": "L2", "ip": "IP"}
MAX_ID_BYTES = 256
#: Milvus 2.3 limits: a VARCHAR holds 65,535 bytes, a JSON value 65,536 bytes.
MAX_DOCUMENT_BYTES = 65535
MAX_JSON_BYTES = 65536
#: Bytes of payload per write request; the default proxy accepts 64 MiB messages.
REQUEST_BUDGET = 48 * 1024 * 1024
_ROW_OVERHEAD = 24  # protobuf length prefixes and tags per row, generously

_VARCHAR = schema_pb2.DataType.Value("VarChar")
_JSON = schema_pb2.DataType.Value("JSON")
_FLOAT_VECTOR = schema_pb2.DataType.Value("FloatVector")


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


class EncodedBatch:
    """A validated batch with its metadata JSON encoded and its row sizes known."""

    def __init__(self, b: Batch):
        assert b.vectors is not None and b.metadatas is not None and b.documents is not None
        self.ids, self.vectors = b.ids, b.vectors
        self.documents = ["" if d is None else d for d in b.documents]
        self.json = [orjson.dumps(MetaCodec.encode(m, d)) for m, d in zip(b.metadatas, b.documents)]
        doc_bytes = [len(d.encode("utf-8")) for d in self.documents]
        for i, n in enumerate(doc_bytes):
            if n > MAX_DOCUMENT_BYTES:
                raise InvalidRecordError(f"documents[{i}] is {n} bytes in UTF-8; a Milvus VARCHAR field holds at "
                                         f"most {MAX_DOCUMENT_BYTES} bytes; nothing was written")
        for i, j in enumerate(self.json):
            if len(j) > MAX_JSON_BYTES:
                raise InvalidMetadataError(f"metadatas[{i}] takes {len(j)} bytes as JSON; a Milvus JSON field holds at "
                                           f"most {MAX_JSON_BYTES} bytes; nothing was written")
        row_fixed = self.vectors.shape[1] * 4 + _ROW_OVERHEAD
        self.row_bytes = [row_fixed + len(i) * 4 + d + len(j) for i, d, j in zip(self.ids, doc_bytes, self.json)]

    def __len__(self) -> int:
        return len(self.ids)

    def slices(self, budget: int = REQUEST_BUDGET) -> Iterator[tuple[int, int]]:
        """``(start, stop)`` ranges whose payload stays under ``budget`` bytes (at least one row each)."""
        start, size = 0, 0
        for i, n in enumerate(self.row_bytes):
            if size and size + n > budget:
                yield start, i
                start, size = i, 0
            size += n
        if start < len(self.row_bytes):
            yield start, len(self.row_bytes)


def _vector_field(vectors: np.ndarray) -> bytes:
    """A serialized ``FieldData`` holding ``vectors`` as FLOAT_VECTOR, built from raw bytes."""
    raw = np.ascontiguousarray(vectors, dtype="<f4").tobytes()
    float_array = _field(1, raw)  # FloatArray.data: packed floats
    vector_field = _varint(1 << 3) + _varint(vectors.shape[1]) + _field(2, float_array)  # dim, float_vector
    return (_varint(1 << 3) + _varint(_FLOAT_VECTOR) + _field(2, VECTOR.encode())  # type, field_name
            + _field(4, vector_field))  # vectors


def build_request(upsert: bool, collection: str, e: EncodedBatch, start: int, stop: int) -> Any:
    """An Insert (or Upsert) request for rows ``start:stop`` of ``e``, column by column.

    The database travels in the call's metadata (pymilvus's call context), as for
    pymilvus's own requests.
    """
    cls = milvus_pb2.UpsertRequest if upsert else milvus_pb2.InsertRequest
    req = cls(collection_name=collection, num_rows=stop - start)
    ids = req.fields_data.add(type=_VARCHAR, field_name=ID)
    ids.scalars.string_data.data.extend(e.ids[start:stop])
    docs = req.fields_data.add(type=_VARCHAR, field_name=DOCUMENT)
    docs.scalars.string_data.data.extend(e.documents[start:stop])
    meta = req.fields_data.add(type=_JSON, field_name=META_FIELD)
    meta.scalars.json_data.data.extend(e.json[start:stop])
    number = cls.DESCRIPTOR.fields_by_name["fields_data"].number
    req.MergeFromString(_field(number, _vector_field(e.vectors[start:stop])))  # appends to fields_data
    return req


def output_fields(include: frozenset[str]) -> list[str]:
    """The Milvus fields to fetch for ``include`` (the JSON also says whether a document is None)."""
    out = [ID]
    if "vector" in include:
        out.append(VECTOR)
    if "metadata" in include or "document" in include:
        out.append(META_FIELD)
    if "document" in include:
        out.append(DOCUMENT)
    return out


def row_parts(row: dict[str, Any], include: frozenset[str]) -> tuple[dict[str, Any] | None, str | None]:
    """(metadata, document) of one Milvus row, each ``None`` unless included."""
    if "metadata" not in include and "document" not in include:
        return None, None
    meta, no_doc = MetaCodec.decode(row.get(META_FIELD))
    doc = None if no_doc or "document" not in include else row.get(DOCUMENT)
    return (meta if "metadata" in include else None), doc


def vectors_of(rows: Sequence[dict[str, Any]]) -> list[np.ndarray]:
    """float32 vectors of ``rows`` (one conversion for the whole page)."""
    if not rows:
        return []
    return list(np.asarray([r[VECTOR] for r in rows], dtype=np.float32))


def rows_to_records(rows: Sequence[dict[str, Any]], include: frozenset[str]) -> list[Record]:
    """Records from rows of a Milvus query, with the fields of ``include``."""
    vecs = vectors_of(rows) if "vector" in include else None
    out = []
    for i, row in enumerate(rows):
        meta, doc = row_parts(row, include)
        out.append(Record(row[ID], vecs[i] if vecs is not None else None, meta, doc))
    return out
