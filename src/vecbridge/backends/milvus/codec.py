"""Encoded write batches and the decoding of Milvus rows into records.

A batch is encoded once (metadata to the JSON layout of :mod:`.translator`; the core has
checked the sizes against Milvus's field limits, metadata measured as stored, see
:func:`stored_metadata_bytes`) and cut into slices so that no request passes the server's
gRPC message limit (64 MiB on a default Milvus proxy); :mod:`.fastpath` turns a slice
into a request.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import orjson

from ...errors import InvalidMetadataError
from ...types import Record
from ...validation import Batch
from .translator import META_FIELD, MetaCodec

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
    "output_fields",
    "row_parts",
    "rows_to_records",
    "stored_metadata_bytes",
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


class EncodedBatch:
    """A validated batch with its metadata JSON encoded and its row sizes known."""

    def __init__(self, b: Batch):
        assert b.vectors is not None and b.metadatas is not None and b.documents is not None
        self.ids, self.vectors = b.ids, b.vectors
        self.documents = ["" if d is None else d for d in b.documents]
        self.meta = [MetaCodec.encode(m, d) for m, d in zip(b.metadatas, b.documents)]
        self.json = [orjson.dumps(m) for m in self.meta]
        # The core measured every metadata given (Capabilities.metadata_bytes); this catches
        # what it could not see: update's merge of a stored metadata with a document set to
        # None, which adds the no-document flag.
        for i, j in enumerate(self.json):
            if len(j) > MAX_JSON_BYTES:
                raise InvalidMetadataError(f"metadatas[{i}] (id {self.ids[i]!r}) takes {len(j):,} bytes as Milvus "
                                           f"stores it; a Milvus JSON field holds at most {MAX_JSON_BYTES:,} bytes; "
                                           "nothing was written")
        doc_bytes = [len(d.encode("utf-8")) for d in self.documents]
        row_fixed = self.vectors.shape[1] * 4 + _ROW_OVERHEAD
        self.row_bytes = [row_fixed + len(i) * 4 + d + len(j) for i, d, j in zip(self.ids, doc_bytes, self.json)]

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, start: int, stop: int) -> list[dict[str, Any]]:
        """Rows ``start:stop`` for pymilvus's public ``upsert``."""
        return [{ID: self.ids[i], VECTOR: self.vectors[i], DOCUMENT: self.documents[i], META_FIELD: self.meta[i]}
                for i in range(start, stop)]

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


def stored_metadata_bytes(metadata: dict[str, Any], document: str | None) -> int:
    """Bytes of ``metadata`` as Milvus stores it: the type-tagged JSON object of
    :class:`~.translator.MetaCodec` (with the no-document flag), the value a Milvus JSON
    field's limit applies to (``Capabilities.metadata_bytes``)."""
    return len(orjson.dumps(MetaCodec.encode(metadata, document)))


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


def vectors_of(rows: Sequence[dict[str, Any]], field: str = VECTOR) -> list[np.ndarray]:
    """float32 vectors of ``rows`` (one conversion for the whole page)."""
    if not rows:
        return []
    return list(np.asarray([r[field] for r in rows], dtype=np.float32))


def rows_to_records(rows: Sequence[dict[str, Any]], include: frozenset[str]) -> list[Record]:
    """Records from rows of a Milvus query, with the fields of ``include``."""
    vecs = vectors_of(rows) if "vector" in include else None
    out = []
    for i, row in enumerate(rows):
        meta, doc = row_parts(row, include)
        out.append(Record(row[ID], vecs[i] if vecs is not None else None, meta, doc))
    return out
