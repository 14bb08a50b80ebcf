"""Milvus collections in a layout other than vecbridge's: ``native``, ``langchain``, ``llamaindex``.

``layout=native`` creates the schema a Milvus user would make by hand: a VARCHAR primary key
``id`` (vecbridge's ids are strings; an INT64 key could not take them all), a FLOAT_VECTOR
``vector``, a VARCHAR ``document`` and dynamic fields, with an index of the collection's
metric; a user then filters ``cat == 3``, not ``metadata["n:cat"]``.  Where the engine keeps
nulls (Milvus Lite 3, Milvus 2.5+), the metadata keys of the FIRST batch written that hold one
scalar type (str, int, float or bool; a name Milvus takes as a field name) become nullable
scalar fields, and every other key, and keys seen later, dynamic fields.  Milvus Lite cannot add
a field to a collection and a Milvus 2.3/2.4 field cannot hold null, so (the why of the
workaround): the collection is created with ``id``/``vector``/``document`` and the collection
property :data:`PENDING`, and the first write into it, while it is still empty, re-creates it
with those fields and without the property; on Milvus 2.3/2.4 every metadata key is a dynamic
field (a record lacking a key would have nothing to put in a non-nullable field).

``layout=langchain`` and ``layout=llamaindex`` create what the official packages create
(:mod:`vecbridge.layouts` says where each part lives): langchain-milvus 0.4's ``text``, ``pk``
(VARCHAR 65,535), ``vector`` with an AUTOINDEX index, and a scalar field per key of the first
record it writes (its default; the same first-write re-creation) or, with ``metadata_field=NAME``
in the URL, one JSON field of that name; llama-index-vector-stores-milvus 1.2's ``id``,
``doc_id``, ``text``, ``embedding`` with a FLAT index named ``embedding``, and dynamic fields
for the node's metadata (``_node_content`` and the other node keys among them).  Records go
through :meth:`FrameworkLayout.encode` before a write and :meth:`~FrameworkLayout.decode` after a
read.  The metric is the one ``create_collection`` is given (the core cannot tell a caller's
metric from its default, so the layout's default is not applied).  Collections are created with
Strong consistency, so that the application's own client sees what a migration wrote.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pymilvus import DataType
from pymilvus import MilvusClient as NativeClient

from ...errors import InvalidMetadataError, UnsupportedFeatureError
from ...layouts import FRAMEWORKS, FrameworkLayout, detect, framework_layout
from ...mapping import CollectionMapping, Conversions, Field, NativeSchema, decide
from ...validation import Batch
from .codec import METRIC_TYPES
from .collection import Program
from .native import DYNAMIC, NativeCollection, nullable_fields, open_native

if TYPE_CHECKING:
    from .client import MilvusClient

__all__ = ["PENDING", "LayoutCollection", "create", "keeps_nulls", "open_collection", "plan_fields"]

#: The collection property of a collection whose metadata fields the first write decides: the
#: JSON of its recipe (layout, dimension, index, metadata_field).
PENDING = "vecbridge.fields_from_first_write"
BIG = 65535  # the VARCHAR length the official packages give their string fields
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
_TYPES = {str: DataType.VARCHAR, bool: DataType.BOOL, int: DataType.INT64, float: DataType.DOUBLE}


def keeps_nulls(client: MilvusClient) -> bool:
    """Whether the engine's scalar fields hold nulls (Milvus Lite 3, Milvus 2.5+)."""
    return client.lite or not re.match(r"v?2\.[34]\.", client.version)


def _schema(recipe: Mapping[str, Any], nulls: bool, extra: Sequence[tuple[str, DataType]] = ()) -> Any:
    """The pymilvus schema of ``recipe`` with the metadata fields ``extra``."""
    layout, dim = recipe["layout"], int(recipe["dimension"])
    s = NativeClient.create_schema(auto_id=False, enable_dynamic_field=layout != "langchain")
    if layout == "native":
        s.add_field("id", DataType.VARCHAR, is_primary=True, max_length=BIG)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        s.add_field("document", DataType.VARCHAR, max_length=BIG, **({"nullable": True} if nulls else {}))
    elif layout == "langchain":  # the order of langchain-milvus's _create_collection
        s.add_field("text", DataType.VARCHAR, max_length=BIG)
        s.add_field("pk", DataType.VARCHAR, is_primary=True, auto_id=False, max_length=BIG)
        s.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        if recipe.get("metadata_field"):
            s.add_field(recipe["metadata_field"], DataType.JSON)
    else:  # llamaindex: _add_fields_to_schema
        s.add_field("id", DataType.VARCHAR, max_length=BIG, is_primary=True)
        s.add_field("doc_id", DataType.VARCHAR, max_length=BIG)
        s.add_field("text", DataType.VARCHAR, max_length=BIG)
        s.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
    for name, dtype in extra:
        kw: dict[str, Any] = {"max_length": BIG} if dtype == DataType.VARCHAR else {}
        if layout == "native":
            kw["nullable"] = True
        s.add_field(name, dtype, **kw)
    return s


def _index(recipe: Mapping[str, Any]) -> Any:
    ip = NativeClient.prepare_index_params()
    idx = recipe["index"]
    ip.add_index(idx["field"], index_type=idx["type"], metric_type=idx["metric"], params=idx.get("params") or {},
                 **({"index_name": idx["name"]} if idx.get("name") else {}))
    return ip


def _make(client: MilvusClient, name: str, recipe: Mapping[str, Any], extra: Sequence[tuple[str, DataType]],
          pending: bool) -> None:
    props = {PENDING: json.dumps(recipe, sort_keys=True)} if pending else {}
    client.native.create_collection(name, schema=_schema(recipe, keeps_nulls(client), extra),
                                    index_params=_index(recipe), consistency_level="Strong",
                                    **({"properties": props} if props else {}), **client.call_options())
    client._ensure_loaded(name)


def create(client: MilvusClient, name: str, dimension: int, metric: str, index_params: tuple[str, dict[str, Any]],
           layout: str) -> NativeCollection:
    """Create ``name`` in ``layout`` (module docstring) and open it."""
    mt = METRIC_TYPES[metric]
    recipe: dict[str, Any] = {"layout": layout, "dimension": dimension}
    if layout == "native":
        recipe["index"] = {"field": "vector", "type": index_params[0], "metric": mt, "params": index_params[1]}
        pending = keeps_nulls(client)
    elif layout == "langchain":
        recipe["index"] = {"field": "vector", "type": "AUTOINDEX", "metric": mt}
        recipe["metadata_field"] = client.mapping_options.get("metadata_field") or None
        pending = recipe["metadata_field"] is None
    elif layout == "llamaindex":
        recipe["index"] = {"field": "embedding", "type": "FLAT", "metric": mt, "name": "embedding"}
        pending = False
    else:
        raise UnsupportedFeatureError(f"milvus: no layout {layout!r} to create; layouts are vecbridge, native, "
                                      f"{', '.join(FRAMEWORKS)}")
    with client._mapped_errors(f"create collection {name!r}"):
        _make(client, name, recipe, (), pending)
        with client._ts_lock:
            client._read_ts[client._key(name)] = 1  # nothing written yet: no read needs to wait
        desc = client.native.describe_collection(name, **client.call_options())
    return open_collection(client, name, desc, layout)


def open_collection(client: MilvusClient, name: str, desc: Mapping[str, Any],
                    layout: str | None = None) -> NativeCollection:
    """A collection vecbridge did not lay out: mapped with the client's options under the
    framework layout named (``layout=``) or detected (:func:`vecbridge.layouts.detect` on the
    field names and the dynamic keys of one row)."""
    opts = {k: v for k, v in client.mapping_options.items() if v not in (None, "")}
    layout = layout or opts.get("layout")
    if layout in (None, "vecbridge"):
        names = [f["name"] for f in desc.get("fields", [])]
        if desc.get("enable_dynamic_field"):
            names += _dynamic_keys(client, name, desc)
        layout = detect("milvus", names) or "native"
    if layout not in FRAMEWORKS:
        coll = open_native(client, name, desc, {**opts, "layout": "native"}, LayoutCollection)
        assert isinstance(coll, LayoutCollection)
        coll._pending = _recipe(desc)
        return coll
    fl = framework_layout(layout, "milvus")
    coll = open_native(client, name, desc, {**fl.mapping_options(), **opts, "layout": layout}, LayoutCollection)
    assert isinstance(coll, LayoutCollection)
    coll.layout, coll._pending = fl, _recipe(desc)
    return coll


def _dynamic_keys(client: MilvusClient, name: str, desc: Mapping[str, Any]) -> list[str]:
    key = next((f["name"] for f in desc.get("fields", []) if f.get("is_primary")), None)
    if key is None:
        return []
    client._ensure_loaded(name)
    with client._mapped_errors(f"read a row of {name!r}"):
        rows = client.native.query(name, filter="", limit=1, output_fields=["*"], consistency_level="Strong",
                                   **client.call_options())
    fields = {f["name"] for f in desc.get("fields", [])}
    return [k for row in rows[:1] for k in row if k not in fields and k != DYNAMIC]


def _recipe(desc: Mapping[str, Any]) -> dict[str, Any] | None:
    raw = (desc.get("properties") or {}).get(PENDING)
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def plan_fields(recipe: Mapping[str, Any], metadatas: Sequence[Mapping[str, Any] | None],
                taken: set[str]) -> list[tuple[str, DataType]]:
    """The metadata fields the first batch decides (module docstring); a first record that
    langchain-milvus itself could not make fields of -> InvalidMetadataError."""
    if recipe["layout"] == "langchain":
        first = dict(metadatas[0] or {}) if metadatas else {}
        out = []
        for key, value in first.items():
            dtype = _TYPES.get(type(value))
            if key in taken:
                raise InvalidMetadataError(f"metadatas[0]: the key {key!r} is reserved in LangChain's Milvus layout "
                                           "(its fields pk, text, vector); nothing was written")
            if dtype is None or not _NAME.fullmatch(key):
                raise InvalidMetadataError(
                    f"metadatas[0]: the key {key!r} ({type(value).__name__}) cannot be a field of LangChain's Milvus "
                    "layout, which makes one scalar field (str, int, float, bool) per key of the first record; add "
                    "metadata_field=metadata to the URL for its JSON-field variant; nothing was written")
            out.append((key, dtype))
        return out
    seen: dict[str, set[type]] = {}
    for meta in metadatas:
        for key, value in (meta or {}).items():
            seen.setdefault(key, set()).add(type(value))
    return [(k, _TYPES[next(iter(t))]) for k, t in seen.items()
            if len(t) == 1 and next(iter(t)) in _TYPES and _NAME.fullmatch(k) and k not in taken]


def _node_order(meta: dict[str, Any]) -> dict[str, Any]:
    """``meta`` with the node's own keys in the order of its ``_node_content``: Milvus Lite gives
    dynamic keys back sorted, and :meth:`FrameworkLayout.encode` writes the node's metadata in the
    order it is given, so a copy would otherwise store a reordered (equal, but not identical) node."""
    try:
        node = json.loads(meta.get("_node_content") or "")
    except (TypeError, ValueError):
        return meta
    inner = node.get("metadata") if isinstance(node, dict) else None
    if not isinstance(inner, dict):
        return meta
    first = {k: meta[k] for k in inner if k in meta}
    return {**first, **{k: v for k, v in meta.items() if k not in first}}


class LayoutCollection(NativeCollection):
    """A native collection that vecbridge may have created (:data:`PENDING`) and that may keep a
    framework's layout (``layout``: records encoded before writes, decoded after reads)."""

    layout: FrameworkLayout | None = None
    _pending: dict[str, Any] | None = None

    def _parts(self, row: Mapping[str, Any], include: frozenset[str]) -> tuple[dict[str, Any] | None, str | None]:
        meta, doc = super()._parts(row, include)
        if self.layout is None:
            return meta, doc
        doc, decoded = self.layout.decode(doc, meta)
        if self.layout.nodes and meta is not None:
            decoded = _node_order(decoded)
        return (decoded if meta is not None else None), doc

    def _encoded(self, b: Batch, conv: Conversions | None) -> Batch:
        if self.layout is None:
            return b
        assert b.metadatas is not None and b.documents is not None
        docs: list[str | None] = []
        metas: list[dict[str, Any]] = []
        for i, id_ in enumerate(b.ids):
            doc, meta = self.layout.encode(id_, b.documents[i], b.metadatas[i], conv)
            docs.append("" if doc is None else doc)  # both packages keep a text in every row
            metas.append(meta)
        return Batch(b.ids, b.vectors, metas, docs)

    def _vb_check_batch(self, b: Batch) -> None:
        self._check(self._encoded(b, None))

    def _check(self, enc: Batch) -> None:
        if self._pending is None:
            self._rows(enc)
            return
        # the fields this batch would decide, checked on a shallow copy of this object that has
        # them (nothing is created: the collection stays as it is until a write settles it)
        planned = plan_fields(self._pending, enc.metadatas or [], {f.name for f in self.schema.fields})
        trial = object.__new__(type(self))
        trial.__dict__.update(self.__dict__)
        trial._set_mapping(*self._with_fields(planned))
        trial._rows(enc)

    def _with_fields(self, planned: Sequence[tuple[str, DataType]]) -> tuple[CollectionMapping, NativeSchema,
                                                                              frozenset[str]]:
        kinds = {DataType.VARCHAR: "string", DataType.BOOL: "bool", DataType.INT64: "int", DataType.DOUBLE: "float"}
        extra = tuple(Field(n, kinds[t], t.name) for n, t in planned)
        schema = NativeSchema(self.schema.collection, self.schema.fields + extra, self.schema.metric,
                              self.schema.free_keys, self.schema.own_documents)
        nulls = self._nullable | (frozenset(n for n, _ in planned) if self._pending and
                                  self._pending["layout"] == "native" else frozenset())
        return decide(schema, self._options()), schema, nulls

    def _p_upsert(self, b: Batch) -> Program:
        enc = self._encoded(b, self.conversions)
        if self._pending is not None:
            self._check(enc)  # a batch refused decides no fields
            self._settle(enc)
        return (yield from super()._p_upsert(enc))

    def _settle(self, b: Batch) -> None:
        """The first write: re-create the still empty collection with the fields ``b`` decides
        (module docstring), or take up the fields another writer decided."""
        n, opts = self._n, self._mc.call_options()
        with self._native_call("decide the fields"):
            desc = n.describe_collection(self.name, **opts)
            recipe = _recipe(desc)
            if recipe is not None:
                planned = plan_fields(recipe, b.metadatas or [], {f["name"] for f in desc.get("fields", [])})
                if self._count(None) == 0:
                    n.drop_collection(self.name, **opts)
                    _make(self._mc, self.name, recipe, planned, pending=False)
                else:  # written already (by a client that did not decide): its fields stay
                    n.alter_collection_properties(self.name, properties={PENDING: ""}, **opts)
                self._mc.wrote(self.name, 0)
                desc = n.describe_collection(self.name, **opts)
        fresh = open_native(self._mc, self.name, desc, self._options(), NativeCollection)
        self._set_mapping(fresh.mapping, fresh.schema, nullable_fields(desc))
        self._pending = None

    def _options(self) -> dict[str, Any]:
        opts = {k: v for k, v in self._mc.mapping_options.items() if v not in (None, "")}
        if self.layout is not None:
            opts = {**self.layout.mapping_options(), **opts}
        return {**opts, "layout": self.mapping.layout}

