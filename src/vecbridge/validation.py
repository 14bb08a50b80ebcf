"""Validation of ids, vectors, metadata, documents, names and index specs.

One place, used by every backend.  A whole batch is checked before anything is
written; messages name the batch position or the metadata key and say why.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import (
    DimensionMismatchError,
    InvalidCollectionNameError,
    InvalidMetadataError,
    InvalidRecordError,
    InvalidVectorError,
    UnsupportedFeatureError,
)
from .types import INCLUDE_ALL, METRICS

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_ID_BYTES",
    "PORTABLE_NAME",
    "Batch",
    "validate_batch",
    "validate_dimension",
    "validate_ids",
    "validate_include",
    "validate_index",
    "validate_metadata",
    "validate_metric",
    "validate_name",
    "validate_query_vectors",
    "validate_vectors",
]

MAX_ID_BYTES = 256
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: A vector's squared length must be at most this, so that every distance and dot product of
#: two such vectors stays finite in float32 (|q - v|^2 <= 4e37 < 3.4e38) ...
MAX_SQUARED_NORM = 1e37
#: ... and, in a cosine collection, at least this, so that normalising it neither underflows
#: nor divides by (nearly) zero in float32.
MIN_COSINE_SQUARED_NORM = 1e-30
#: A collection name of this form works on every backend.
PORTABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{1,61}[A-Za-z0-9]")
PORTABLE_RULE = "3 to 63 characters of [A-Za-z0-9_], starting with a letter and not ending with '_'"


@dataclass(frozen=True)
class Batch:
    """A validated write batch; every list has the same length."""

    ids: list[str]
    vectors: np.ndarray | None  # (n, d) float32, C-contiguous
    metadatas: list[dict[str, Any]] | None
    documents: list[str | None] | None

    def __len__(self) -> int:
        return len(self.ids)


def _check_text(text: str, what: str, exc: type[Exception]) -> None:
    if "\x00" in text:
        raise exc(f"{what} contains a NUL character, which databases such as PostgreSQL cannot store")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise exc(f"{what} is not valid Unicode text ({e.reason})") from None


def validate_ids(ids: Any, *, unique: bool = True, what: str = "ids") -> list[str]:
    """Check a list of ids: non-empty strings of at most 256 UTF-8 bytes."""
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise InvalidRecordError(f"{what} must be a list of strings, not {type(ids).__name__}")
    out = list(ids)
    seen: dict[str, int] = {}
    for i, id_ in enumerate(out):
        if not isinstance(id_, str):
            raise InvalidRecordError(f"{what}[{i}] is {type(id_).__name__} {id_!r}; ids must be strings")
        if not id_:
            raise InvalidRecordError(f"{what}[{i}] is an empty string; ids must be non-empty")
        _check_text(id_, f"{what}[{i}]", InvalidRecordError)
        n = len(id_.encode("utf-8"))
        if n > MAX_ID_BYTES:
            raise InvalidRecordError(f"{what}[{i}] is {n} bytes long in UTF-8; ids may have at most {MAX_ID_BYTES}")
        if unique:
            first = seen.setdefault(id_, i)
            if first != i:
                raise InvalidRecordError(f"{what}[{i}] {id_!r} repeats {what}[{first}]; an id may appear once per batch")
    return out


def validate_vectors(vectors: Any, dimension: int, metric: str, *, what: str = "vectors") -> np.ndarray:
    """Return ``vectors`` as a C-contiguous (n, dimension) float32 array, or raise."""
    if isinstance(vectors, np.ndarray) and vectors.dtype == np.float32:
        arr = vectors
    else:
        try:
            with np.errstate(over="ignore"):  # too large for float32 becomes inf, refused below
                arr = np.asarray(vectors, dtype=np.float32)
        except (ValueError, TypeError) as exc:
            raise InvalidVectorError(_ragged(vectors, what) or f"{what} must be a 2-D array of numbers ({exc})") from None
    if arr.ndim != 2:
        if arr.ndim == 1 and arr.size == 0:
            arr = arr.reshape(0, dimension)
        else:
            raise InvalidVectorError(f"{what} must be 2-D (one row per record), got an array of shape {arr.shape}")
    if arr.shape[1] != dimension:
        raise DimensionMismatchError(
            f"{what}[0] has dimension {arr.shape[1]}, the collection's is {dimension}"
            if arr.shape[0] else f"{what} has dimension {arr.shape[1]}, the collection's is {dimension}"
        )
    if not arr.shape[0]:
        return np.ascontiguousarray(arr)
    # One pass decides the common case: a NaN or infinity makes the squared length NaN or
    # infinite, a zero vector makes it 0, so in-range squared lengths mean a valid batch.
    # (float32 is exact enough for these bounds: an overflow is infinite, so above the upper
    # one, and components too small to square in float32 cannot reach the lower one.)
    low = MIN_COSINE_SQUARED_NORM if metric == "cosine" else 0.0
    if arr.shape[0] == 1:  # a single query: scalar arithmetic is several times cheaper
        row = arr[0]
        one = float(np.dot(row, row))
        if not low <= one <= MAX_SQUARED_NORM:
            _diagnose(arr, np.array([one]), metric, what)
    else:
        sq = np.einsum("ij,ij->i", arr, arr)
        if not ((sq >= low) & (sq <= MAX_SQUARED_NORM)).all():
            _diagnose(arr, sq.astype(np.float64), metric, what)
    return arr if arr.flags.c_contiguous else np.ascontiguousarray(arr)


def _diagnose(arr: np.ndarray, sq: np.ndarray, metric: str, what: str) -> None:
    """Raise the error that names the first vector out of the contract's limits."""
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        i = int(np.argmin(finite))
        raise InvalidVectorError(f"{what}[{i}] holds NaN or infinity (or a number too large for float32)")
    if arr.shape[0]:
        if metric == "cosine":
            zero = ~arr.any(axis=1)
            if zero.any():
                i = int(np.argmax(zero))
                raise InvalidVectorError(f"{what}[{i}] is the zero vector, which has no direction in a cosine collection")
            tiny = sq < MIN_COSINE_SQUARED_NORM
            if tiny.any():
                i = int(np.argmax(tiny))
                raise InvalidVectorError(
                    f"{what}[{i}] has the length {np.sqrt(sq[i]):.3g}; in a cosine collection a vector's length "
                    f"must be at least {np.sqrt(MIN_COSINE_SQUARED_NORM):g} (float32 cannot normalise it exactly)")
        huge = sq > MAX_SQUARED_NORM
        if huge.any():
            i = int(np.argmax(huge))
            raise InvalidVectorError(
                f"{what}[{i}] has the length {np.sqrt(sq[i]):.3g}; a vector's length must be at most "
                f"{np.sqrt(MAX_SQUARED_NORM):.3g}, so that its distances stay finite in float32")


def plain_scalar(value: Any) -> Any:
    """``value`` as a plain Python scalar: numpy's (and other subclasses') bools, integers,
    floats and strings become ``bool``, ``int``, ``float`` and ``str``; anything else as it is."""
    cls = type(value)
    if cls is str or cls is int or cls is float or cls is bool:
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def _ragged(vectors: Any, what: str) -> str | None:
    """A message naming the first row whose length differs from the first row's, if any."""
    if isinstance(vectors, np.ndarray) or not isinstance(vectors, Sequence) or not vectors:
        return None
    try:
        first = len(vectors[0])
        for i, row in enumerate(vectors):
            if isinstance(row, (str, bytes)):
                return f"{what}[{i}] is a {type(row).__name__}, not a vector of numbers"
            if len(row) != first:
                return (f"{what}[{i}] has {len(row)} numbers, {what}[0] has {first}; every vector has the "
                        "collection's dimension")
    except TypeError:
        for i, row in enumerate(vectors):
            if not isinstance(row, (int, float, np.number)) or isinstance(row, bool):
                return f"{what}[{i}] is {type(row).__name__} {row!r}, not a number or a vector"
    return None


def _check_scalar(value: Any, where: str) -> Any:
    value = plain_scalar(value)
    cls = type(value)
    if cls is bool:
        return value
    if cls is str:
        _check_text(value, where, InvalidMetadataError)
        return value
    if cls is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise InvalidMetadataError(f"{where} = {value} does not fit in a signed 64-bit integer")
        return value
    if cls is float:
        if not math.isfinite(value):
            raise InvalidMetadataError(f"{where} = {value}; metadata numbers must be finite")
        return value
    raise InvalidMetadataError(
        f"{where} is {type(value).__name__}; metadata values are str, int, float, bool or a list of one of those"
    )


def _kind(value: Any) -> type:
    return bool if isinstance(value, bool) else type(value)


def validate_metadata(metadata: Any, where: str = "metadata") -> dict[str, Any]:
    """Check one metadata dict; return it as a plain dict (``None`` -> ``{}``)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise InvalidMetadataError(f"{where} must be a dict, not {type(metadata).__name__}")
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if type(key) is not str:
            key = plain_scalar(key)
        if not isinstance(key, str) or not key:
            raise InvalidMetadataError(f"{where} has the key {key!r}; keys must be non-empty strings")
        if key.startswith("$") or key.startswith("_vb"):
            raise InvalidMetadataError(f"{where} has the key {key!r}; keys may not start with '$' or '_vb' (reserved)")
        _check_text(key, f"{where} key {key!r}", InvalidMetadataError)
        at = f"{where}[{key!r}]"
        if isinstance(value, (list, tuple, np.ndarray)):
            items = [_check_scalar(v, f"{at}[{j}]") for j, v in enumerate(value)]
            kinds = {_kind(v) for v in items}
            if len(kinds) > 1:
                names = sorted(k.__name__ for k in kinds)
                raise InvalidMetadataError(f"{at} mixes {', '.join(names)}; a list holds values of one type")
            out[key] = items
        else:
            out[key] = _check_scalar(value, at)
    return out


def _optional_list(values: Any, n: int, name: str) -> list[Any] | None:
    if values is None:
        return None
    if isinstance(values, (str, bytes, dict)) or not isinstance(values, Iterable):
        raise InvalidRecordError(f"{name} must be a list, not {type(values).__name__}")
    out = list(values)
    if len(out) != n:
        raise InvalidRecordError(f"{name} has {len(out)} items but ids has {n}; they must have the same length")
    return out


def validate_batch(
    ids: Any,
    vectors: Any,
    metadatas: Any,
    documents: Any,
    *,
    dimension: int,
    metric: str,
    require_vectors: bool = True,
) -> Batch:
    """Validate a whole write batch before any of it is written."""
    id_list = validate_ids(ids)
    n = len(id_list)
    arr = None
    if vectors is not None or require_vectors:
        if vectors is None:
            raise InvalidRecordError("vectors are required")
        if isinstance(vectors, np.ndarray):
            rows = vectors.shape[0] if vectors.ndim >= 1 else 1
            flat = vectors.ndim == 1
        else:
            vectors = list(vectors)
            rows = len(vectors)
            flat = bool(vectors) and all(isinstance(v, (int, float, np.number)) for v in vectors)
        if flat:
            raise InvalidVectorError(f"vectors is one vector of {rows} numbers; write vectors as a 2-D array, one row "
                                     f"per id (for one record: [vector])")
        if rows != n:
            raise InvalidRecordError(f"vectors has {rows} rows but ids has {n}; they must have the same length")
        arr = validate_vectors(vectors, dimension, metric)
    metas = _optional_list(metadatas, n, "metadatas")
    if metas is not None:
        metas = [validate_metadata(m, f"metadatas[{i}]") for i, m in enumerate(metas)]
    docs = _optional_list(documents, n, "documents")
    if docs is not None:
        for i, d in enumerate(docs):
            if d is not None:
                if not isinstance(d, str):
                    raise InvalidRecordError(f"documents[{i}] is {type(d).__name__}; documents are strings or None")
                _check_text(d, f"documents[{i}]", InvalidRecordError)
    return Batch(id_list, arr, metas, docs)


def size_violations(ids: Sequence[str], metadatas: Sequence[dict[str, Any] | None] | None,
                    documents: Sequence[str | None] | None, *, max_id_bytes: int = MAX_ID_BYTES,
                    max_document_bytes: int | None = None,
                    max_metadata_bytes: int | None = None,
                    metadata_bytes: Callable[[dict[str, Any], str | None], int] | None = None
                    ) -> Iterator[tuple[int, str, int, int]]:
    """``(position, part, bytes, limit)`` for every id, document or metadata of a batch that is
    larger than a backend's limit; metadata is measured by ``metadata_bytes(metadata,
    document)``, by default its JSON in UTF-8."""
    if max_id_bytes < MAX_ID_BYTES:
        for i, id_ in enumerate(ids):
            n = len(id_.encode("utf-8"))
            if n > max_id_bytes:
                yield i, "id", n, max_id_bytes
    if max_document_bytes is not None and documents is not None:
        for i, doc in enumerate(documents):
            n = len(doc.encode("utf-8")) if doc else 0
            if n > max_document_bytes:
                yield i, "document", n, max_document_bytes
    if max_metadata_bytes is not None and metadatas is not None:
        for i, meta in enumerate(metadatas):
            if metadata_bytes is not None:
                n = metadata_bytes(meta or {}, documents[i] if documents is not None else None)
            else:
                n = len(json.dumps(meta, ensure_ascii=False).encode("utf-8")) if meta else 0
            if n > max_metadata_bytes:
                yield i, "metadata", n, max_metadata_bytes


def validate_query_vectors(vectors: Any, dimension: int, metric: str) -> tuple[np.ndarray, bool]:
    """Return (2-D float32 array, single) where ``single`` means one 1-D vector was given."""
    if isinstance(vectors, np.ndarray) and vectors.dtype == np.float32:
        arr = vectors
    else:
        try:
            with np.errstate(over="ignore"):
                arr = np.asarray(vectors, dtype=np.float32)
        except (ValueError, TypeError) as exc:
            raise InvalidVectorError(_ragged(vectors, "query vectors") or f"query vectors must be numbers ({exc})") \
                from None
    single = arr.ndim == 1
    if single:
        arr = arr.reshape(1, -1)
    return validate_vectors(arr, dimension, metric, what="query vectors"), single


_DEFAULT_INCLUDE = frozenset(("metadata", "document"))


def validate_include(include: Any, default: Sequence[str] = ("metadata", "document")) -> frozenset[str]:
    if include is None:
        return _DEFAULT_INCLUDE if default == ("metadata", "document") else frozenset(default)
    if isinstance(include, str):
        include = [include]
    out = set()
    for item in include:
        if item not in INCLUDE_ALL:
            raise ValueError(f"include has {item!r}; choose among {', '.join(INCLUDE_ALL)}")
        out.add(item)
    return frozenset(out)


def validate_name(name: Any, pattern: re.Pattern[str] = PORTABLE_NAME, rule: str = PORTABLE_RULE, backend: str = "") -> str:
    if not isinstance(name, str) or not pattern.fullmatch(name):
        on = f" on {backend}" if backend else ""
        raise InvalidCollectionNameError(f"collection name {name!r} is not allowed{on}: names are {rule}")
    return name


def validate_dimension(dimension: Any) -> int:
    if isinstance(dimension, bool) or not isinstance(dimension, (int, np.integer)) or not 0 < int(dimension) <= 65536:
        raise InvalidRecordError(f"dimension must be an integer from 1 to 65536, got {dimension!r}")
    return int(dimension)


def validate_metric(metric: Any) -> str:
    if metric not in METRICS:
        raise UnsupportedFeatureError(f"metric {metric!r} is not one of {', '.join(METRICS)}")
    return str(metric)


_INDEX_KEYS = {
    "flat": set(),
    "hnsw": {"m", "ef_construction", "ef_search"},
    "ivf": {"nlist", "nprobe"},
}


def validate_index(index: Any, supported: Iterable[str], backend: str) -> dict[str, Any]:
    """Normalise an ``index`` argument; ``None`` means the backend's default."""
    if index is None:
        return {"type": "default"}
    if isinstance(index, str):
        index = {"type": index}
    if not isinstance(index, dict) or "type" not in index:
        raise ValueError(f"index must be None, a type name or a dict with a 'type', got {index!r}")
    kind = str(index["type"]).lower()
    if kind not in _INDEX_KEYS:
        raise UnsupportedFeatureError(f"index type {kind!r} is unknown; choose among flat, hnsw, ivf")
    if kind not in set(supported):
        raise UnsupportedFeatureError(f"the {backend} backend has no {kind!r} index; it offers {', '.join(sorted(supported))}")
    extra = set(index) - {"type"} - _INDEX_KEYS[kind]
    if extra:
        raise ValueError(f"index option(s) {', '.join(sorted(extra))} do not apply to a {kind!r} index")
    for key in set(index) - {"type"}:
        v = index[key]
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"index option {key!r} must be a positive integer, got {v!r}")
    return {**index, "type": kind}
