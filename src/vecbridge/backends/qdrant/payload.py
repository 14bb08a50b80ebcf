"""How a vecbridge record is laid out as a Qdrant point.

Point id
    Qdrant takes only unsigned integers and UUIDs, so every string id becomes the
    UUIDv5 of the string under :data:`ID_NAMESPACE`: the same string always names the
    same point.  The string itself is kept in the payload under ``_vb_id``.  In a
    collection vecbridge did not create, ``"42"`` is point 42 and a canonical UUID string
    is that UUID (:func:`native_point_id`).

Payload
    ``{"_vb_id": id, "_vb_doc": document, "_vb_vec": ..., <scalar metadata>, "_vb_l": {<list metadata>},
    "_vb_e": [<keys of empty lists>]}``

    * Scalar metadata sits at the top level under its own key, as a Qdrant user would
      write it.  Qdrant keeps int, float and bool apart, so types come back exactly.
    * List metadata sits under ``_vb_l``: Qdrant's match on an array field matches any
      element, so a list kept beside the scalars would "equal" its elements; kept apart,
      ``$eq`` sees only scalars and ``$contains`` only lists.
    * A key holding ``"`` or ``\\`` cannot be written in a Qdrant key path even quoted,
      so it is stored as ``_vbk_<hex of its UTF-8>``; user keys never start with ``_vb``,
      which keeps the encoding unambiguous.
    * ``_vb_e`` names the keys whose value is an empty list (absent when there are none):
      Qdrant's only presence test, ``IsEmpty``, holds for a missing field and for ``[]``
      alike, so ``$exists`` could not tell ``{"tags": []}`` from no ``tags`` without it.
      Points written before ``_vb_e`` existed answer ``$exists`` on an empty list as absent.
    * ``_vb_doc`` is absent when the document is ``None``.
    * ``_vb_vec`` (cosine collections only): Qdrant stores cosine vectors normalised, and
      rescaling by the norm does not give the float32 input back (at 384 dimensions no
      row in 2,000 came back bit-exact), so the original float32 bytes are kept, base64.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Mapping, Sequence
from hashlib import sha1
from typing import Any

import numpy as np

from ...types import Record

ID_NAMESPACE = uuid.UUID("6f3c1c2e-6b1d-5a55-9c43-7665636272ef")
ID_KEY = "_vb_id"
DOC_KEY = "_vb_doc"
VEC_KEY = "_vb_vec"
LIST_KEY = "_vb_l"
EMPTY_KEY = "_vb_e"
ENCODED_PREFIX = "_vbk_"

_NS = ID_NAMESPACE.bytes
# RFC 4122 variant bits (10xx) on the first hex digit of the fourth group
_VARIANT = {d: "89ab"[int(d, 16) & 3] for d in "0123456789abcdef"}


def point_id(id_: str) -> str:
    """The Qdrant point id of a vecbridge id: ``str(uuid.uuid5(ID_NAMESPACE, id_))``.

    Spelled out with hashlib because it runs once per record on every write and read,
    and this is four times faster than building a ``uuid.UUID``.
    """
    h = sha1(_NS + id_.encode("utf-8")).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def point_ids(ids: Iterable[str]) -> list[str]:
    return [point_id(i) for i in ids]


def storage_key(key: str) -> str:
    """The payload key a metadata key is stored under."""
    if '"' in key or "\\" in key:
        return ENCODED_PREFIX + key.encode("utf-8").hex()
    return key


def user_key(stored: str) -> str:
    if stored.startswith(ENCODED_PREFIX):
        return bytes.fromhex(stored[len(ENCODED_PREFIX):]).decode("utf-8")
    return stored


def scalar_path(key: str) -> str:
    """The Qdrant key path of a scalar metadata key (quoted: dots are not nesting)."""
    return f'"{storage_key(key)}"'


def list_path(key: str) -> str:
    return f'{LIST_KEY}."{storage_key(key)}"'


def encode_vectors(vectors: np.ndarray) -> list[str]:
    """Base64 of each row's little-endian float32 bytes."""
    rows = np.ascontiguousarray(vectors, dtype="<f4")
    b64 = base64.b64encode
    return [b64(r).decode("ascii") for r in rows]


def decode_vector(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32)


def encode_payloads(ids: Sequence[str], metadatas: Sequence[Mapping[str, Any]],
                    documents: Sequence[str | None], raw_vectors: list[str] | None) -> list[dict[str, Any]]:
    """The payload of each record of a validated batch."""
    out = []
    for i, (id_, meta, doc) in enumerate(zip(ids, metadatas, documents)):
        p: dict[str, Any] = {ID_KEY: id_}
        if doc is not None:
            p[DOC_KEY] = doc
        if raw_vectors is not None:
            p[VEC_KEY] = raw_vectors[i]
        lists: dict[str, Any] | None = None
        empty: list[str] | None = None
        for key, value in meta.items():
            k = storage_key(key)
            if isinstance(value, list):
                if lists is None:
                    lists = {}
                lists[k] = list(value)
                if not value:
                    empty = [*(empty or []), k]
            else:
                p[k] = value
        if lists is not None:
            p[LIST_KEY] = lists
        if empty is not None:
            p[EMPTY_KEY] = empty
        out.append(p)
    return out


def decode_metadata(payload: Mapping[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key, value in payload.items():
        if key.startswith("_vb"):
            if key.startswith(ENCODED_PREFIX):
                meta[user_key(key)] = value
            elif key == LIST_KEY and isinstance(value, dict):
                for k, v in value.items():
                    meta[user_key(k)] = v
            continue
        meta[key] = value
    return meta


def payload_selector(include: frozenset[str], raw_in_payload: bool) -> Any:
    """What ``with_payload`` must ask for to serve ``include``."""
    from qdrant_client import models

    want_vec = raw_in_payload and "vector" in include
    if "metadata" in include:
        drop = [k for k, needed in ((DOC_KEY, "document" in include), (VEC_KEY, want_vec)) if not needed]
        return models.PayloadSelectorExclude(exclude=drop) if drop else True
    keep = [ID_KEY] + ([DOC_KEY] if "document" in include else []) + ([VEC_KEY] if want_vec else [])
    return keep


def to_record(point: Any, include: frozenset[str], using: str | None) -> Record:
    """A vecbridge :class:`Record` from a Qdrant point (``Record`` or ``ScoredPoint``)."""
    payload = point.payload or {}
    vector = None
    if "vector" in include:
        raw = payload.get(VEC_KEY)
        if raw is not None:
            vector = decode_vector(raw)
        else:
            v = point.vector
            if isinstance(v, dict):
                v = v.get(using or "")
            vector = None if v is None else np.asarray(v, dtype=np.float32)
    return Record(
        str(payload.get(ID_KEY, point.id)),
        vector,
        decode_metadata(payload) if "metadata" in include else None,
        payload.get(DOC_KEY) if "document" in include else None,
    )
