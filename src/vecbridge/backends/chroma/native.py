"""Chroma collections in Chroma's own layout: ``native``, ``langchain`` and ``llamaindex``.

Any chromadb collection opens, whatever embedding function it was made with: vecbridge
opens it with ``embedding_function=None`` and always passes vectors, so that function is
never called.  Its schema is the same for every collection -- Chroma's own string ids, one
vector (the ``embedding``, its dimension read from the data), free metadata keys and
documents of its own, the metric its HNSW space says (``cosine``/``l2``/``ip``) -- described
here as a :class:`~vecbridge.mapping.NativeSchema` for the core's :func:`~vecbridge.mapping.decide`.

Such a collection is read and written as it is: its metadata go through
:func:`~vecbridge.mapping.to_metadata` (``None`` left out, each conversion counted in the
collection's ``conversions``) and are written back without any of vecbridge's reserved
``_vb`` keys, its documents as they are, its uris left alone (vecbridge's own collections
keep a cosine vector's exact bytes there; a native one keeps Chroma's vector).  A value
Chroma cannot hold (an empty list, a list of mixed types, a key starting with ``#`` or
``chroma:``) is refused with ``InvalidMetadataError`` naming it, before anything is
written.  Filters compile as for any collection without the ``_vbnum`` list
(:mod:`.translator`, ``vecbridge_format=False``).

The frameworks' Chroma integrations (langchain-chroma, llama-index-vector-stores-chroma) use
exactly this layout: Chroma's ids, documents (the text) and metadata.  So ``langchain`` and
``llamaindex`` are ``native`` plus :mod:`vecbridge.layouts`' ``encode`` before a write and
``decode`` after a read (:class:`RecordCodec`); LlamaIndex's node keys (``_node_content`` …)
are what tells its collections apart (:func:`detect_layout`), while a LangChain collection
cannot be told from one made by hand (and needs nothing else).

A collection vecbridge *creates* in one of these layouts (``?layout=native`` …) is a plain
Chroma collection made as its users make one -- ``embedding_function=None``, the metric as
its HNSW space -- carrying one collection metadata key, ``vecbridge_config`` (the dimension,
metric and layout), so that it reopens while still empty (Chroma knows no dimension before
the first vector) and with its layout; chromadb and the frameworks ignore that key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ...errors import InvalidMetadataError, UnsupportedFeatureError
from ...layouts import FRAMEWORKS, FrameworkLayout, detect, framework_layout
from ...mapping import (
    MAPPING_OPTIONS,
    CollectionMapping,
    Conversions,
    Field,
    NativeSchema,
    decide,
    split_metadata,
    to_metadata,
)
from ...options import Option

__all__ = ["GIVES_UP", "MAPPING_DECLARED", "NATIVE_LAYOUTS", "RecordCodec", "creation_metadata", "decide_mapping",
           "detect_layout", "from_native", "schema_of", "to_native"]

#: The mapping's URL options, declared by the client (Chroma's schema leaves them little to choose).
MAPPING_DECLARED = tuple(Option(name, doc="collections vecbridge did not create (CONTRACT section 7)")
                         for name in MAPPING_OPTIONS)
#: The layouts kept in Chroma's own schema (every one but ``vecbridge``).
NATIVE_LAYOUTS = ("native", *FRAMEWORKS)
#: How many records' metadata keys :func:`detect_layout` looks at.
DETECT_SAMPLE = 5
#: What Chroma's own layout cannot keep that vecbridge's keeps (``config["mapping"]``, the docs).
GIVES_UP = (
    "gives up: a cosine vector comes back as Chroma keeps it (norm x unit vector, off by an ulp; no exact copy)",
    "gives up: a float of many digits can come back an ulp off; -0.0 comes back as 0.0",
    "refuses: empty lists, lists of mixed types, keys starting with '#' or 'chroma:' (nothing written)",
    "filters: a negated range ($not of $gt/$lt...) is refused (no list of numeric keys to complete it)",
)


def schema_of(name: str, dimension: int, metric: str, layout: str = "native") -> NativeSchema:
    """The schema every Chroma collection has."""
    return NativeSchema(name, (Field("id", "id", "string", primary=True),
                               Field("embedding", "vector", "float32[]", dimension=dimension)),
                        metric=metric, free_keys=True, own_documents=True, layout=layout)


def detect_layout(native: Any, stored: Mapping[str, Any], options: Mapping[str, Any]) -> str:
    """The layout of a collection not in vecbridge's: the URL's ``layout``, else the one it was
    created with, else what the metadata keys of its first records show (:func:`vecbridge.layouts.detect`)."""
    given = options.get("layout")
    if given not in (None, ""):
        layout = str(given)
    elif isinstance(stored.get("layout"), str) and stored["layout"] in NATIVE_LAYOUTS:
        layout = stored["layout"]
    else:
        got = native.get(limit=DETECT_SAMPLE, include=["metadatas"])
        keys = {k for m in got.get("metadatas") or () for k in (m or {})}
        layout = detect("chroma", keys) or "native"
    if layout not in NATIVE_LAYOUTS:
        raise UnsupportedFeatureError(f"chroma collection {native.name!r} is not in vecbridge's layout: it opens as "
                                      f"{', '.join(NATIVE_LAYOUTS)}, not {layout!r} (drop ?layout= or name one of those)")
    return layout


def decide_mapping(name: str, dimension: int, metric: str, options: Mapping[str, Any],
                   layout: str = "native") -> CollectionMapping:
    """The mapping of a Chroma collection in ``layout``: the framework's fixed options (if any)
    merged under the URL's, decided by the core."""
    fixed = framework_layout(layout, "chroma").mapping_options() if layout in FRAMEWORKS else {"layout": layout}
    opts = {**fixed, **{k: options.get(k) for k in MAPPING_OPTIONS if options.get(k) not in (None, "")}}
    mapping = decide(schema_of(name, dimension, metric, layout), opts)
    if mapping.metric != metric:  # the space is fixed when Chroma makes the collection
        raise UnsupportedFeatureError(f"chroma collection {name!r} uses the space {metric!r}; ?metric={mapping.metric} "
                                      "cannot change it (drop the option)")
    notes = framework_layout(layout, "chroma").describe() if layout in FRAMEWORKS else []
    return replace(mapping, notes=(*mapping.notes, *notes, *GIVES_UP))


def creation_metadata(dimension: int, metric: str, layout: str) -> dict[str, Any]:
    """The collection metadata of a collection vecbridge creates in Chroma's own layout
    (module docstring): only the configuration document, without vecbridge's ``format``."""
    from .collection import CONFIG_KEY

    return {CONFIG_KEY: json.dumps({"dimension": dimension, "metric": metric, "layout": layout}, sort_keys=True)}


def from_native(meta: Mapping[str, Any] | None, conv: Conversions | None = None) -> dict[str, Any]:
    """A native record's metadata as contract metadata (the one value rule)."""
    return to_metadata(meta or {}, conv)


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


class RecordCodec:
    """Records of a collection in Chroma's own layout, written and read: the native value
    rule, and for a framework layout its ``encode``/``decode`` (:mod:`vecbridge.layouts`)."""

    def __init__(self, mapping: CollectionMapping, conversions: Conversions):
        self.mapping = mapping
        self.conversions = conversions
        self.framework: FrameworkLayout | None = (framework_layout(mapping.layout, "chroma")
                                                  if mapping.layout in FRAMEWORKS else None)

    def write(self, ids: list[str], metas: list[Any], docs: list[str | None], action: str,
              conv: Conversions | None = None) -> tuple[list[dict[str, Any] | None], list[str | None]]:
        """Every record of a write as Chroma stores it, before any is written: a record the
        layout or Chroma cannot take raises here (``conv``: where to count, default the collection's)."""
        conv = self.conversions if conv is None else conv
        where = f"{action} into {self.mapping.collection!r}"
        out_metas: list[dict[str, Any] | None] = []
        out_docs: list[str | None] = []
        for id_, meta, doc in zip(ids, metas, docs):
            if self.framework is not None:
                doc, meta = self.framework.encode(id_, doc, meta, conv)
            out_metas.append(to_native(meta, self.mapping, f"{where}, record {id_!r}"))
            out_docs.append(doc)
        return out_metas, out_docs

    def read(self, stored: Mapping[str, Any] | None, document: str | None) -> tuple[dict[str, Any], str | None]:
        """A stored record's ``(metadata, document)`` as the contract's."""
        meta = from_native(stored, self.conversions)
        if self.framework is not None:
            document, meta = self.framework.decode(document, meta)
        return meta, document

