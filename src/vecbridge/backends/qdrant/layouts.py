"""The frameworks' layouts on Qdrant (``layout=langchain`` / ``layout=llamaindex``): the table in
:mod:`vecbridge.layouts` translated into Qdrant's terms.

=================  ===================================================  =====================================
layout             collection (as the official package creates it)      point payload
=================  ===================================================  =====================================
langchain          one dense vector named ``""`` (langchain-qdrant's     ``{"page_content": text,
                   ``vector_name=""``; ``?vector_field=x``: named x),   "metadata": {...}}``
                   cosine
llamaindex         one unnamed cosine vector (``text-dense`` where the  the node's metadata keys,
                   URL names it: the hybrid store's), a keyword index   ``_node_content`` (the node, its text
                   on ``doc_id``                                        inside), ``_node_type``,
                                                                        ``document_id``/``doc_id``/``ref_doc_id``
=================  ===================================================  =====================================

Why the workarounds:

* llama-index-vector-stores-qdrant 0.10 creates an UNNAMED vector unless ``enable_hybrid``
  (``_create_collection`` passes ``vectors_config=dense_config``; ``_detect_vector_format``
  then reads and writes it as ``""``); only the hybrid store names it ``text-dense``.  A
  layout's vector name is used only where the collection has a vector of that name (so a
  table entry never makes such a store unreadable), and a new collection gets the unnamed
  vector unless ``?vector_field=`` names one.
* ``layout.encode`` keeps the node JSON's ``metadata`` as the record's flat keys; on Qdrant
  the payload nests dotted keys again (``native.nest``), and LlamaIndex rebuilds a node from
  the JSON, so the JSON gets the same nested object as the payload, in the key order of the
  node it came from (``encode`` keeps top-level keys in order, which a nested key, read as
  dotted ones, is not): a node read from one Qdrant store comes back from another with the
  metadata it had, and the same ``_node_content`` string.
* LlamaIndex keeps no document key: a metadata key ``text`` or ``content`` is metadata
  there, not the document the core's detection would take it for.
* LangChain always writes the ``metadata`` key (``None`` for a text without metadata, which
  it reads as ``{}``); records written here get ``{}``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from qdrant_client import models

from ...errors import InvalidMetadataError
from ...layouts import FrameworkLayout, framework_layout
from ...mapping import CollectionMapping, Conversions
from ...types import Record
from ...validation import Batch
from .native import NativeQdrantCollection, mapping_of, nest

if TYPE_CHECKING:
    from .client import QdrantClient

__all__ = ["FrameworkQdrantCollection", "create_framework", "framework_mapping"]


def _vector_names(vectors: Any) -> set[str]:
    return set(vectors) if isinstance(vectors, dict) else {""}


def framework_mapping(fl: FrameworkLayout, name: str, vectors: Any, payloads: list[Mapping[str, Any]],
                      url_options: dict[str, Any]) -> CollectionMapping:
    """The core's mapping of a collection in the layout ``fl``: the layout's options, the URL's
    over them."""
    given = {k: v for k, v in url_options.items() if v not in (None, "")}
    opts: dict[str, Any] = {**fl.mapping_options(), **given}
    if "vector_field" not in given and opts.get("vector_field") not in _vector_names(vectors):
        opts.pop("vector_field", None)  # not this store's vector name: see the module docstring
    mapping = mapping_of(name, vectors, payloads, opts)
    if fl.text_in_node and "document_field" not in given and mapping.document_field is not None:
        # the text is inside _node_content: a key the core would take for the document is metadata
        mapping = replace(mapping, document_field=None,
                          metadata_fields=(*mapping.metadata_fields, mapping.document_field))
    return replace(mapping, layout=fl.layout, notes=(*fl.describe()[:1], *mapping.notes))


def create_framework(client: QdrantClient, fl: FrameworkLayout, name: str, params: models.VectorParams,
                     hnsw: models.HnswConfigDiff, metadata: dict[str, Any]) -> None:
    """Create ``name`` as the official package of ``fl`` would (module docstring)."""
    named = client.options.get("vector_field")
    native = client._native
    if fl.layout == "langchain":
        vectors: Any = {named or "": params}
    else:
        vectors = {named: params} if named else params
    native.create_collection(name, vectors_config=vectors, hnsw_config=hnsw, metadata=metadata)
    if fl.layout == "llamaindex":
        with warnings.catch_warnings():  # local mode keeps no payload indexes, and warns so
            warnings.simplefilter("ignore")
            native.create_payload_index(name, field_name="doc_id", field_schema=models.PayloadSchemaType.KEYWORD)


class FrameworkQdrantCollection(NativeQdrantCollection):
    """A Qdrant collection in a framework's layout: the native mapping, with ``layout.decode``
    after each read and ``layout.encode`` before each write."""

    def __init__(self, client: QdrantClient, name: str, mapping: CollectionMapping, index: dict[str, Any]):
        super().__init__(client, name, mapping, index)
        self.framework = framework_layout(mapping.layout, "qdrant")
        self._layout = mapping.layout

    def _read_config(self) -> dict[str, Any] | None:
        return {**(super()._read_config() or {}), "layout": self._layout}

    # -- reads -------------------------------------------------------------------------
    def _selectors(self, include: frozenset[str]) -> tuple[Any, Any]:
        with_payload, with_vectors = super()._selectors(include)
        if "document" in include and self.framework.text_in_node:
            with_payload = True  # the text is inside _node_content
        return with_payload, with_vectors

    def _records(self, points: list[Any], include: frozenset[str]) -> list[Record]:
        need_meta = "metadata" in include or ("document" in include and self.framework.text_in_node)
        out = []
        for r in super()._records(points, include | {"metadata"} if need_meta else include):
            doc, meta = r.document, r.metadata
            if meta is not None:
                doc, meta = self.framework.decode(doc, meta)
            out.append(Record(r.id, r.vector, meta if "metadata" in include else None,
                              doc if "document" in include else None))
        return out

    # -- writes ------------------------------------------------------------------------
    def _write_parts(self, b: Batch, conv: Conversions | None = None) -> tuple[list[Any], Any, list[dict[str, Any]]]:
        assert b.metadatas is not None and b.documents is not None
        count = Conversions()  # added to the collection's count once the whole batch is taken
        docs, metas = [], []
        for pos, (id_, meta, doc) in enumerate(zip(b.ids, b.metadatas, b.documents)):
            try:
                text, stored = self.framework.encode(id_, doc, meta, count)
                if self.framework.nodes:
                    stored["_node_content"] = self._nested_node(stored, meta.get("_node_content"))
            except InvalidMetadataError as exc:
                raise InvalidMetadataError(f"metadatas[{pos}] (id {id_!r}): {exc}; nothing was written") from None
            docs.append(text)
            metas.append(stored)
        pids, vectors, payloads = super()._write_parts(replace(b, metadatas=metas, documents=docs), conv)
        (self.conversions if conv is None else conv).update(count)
        if self.mapping.metadata_field is not None:
            for p in payloads:
                p.setdefault(self.mapping.metadata_field, {})  # LangChain always writes the key
        return pids, vectors, payloads

    @staticmethod
    def _nested_node(stored: dict[str, Any], before: Any) -> str:
        """``_node_content`` with the node's metadata nested as the payload's, in the key order of
        the node it came from (``before``), so that an unchanged node keeps its JSON string."""
        node = json.loads(stored["_node_content"])
        flat = node.get("metadata") or {}
        nest(flat)  # refuses a key that is both a value and a parent, as the payload's nesting does
        nested: dict[str, Any] = {}
        for key, value in flat.items():
            at = nested
            *parents, leaf = key.split(".")
            for p in parents:
                at = at.setdefault(p, {})
            at[leaf] = value
        try:
            old = json.loads(before).get("metadata") if isinstance(before, str) else None
        except (ValueError, AttributeError):
            old = None
        node["metadata"] = _in_order(nested, old)
        return json.dumps(node, ensure_ascii=False)


def _in_order(new: dict[str, Any], old: Any) -> dict[str, Any]:
    """``new`` with the keys ``old`` has first, in ``old``'s order, at every depth."""
    if not isinstance(old, dict):
        return new
    out = {k: _in_order(new[k], old[k]) if isinstance(new[k], dict) else new[k] for k in old if k in new}
    out.update((k, v) for k, v in new.items() if k not in out)
    return out
