"""The frameworks' layouts: where the official LangChain and LlamaIndex integrations keep a record.

An application written with LangChain or LlamaIndex reads its store through the framework's
own integration package, which expects its data in that package's layout: LangChain's
PGVector reads ``langchain_pg_embedding`` rows with ``document`` and ``cmetadata``,
LlamaIndex's Qdrant store rebuilds a node from the ``_node_content`` payload key, and so on.
``layout=langchain`` / ``layout=llamaindex`` (CONTRACT §7, §11) reads and writes those
layouts, so that the application keeps working after its data has moved.

This module is the one place that says what each layout is (:data:`FRAMEWORK_LAYOUTS`): where
the id, the text, the metadata and the vector live and how the metadata are encoded.  A
backend turns a :class:`FrameworkLayout` into its native mapping
(:meth:`FrameworkLayout.mapping_options`, fed to :func:`vecbridge.mapping.decide`), creates
what the official package creates, and calls :meth:`~FrameworkLayout.encode` before it writes
and :meth:`~FrameworkLayout.decode` after it reads; it decides nothing of its own.

=========== ========== ============================================= =====================================
layout      backend    package (version followed)                    id / text / metadata / vector
=========== ========== ============================================= =====================================
langchain   chroma     langchain-chroma 1.1                          Chroma's ids, documents, metadata
langchain   qdrant     langchain-qdrant 1.1                          point id / ``page_content`` /
                                                                     ``metadata`` payload object / unnamed
langchain   milvus     langchain-milvus 0.4                          ``pk`` / ``text`` / scalar fields or
                                                                     dynamic fields / ``vector``
langchain   pgvector   langchain-postgres 0.0.19 (``PGVector``)      ``langchain_pg_embedding``: ``id`` /
                                                                     ``document`` / ``cmetadata`` jsonb /
                                                                     ``embedding``, rows of the collection
                                                                     named in ``langchain_pg_collection``
llamaindex  chroma     llama-index-vector-stores-chroma 0.6          Chroma's ids, documents, metadata
llamaindex  qdrant     llama-index-vector-stores-qdrant 0.10         point id / in ``_node_content`` /
                                                                     payload keys / unnamed
llamaindex  milvus     llama-index-vector-stores-milvus 1.2          ``id`` / ``text`` / dynamic fields /
                                                                     ``embedding``
llamaindex  pgvector   llama-index-vector-stores-postgres 0.9        table ``data_<name>``: ``node_id`` /
                                                                     ``text`` / ``metadata_`` / ``embedding``
=========== ========== ============================================= =====================================

LlamaIndex keeps, beside the node's own metadata, the node itself as JSON (``_node_content``:
relationships, templates, excluded keys; the text too in Qdrant) and its source document's
id three times (``document_id``, ``doc_id``, ``ref_doc_id``) with the node type
(``_node_type``): :data:`NODE_KEYS`.  A record read from a LlamaIndex layout carries these keys
in its metadata as stored, so that a copy into another LlamaIndex store (or vecbridge's own
layout, and back) moves a node whole.  :meth:`FrameworkLayout.encode` keeps the node JSON in
step with the record (its id, its metadata, its text where the package keeps it there) and
makes a plain ``TextNode`` for a record that has none; into a LangChain layout the node keys
are left out, since LangChain has no place for relationships (:func:`carry_notes` says so in
the plan).  Each such step is counted in a :class:`vecbridge.mapping.Conversions`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InvalidMetadataError, UnsupportedFeatureError
from .mapping import Conversions

__all__ = [
    "FRAMEWORKS",
    "FRAMEWORK_LAYOUTS",
    "NODE_KEYS",
    "FrameworkLayout",
    "carry_notes",
    "detect",
    "framework_layout",
]

FRAMEWORKS = ("langchain", "llamaindex")
#: The metadata keys LlamaIndex's ``node_to_metadata_dict`` adds beside a node's own metadata.
NODE_KEYS = ("_node_content", "_node_type", "document_id", "doc_id", "ref_doc_id")

# What ``TextNode().model_dump(mode="json")`` holds besides id, metadata and text
# (llama-index-core 0.14): a node made for a record that comes without one.
_TEXT_NODE: dict[str, Any] = {
    "embedding": None,
    "excluded_embed_metadata_keys": [],
    "excluded_llm_metadata_keys": [],
    "relationships": {},
    "metadata_template": "{key}: {value}",
    "metadata_separator": "\n",
    "mimetype": "text/plain",
    "start_char_idx": None,
    "end_char_idx": None,
    "text_template": "{metadata_str}\n\n{content}",
    "class_name": "TextNode",
}
_SOURCE = "1"  # NodeRelationship.SOURCE: the relationship that names the node's document


@dataclass(frozen=True)
class FrameworkLayout:
    """Where one framework's official integration keeps a record on one backend.

    ``None`` for ``id_field``/``vector_field``/``document_field``/``metadata_field`` means the
    backend's own place (Chroma's ids, documents and metadata; a Qdrant point id, its unnamed
    vector, its top-level payload keys; Milvus's dynamic fields); ``text_in_node``: the text
    lives inside ``_node_content`` (LlamaIndex on Qdrant); ``tables``: the relations a
    PostgreSQL layout uses (``{"collections": …, "embeddings": …}`` or ``{"table": "data_{name}"}``);
    ``key_field``: a field beside the id that the package fills (Milvus's ``doc_id``).
    """

    layout: str
    backend: str
    package: str
    id_field: str | None
    vector_field: str | None
    document_field: str | None
    metadata_field: str | None
    metric: str
    text_in_node: bool = False
    tables: Mapping[str, str] = field(default_factory=dict)
    key_field: str | None = None
    notes: tuple[str, ...] = ()

    @property
    def nodes(self) -> bool:
        """Whether records keep LlamaIndex nodes (:data:`NODE_KEYS`)."""
        return self.layout == "llamaindex"

    def mapping_options(self) -> dict[str, str]:
        """The mapping options (:data:`vecbridge.mapping.MAPPING_OPTIONS`) this layout fixes,
        for :func:`vecbridge.mapping.decide`; a URL option given by the user wins over them."""
        opts = {"id_field": self.id_field, "vector_field": self.vector_field, "document_field": self.document_field,
                "metadata_field": self.metadata_field}
        return {k: v for k, v in opts.items() if v is not None} | {"layout": self.layout}

    def describe(self) -> list[str]:
        """The layout in words (``vecbridge info``, the plan)."""
        own = {"chroma": "Chroma's own", "qdrant": "the point's", "milvus": "dynamic fields'", "pgvector": ""}
        return [f"layout:   {self.layout} (as {self.package} stores it)",
                f"id:       {self.id_field or own[self.backend] + ' id'}",
                f"text:     {'inside _node_content' if self.text_in_node else self.document_field or 'documents'}",
                f"metadata: {self.metadata_field or own[self.backend] + ' keys'}"
                + (" and the LlamaIndex node keys (" + ", ".join(NODE_KEYS) + ")" if self.nodes else ""),
                f"vector:   {self.vector_field or '(unnamed)'}; default metric {self.metric}", *self.notes]

    # -- records -----------------------------------------------------------------------
    def encode(self, id_: str, document: str | None, metadata: Mapping[str, Any] | None,
               conv: Conversions | None = None) -> tuple[str | None, dict[str, Any]]:
        """A record as this layout stores it: ``(text, metadata)``.  A backend then puts the text
        and the metadata where :meth:`mapping_options` says (for ``text_in_node`` layouts the
        text is already inside ``_node_content``; the backend stores no separate text)."""
        meta = dict(metadata or {})
        if not self.nodes:
            if "_node_content" in meta:  # a LlamaIndex node moving into LangChain: no place for it
                for key in NODE_KEYS:
                    meta.pop(key, None)
                if conv is not None:
                    conv["LlamaIndex node keys left out (LangChain keeps no relationships)"] += 1
            return document, meta
        user = {k: v for k, v in meta.items() if k not in NODE_KEYS}
        raw = meta.get("_node_content")
        if raw is None:
            node: dict[str, Any] = {"id_": id_, **json.loads(json.dumps(_TEXT_NODE))}
            if conv is not None:
                conv["LlamaIndex nodes made for records that had none (no relationships)"] += 1
        else:
            try:
                node = json.loads(raw) if isinstance(raw, str) else None  # type: ignore[assignment]
            except ValueError:
                node = None  # type: ignore[assignment]
            if not isinstance(node, dict):
                raise InvalidMetadataError(f"record {id_!r}: the metadata key '_node_content' is not a LlamaIndex node "
                                           "(a JSON object); fix it or leave the key out")
        node["id_"] = id_
        # the node's own key order first: an unchanged node gives the same _node_content string
        old = node.get("metadata")
        order = list(old) if isinstance(old, dict) else []
        node["metadata"] = {**{k: user[k] for k in order if k in user}, **user}
        node["embedding"] = None
        text = document if document is not None else ""
        if self.text_in_node:
            node["text"] = text
        else:
            node["text"] = ""  # node_to_metadata_dict(remove_text=True): the text lives in its own field
            node.pop("text_resource", None)
        ref = meta.get("ref_doc_id")
        if not isinstance(ref, str):
            source = (node.get("relationships") or {}).get(_SOURCE)
            ref = source.get("node_id") if isinstance(source, dict) and source.get("node_id") else "None"
        node_type = meta.get("_node_type") if isinstance(meta.get("_node_type"), str) else node.get("class_name")
        stored = {**user, "_node_content": json.dumps(node, ensure_ascii=False),
                  "_node_type": node_type or "TextNode", "document_id": ref, "doc_id": ref, "ref_doc_id": ref}
        return (None if self.text_in_node else document), stored

    def decode(self, document: str | None, metadata: Mapping[str, Any] | None) -> tuple[str | None, dict[str, Any]]:
        """A stored record as the contract's ``(document, metadata)``: the text taken out of the
        node where this layout keeps it there; the metadata as stored (node keys included)."""
        meta = dict(metadata or {})
        if self.text_in_node and document is None:
            raw = meta.get("_node_content")
            try:
                node = json.loads(raw) if isinstance(raw, str) else {}
            except ValueError:
                node = {}
            text = node.get("text") if isinstance(node, dict) else None
            document = text if isinstance(text, str) else None
        return document, meta


def _at(layout: str, backend: str, package: str, fields: tuple[str | None, str | None, str | None, str | None],
        metric: str, **kw: Any) -> FrameworkLayout:
    """A table row: ``fields`` are (id, vector, text, metadata)."""
    return FrameworkLayout(layout, backend, package, *fields, metric=metric, **kw)


#: ``(layout, backend) -> FrameworkLayout``: the official packages' defaults (id, vector, text, metadata).
FRAMEWORK_LAYOUTS: dict[tuple[str, str], FrameworkLayout] = {(lay.layout, lay.backend): lay for lay in (
    _at("langchain", "chroma", "langchain-chroma 1.1", (None, None, None, None), "l2",
        notes=("the collection is made without an HNSW space: Chroma's default, l2",)),
    _at("langchain", "qdrant", "langchain-qdrant 1.1", (None, None, "page_content", "metadata"), "cosine"),
    _at("langchain", "milvus", "langchain-milvus 0.4", ("pk", "vector", "text", None), "l2",
        notes=("metadata keys are scalar fields of the collection, or its dynamic fields",)),
    _at("langchain", "pgvector", "langchain-postgres 0.0.19", ("id", "embedding", "document", "cmetadata"), "cosine",
        tables={"collections": "langchain_pg_collection", "embeddings": "langchain_pg_embedding"}),
    _at("llamaindex", "chroma", "llama-index-vector-stores-chroma 0.6", (None, None, None, None), "l2"),
    _at("llamaindex", "qdrant", "llama-index-vector-stores-qdrant 0.10", (None, None, None, None), "cosine",
        text_in_node=True, notes=("the unnamed vector; the hybrid store (enable_hybrid=True) names it text-dense",)),
    _at("llamaindex", "milvus", "llama-index-vector-stores-milvus 1.2", ("id", "embedding", "text", None), "ip",
        key_field="doc_id"),
    _at("llamaindex", "pgvector", "llama-index-vector-stores-postgres 0.9", ("node_id", "embedding", "text",
                                                                           "metadata_"), "cosine",
        tables={"table": "data_{name}"}),
)}


def framework_layout(layout: str, backend: str) -> FrameworkLayout:
    """The layout ``layout`` on ``backend``; :class:`UnsupportedFeatureError` if no official
    integration package stores data there."""
    found = FRAMEWORK_LAYOUTS.get((layout, backend))
    if found is None:
        have = sorted(b for (lay, b) in FRAMEWORK_LAYOUTS if lay == layout)
        raise UnsupportedFeatureError(
            f"the layout {layout!r} is not known on the {backend} backend"
            + (f" (it is on {', '.join(have)})" if have else f"; layouts are vecbridge, native, {', '.join(FRAMEWORKS)}"))
    return found


def detect(backend: str, names: Iterable[str]) -> str | None:
    """The framework layout that a collection's field or top-level key ``names`` show
    (``None``: none of them).  Chroma's LangChain layout is Chroma's own (``native``): nothing
    tells it apart, and nothing needs to."""
    have = set(names)
    if "_node_content" in have:
        return "llamaindex"
    if backend == "qdrant" and {"page_content", "metadata"} <= have:
        return "langchain"
    if backend == "milvus" and {"pk", "text", "vector"} <= have:
        return "langchain"
    if backend == "milvus" and {"id", "doc_id", "text", "embedding"} <= have:  # its node keys are dynamic fields
        return "llamaindex"
    if backend == "pgvector" and {"collection_id", "document", "cmetadata", "embedding"} <= have:
        return "langchain"
    if backend == "pgvector" and {"node_id", "text", "metadata_", "embedding"} <= have:  # _node_content is in metadata_
        return "llamaindex"
    return None


def carry_notes(source: str, target: str) -> list[str]:
    """What a copy from the layout ``source`` into ``target`` cannot carry, in words (the plan
    lists these with the counts of :meth:`FrameworkLayout.encode`)."""
    if source == "llamaindex" and target == "langchain":
        return ["LlamaIndex node keys (" + ", ".join(NODE_KEYS) + ") are left out: relationships, node types and "
                "templates have no place in LangChain's layout"]
    if target == "llamaindex" and source != "llamaindex":
        return ["records without a LlamaIndex node become plain TextNodes (id, text, metadata; no relationships)"]
    return []
