"""Chroma collections vecbridge did not create (layout ``native``).

Any chromadb collection opens, whatever embedding function it was made with: vecbridge
opens it with ``embedding_function=None`` and always passes vectors, so that function is
never called.  Its schema is the same for every collection -- Chroma's own string ids, one
vector (the ``embedding``, its dimension read from the data), free metadata keys and
documents of its own, the metric its HNSW space says (``cosine``/``l2``/``ip``) -- described
here as a :class:`~vecbridge.mapping.NativeSchema` for the core's :func:`~vecbridge.mapping.decide`.

Such a collection is read and written as it is: its metadata go through
:func:`~vecbridge.mapping.to_metadata` (``None`` left out) and are written back without any of
vecbridge's reserved ``_vb`` keys, its documents as they are, its uris left alone (vecbridge's
own collections keep a cosine vector's exact bytes there; a native one keeps Chroma's
vector).  A value Chroma cannot hold (an empty list, a list of mixed types, a key starting
with ``#`` or ``chroma:``) is refused with ``InvalidMetadataError`` naming it, before
anything is written.  Filters compile as for any collection without the ``_vbnum`` list
(:mod:`.translator`, ``vecbridge_format=False``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...errors import InvalidMetadataError, UnsupportedFeatureError
from ...mapping import MAPPING_OPTIONS, CollectionMapping, Field, NativeSchema, decide, split_metadata, to_metadata
from ...options import Option

__all__ = ["MAPPING_DECLARED", "decide_mapping", "from_native", "schema_of", "to_native"]

#: The mapping's URL options, declared by the client (Chroma's schema leaves them little to choose).
MAPPING_DECLARED = tuple(Option(name, doc="collections vecbridge did not create (CONTRACT section 7)")
                         for name in MAPPING_OPTIONS)


def schema_of(name: str, dimension: int, metric: str) -> NativeSchema:
    """The schema every Chroma collection has."""
    return NativeSchema(name, (Field("id", "id", "string", primary=True),
                               Field("embedding", "vector", "float32[]", dimension=dimension)),
                        metric=metric, free_keys=True, own_documents=True)


def decide_mapping(name: str, dimension: int, metric: str, options: Mapping[str, Any]) -> CollectionMapping:
    opts = {k: options.get(k) for k in MAPPING_OPTIONS if options.get(k) not in (None, "")}
    mapping = decide(schema_of(name, dimension, metric), opts)
    if mapping.metric != metric:  # the space is fixed when Chroma makes the collection
        raise UnsupportedFeatureError(f"chroma collection {name!r} uses the space {metric!r}; ?metric={mapping.metric} "
                                      "cannot change it (drop the option)")
    return mapping


def from_native(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """A native record's metadata as contract metadata (the one value rule)."""
    return to_metadata(meta or {})


def to_native(meta: Mapping[str, Any] | None, mapping: CollectionMapping, where: str) -> dict[str, Any] | None:
    """Contract metadata as Chroma stores it in a native collection (``None``: no keys)."""
    _, keys = split_metadata(dict(meta or {}), mapping)
    for key, value in keys.items():
        if key.startswith("#") or key.startswith("chroma:"):
            raise InvalidMetadataError(f"{where}: the metadata key {key!r} cannot be stored in chroma collection "
                                       f"{mapping.collection!r} (Chroma refuses or drops keys starting with '#' or "
                                       "'chroma:'); rename it")
        if isinstance(value, list):
            kinds = {type(v) for v in value}
            if not value or len(kinds) > 1:
                raise InvalidMetadataError(
                    f"{where}: the metadata key {key!r} holds {'an empty list' if not value else 'a list of mixed types'}"
                    f", which chroma collection {mapping.collection!r} cannot hold (Chroma keeps non-empty lists of "
                    "one type); leave the key out or give it one type")
    return keys or None
