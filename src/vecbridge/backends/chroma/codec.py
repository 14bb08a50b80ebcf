"""How vecbridge metadata and documents are stored in Chroma, and read back.

Chroma 1.5 keeps str, int, float (``1.0`` stays a float) and bool, and non-empty
homogeneous lists of them, with their types, over HTTP and embedded alike (checked).
What it cannot hold, or what its filters need, is encoded under reserved ``_vb`` keys
(user keys never start with ``_vb``):

``_vbnum``
    the list of keys whose value is an int or a float, so that a negated range operator
    can also match records where the key is missing or holds no number (see :mod:`.translator`);
``_vbempty``
    the list of keys holding an empty list, which Chroma refuses.  An empty list and a
    missing key answer every filter alike (comparisons false, ``$ne``/``$nin`` true), so
    leaving the key out of Chroma keeps the filters right;
``_vbk`` + key
    a key Chroma refuses (starting with ``#``) or drops silently (starting with ``chroma:``);
``_vbf``
    the exact value of each float (or list holding one) that Chroma would not give back
    as written, as JSON text.  Chroma passes metadata through ``serde_json`` without
    its exact float parsing, so a float written with many significant digits can come
    back one unit in the last place off (about one random 17-digit float in five; 0.11
    is always kept); :func:`chroma_keeps` reproduces that parser (checked on 12,000
    floats: it names exactly those that change) and picks those floats out.  Chroma
    also stores ``-0.0`` as ``0.0`` (alone and in lists), so :func:`stored_exactly`
    sends ``-0.0`` there too; as a filter operand ``-0.0`` equals ``0.0`` and needs
    nothing.

A record's vector is kept exactly in cosine collections: Chroma's cosine space keeps
unit vectors and their norms, whose product is not always the float32 given (most
16-d rows differ in some component by one unit in the last place).  Its float32 bytes
go, base64 behind :data:`VECTOR_PREFIX`, into the record's ``uri`` -- a field
vecbridge has no other use for, that Chroma returns only when asked and keeps out of
the metadata (so queries do not carry it, and filters do not see it).  It is read
only where it agrees with Chroma's own vector to float32 rounding, so a vector changed
by another tool reads as Chroma holds it.

A record's document is cleared by writing :data:`NO_DOCUMENT` (a NUL, which no
vecbridge document may contain), because Chroma's upsert keeps the old document when
given ``None``.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import numpy as np

__all__ = [
    "EMPTY_LISTS",
    "NO_DOCUMENT",
    "NUMERIC_KEYS",
    "VECTOR_PREFIX",
    "chroma_keeps",
    "decode_document",
    "decode_metadata",
    "decode_vector",
    "encode_metadata",
    "encode_vectors",
    "stored_exactly",
    "stored_key",
]

NUMERIC_KEYS = "_vbnum"
EMPTY_LISTS = "_vbempty"
EXACT_FLOATS = "_vbf"
VECTOR_PREFIX = "vecbridge:f32:"
ESCAPE = "_vbk"
RESERVED = "_vb"
NO_DOCUMENT = "\x00"


def stored_key(key: str) -> str:
    """The name under which Chroma stores the user key ``key``."""
    if key[:1] == "#" or key.startswith("chroma:"):
        return ESCAPE + key
    return key


def _user_key(stored: str) -> str:
    return stored.removeprefix(ESCAPE)


def encode_vectors(vectors: np.ndarray) -> list[str]:
    """The exact float32 bytes of each row, as text (one base64 pass when rows allow it)."""
    a = np.ascontiguousarray(vectors, dtype="<f4")
    row, buf = a.shape[1] * 4, a.tobytes()
    if row % 3 == 0:  # base64 of whole 3-byte groups: the rows' encodings are slices of one
        text, width = base64.b64encode(buf).decode("ascii"), row // 3 * 4
        return [VECTOR_PREFIX + text[i:i + width] for i in range(0, len(text), width)]
    return [VECTOR_PREFIX + base64.b64encode(buf[i:i + row]).decode("ascii") for i in range(0, len(buf), row)]


def decode_vector(text: Any, dimension: int) -> np.ndarray | None:
    """The vector :func:`encode_vectors` wrote, or ``None`` (a uri written by someone else)."""
    if not isinstance(text, str) or not text.startswith(VECTOR_PREFIX):
        return None
    raw = base64.b64decode(text[len(VECTOR_PREFIX):])
    return np.frombuffer(raw, dtype="<f4").astype(np.float32) if len(raw) == 4 * dimension else None


def _serde_f64(text: str) -> float:
    """What ``serde_json`` (without ``float_roundtrip``) reads for the JSON number ``text``.

    The significand as an f64, times or divided by a correctly rounded power of ten (in
    steps of 1e308 beyond): two roundings where the exact parse has one.
    """
    negative = text.startswith("-")
    mantissa, _, exp_text = text.lstrip("-").partition("e")
    whole, _, fraction = mantissa.partition(".")
    exponent = (int(exp_text) if exp_text else 0) - len(fraction)
    f = float(int(whole + fraction))
    while True:
        if abs(exponent) <= 308:
            power = float(f"1e{abs(exponent)}")
            f = f * power if exponent >= 0 else f / power
            break
        if f == 0.0:
            break
        if exponent > 0:
            return math.inf
        f /= 1e308
        exponent += 308
    return -f if negative else f


def chroma_keeps(value: float) -> bool:
    """Does Chroma store, compare and give back the float ``value`` exactly?"""
    return value == 0.0 or _serde_f64(repr(value)) == value


def stored_exactly(value: float) -> bool:
    """Does Chroma give back the metadata float ``value`` as written (sign of zero included)?"""
    if value == 0.0:
        return math.copysign(1.0, value) > 0
    return chroma_keeps(value)


def encode_metadata(metadata: dict[str, Any]) -> dict[str, Any] | None:
    """Chroma metadata for a validated vecbridge metadata dict (``None`` when empty)."""
    if not metadata:
        return None
    out: dict[str, Any] = {}
    numeric: list[str] = []
    empty: list[str] = []
    exact: dict[str, Any] = {}
    for key, value in metadata.items():
        if key[:1] == "#" or key.startswith("chroma:"):
            key = ESCAPE + key
        kind = type(value)
        if kind is list:
            if not value:
                empty.append(key)
                continue
            if type(value[0]) is float and not all(stored_exactly(v) for v in value):
                exact[key] = value
        elif kind is float:
            numeric.append(key)
            if not stored_exactly(value):
                exact[key] = value
        elif kind is int:
            numeric.append(key)
        out[key] = value
    if numeric:
        out[NUMERIC_KEYS] = numeric
    if empty:
        out[EMPTY_LISTS] = empty
    if exact:
        out[EXACT_FLOATS] = json.dumps(exact)  # repr: exact for every float
    return out or None


def decode_metadata(stored: dict[str, Any] | None) -> dict[str, Any]:
    """The vecbridge metadata of a record whose Chroma metadata is ``stored``."""
    if not stored:
        return {}
    out = {k: v for k, v in stored.items() if not k.startswith(RESERVED)}
    if len(out) == len(stored):
        return out
    for key, value in stored.items():
        if key.startswith(ESCAPE):
            out[key[len(ESCAPE):]] = value
        elif key == EMPTY_LISTS:
            for k in value:
                out[_user_key(k)] = []
        # other _vb keys (_vbnum, _vbf) are bookkeeping
    exact = stored.get(EXACT_FLOATS)
    if isinstance(exact, str):  # after the loop: these win over Chroma's approximations
        for k, v in json.loads(exact).items():
            out[_user_key(k)] = v
    return out


def decode_document(stored: str | None) -> str | None:
    return None if stored is None or stored == NO_DOCUMENT else stored

