"""Qdrant collections vecbridge did not create (CONTRACT §7): described, mapped by the core, read
and written through that mapping.

Describing (:func:`describe`): the collection's vectors (the unnamed one, named ``""``, or
its named ones: ``?vector_field=NAME`` picks one of several), its distance (Cosine, Euclid,
Dot; Manhattan has no contract metric and is refused), and its payload keys -- Qdrant keeps
no payload schema, so the top-level keys of a sample of points (:data:`SAMPLE`) are the
fields, each with the kind its values show.  Payload keys are free (``free_keys``), so a key
named by ``document_field``/``metadata_field`` is a field even where the sample lacks it.
:func:`vecbridge.mapping.decide` then decides, as for every backend: the document is a
string key named ``document``, ``text``, ``content`` or ``page_content``; a JSON key named
``metadata``/``meta`` holds metadata keys (LangChain's Qdrant layout); every other key is
metadata.  Ids are the point ids: ``42`` reads as ``"42"``, a UUID as its canonical string.

Reading: values by the core's one rule (:func:`vecbridge.mapping.to_metadata`: nested
objects as dotted keys, nulls left out).  Payload keys starting with ``_vb`` (which metadata
cannot hold) are left out.  Vectors are Qdrant's stored ones, and a cosine collection's come
back normalised: nothing else was kept.  qdrant-client's local mode on disk gives back, after
the folder is reopened, the vectors as written (and unit vectors before): so a cosine
collection's vectors are normalised here on read, the same in every form.

Writing maps back the same way: ``"42"`` is point 42, a canonical UUID string that UUID;
any other id cannot be a point id and is refused (InvalidRecordError naming it, nothing
written).  Dotted metadata keys become nested objects again (``{"a.b": 1}`` ->
``{"a": {"b": 1}}``), so what is written reads back as given and filters find it; a key
that is both a value and a parent (``a`` and ``a.b``) is refused.

Filters run inside Qdrant on the real payload keys (:class:`NativePaths`): a dotted key is a
nested path, each segment quoted.  Qdrant's own matching applies to arrays: a comparison on
a key holding a list tests each element, and ``$exists`` is false for ``[]`` (Qdrant's
``IsEmpty``), which the docs list as this layout's gaps.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from qdrant_client import models

from ...errors import InvalidMetadataError, InvalidRecordError, UnsupportedFeatureError, UnsupportedFilterError
from ...filters import Node
from ...mapping import (
    CollectionMapping,
    Conversions,
    Field,
    NativeSchema,
    decide,
    id_from_native,
    id_to_native,
    split_metadata,
    to_metadata,
)
from ...types import Record
from ...validation import Batch
from .collection import QdrantCollection
from .translator import to_filter

if TYPE_CHECKING:
    from .client import QdrantClient

#: Points whose payload keys describe a collection's fields.
SAMPLE = 100
U64 = 2**64
_KIND = {str: "string", bool: "bool", int: "int", float: "float", dict: "json", list: "array"}
METRICS = {models.Distance.COSINE: "cosine", models.Distance.EUCLID: "l2", models.Distance.DOT: "ip"}


def vector_fields(name: str, vectors: Any) -> list[Field]:
    """The dense vectors of a collection's ``params.vectors`` as fields (``""``: the unnamed one)."""
    named = vectors if isinstance(vectors, dict) else {"": vectors}
    out = []
    for vname, params in named.items():
        if params is None:
            continue
        if getattr(params, "multivector_config", None) is not None:
            continue  # several vectors per point: not one record's vector
        out.append(Field(vname, "vector", f"{params.distance.value} vector", dimension=int(params.size)))
    if not out:
        raise UnsupportedFeatureError(f"qdrant collection {name!r} has no dense vector of one per point "
                                      "(sparse or multi-vectors only)")
    return out


def describe(name: str, vectors: Any, payloads: list[Mapping[str, Any]], options: Mapping[str, Any]) -> NativeSchema:
    """The native schema of collection ``name``: its vectors, the sampled payload keys, its distance."""
    fields = vector_fields(name, vectors)
    chosen = options.get("vector_field")
    vec = next((f for f in fields if f.name == (chosen or "")), fields[0] if len(fields) == 1 else None)
    named = vectors if isinstance(vectors, dict) else {"": vectors}
    metric = None
    if vec is not None and vec.name in named:
        distance = named[vec.name].distance
        metric = METRICS.get(distance)
        if metric is None:
            raise UnsupportedFeatureError(f"qdrant collection {name!r}: the vector {vec.name or '(unnamed)'!r} has "
                                          f"the distance {distance.value}, which has no vecbridge metric")
        given = options.get("metric")
        if given and given != metric:
            raise UnsupportedFeatureError(f"qdrant collection {name!r} searches with the {distance.value} distance "
                                          f"({metric}); ?metric={given} cannot change that")
    kinds: dict[str, str] = {}
    for payload in payloads:
        for key, value in payload.items():
            if value is not None and not key.startswith("_vb"):
                kinds.setdefault(key, _KIND.get(type(value), "other"))
    for option, kind in (("document_field", "string"), ("metadata_field", "json")):
        given = options.get(option)
        if given and given not in kinds:  # free keys: a key named by an option exists
            kinds[given] = kind
    taken = {f.name for f in fields}
    fields += [Field(k, kind, kind) for k, kind in kinds.items() if k not in taken]
    return NativeSchema(name, tuple(fields), metric, free_keys=True)


def mapping_of(name: str, vectors: Any, payloads: list[Mapping[str, Any]], options: Mapping[str, Any]
               ) -> CollectionMapping:
    """The core's decision (:func:`vecbridge.mapping.decide`) on a Qdrant collection."""
    if options.get("id_field"):
        raise UnsupportedFeatureError(f"qdrant collection {name!r}: ids are Qdrant's point ids; id_field does not "
                                      "apply to Qdrant")
    mapping = decide(describe(name, vectors, payloads, options), options)
    if mapping.metric == "cosine":  # what this layout gives up, said where the mapping is described
        mapping = replace(mapping, notes=(*mapping.notes, COSINE_NOTE))
    return mapping


#: What a cosine collection in a native (or framework) layout gives up.
COSINE_NOTE = ("vectors: Qdrant keeps cosine vectors normalised; they come back as unit vectors (no copy of the "
               "vector as written is kept in the payload)")


def quote(segment: str, key: str) -> str:
    if '"' in segment or not segment:
        raise UnsupportedFilterError(f"qdrant: the metadata key {key!r} cannot be written as a Qdrant key path "
                                     '(an empty part or a \'"\' in it); filter on another key')
    return f'"{segment}"'


class NativePaths:
    """Filter paths on the real payload keys (see the module docstring)."""

    def __init__(self, mapping: CollectionMapping):
        self._outer = mapping.metadata_field
        self._top = set(mapping.metadata_fields)
        self._doc = mapping.document_field

    def scalar(self, key: str) -> str:
        parts = key.split(".")
        if self._outer is None and parts[0] == self._doc:
            # the document's key is no metadata key: a filter on it would see what metadata does not have
            raise UnsupportedFilterError(f"qdrant: the key {key!r} is this collection's document "
                                         f"({self._doc!r}), not metadata; filters run on metadata keys")
        if self._outer is not None and parts[0] not in self._top:
            parts = [self._outer, *parts]
        return ".".join(quote(p, key) for p in parts)

    def elements(self, key: str) -> str:
        return self.scalar(key)  # Qdrant's match on an array tests each element

    def exists(self, key: str) -> list[Any]:
        path = self.scalar(key)
        return [models.Filter(must_not=[models.IsEmptyCondition(is_empty=models.PayloadField(key=path))])]


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Dotted keys as nested objects (``to_metadata`` read backwards)."""
    out: dict[str, Any] = {}
    for key in sorted(flat, key=lambda k: k.count(".")):
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise InvalidMetadataError(f"the metadata key {key!r} would nest under {p!r}, which holds a value "
                                           "itself; in this Qdrant collection dots in keys are nesting")
            node = child
        if leaf in node:
            raise InvalidMetadataError(f"the metadata key {key!r} is also the parent of other keys; in this Qdrant "
                                       "collection dots in keys are nesting")
        node[leaf] = flat[key]
    return out


def point_id(id_: str, where: str) -> int | str:
    """The point id a record id names: ``"42"`` -> 42 (Qdrant's ids are unsigned 64-bit), a
    canonical UUID string -> that UUID; anything else -> InvalidRecordError."""
    if id_.isascii() and id_.isdigit() and id_ == str(int(id_)) and int(id_) < U64:
        return int(id_)
    try:
        uuid.UUID(id_)
    except ValueError:
        raise InvalidRecordError(f"{where}: {id_!r} cannot name a Qdrant point: a point id is an unsigned integer "
                                 "below 2**64 in canonical form ('42') or a UUID; nothing was written") from None
    return str(id_to_native(id_, "uuid", where))  # a UUID not in canonical form is refused there


class NativeQdrantCollection(QdrantCollection):
    """A Qdrant collection read and written through its :class:`CollectionMapping`."""

    def __init__(self, client: QdrantClient, name: str, mapping: CollectionMapping, index: dict[str, Any]):
        super().__init__(client, name, mapping.dimension, mapping.metric, index, managed=False,
                         using=mapping.vector_field or None)
        self.mapping = mapping
        self._raw_in_payload = False  # nothing but Qdrant's own vector is kept
        self._native_vectors = True
        # A cosine collection's vectors come back normalised: the server and local mode in memory
        # keep them so, but local mode on disk reads back what was written once the folder is
        # reopened (the same points, unit vectors before the reopen and raw ones after), which a
        # migration's verification would report as a difference.  Unit vectors in every form.
        self._unit = mapping.metric == "cosine"
        self._paths = NativePaths(mapping)
        self._doc = mapping.document_field
        #: Every conversion of :func:`to_metadata` on read and of the layout on write, by rule.
        self.conversions = Conversions()

    def _filter(self, where: Node | None) -> models.Filter | None:
        return to_filter(where, self._paths)

    def _point_ids(self, ids: list[str]) -> list[Any]:
        return [point_id(i, f"ids[{pos}]") for pos, i in enumerate(ids)]

    def _lookup(self, ids: list[str]) -> list[tuple[Any, str]]:
        out = []
        for i in ids:
            try:
                out.append((point_id(i, "ids"), i))
            except InvalidRecordError:
                continue  # no point can have this id: it is not found
        return out

    def _selectors(self, include: frozenset[str]) -> tuple[Any, Any]:
        with_payload = "metadata" in include or ("document" in include and self._doc is not None)
        with_vectors: Any = False
        if "vector" in include:
            with_vectors = [self._using] if self._using else True
        return with_payload, with_vectors

    def _records(self, points: list[Any], include: frozenset[str]) -> list[Record]:
        want_meta, want_doc, want_vec = "metadata" in include, "document" in include, "vector" in include
        vectors = self._vectors(points) if want_vec else None
        out = []
        for row, p in enumerate(points):
            payload = p.payload or {}
            doc = None
            if want_doc and self._doc is not None:
                doc = payload.get(self._doc)
                if doc is not None and not isinstance(doc, str):
                    raise InvalidRecordError(f"qdrant collection {self.name!r}: point {p.id} holds a "
                                             f"{type(doc).__name__} under its document key {self._doc!r}")
            vector = None if vectors is None else vectors[row]
            out.append(Record(id_from_native(p.id), vector, self._metadata(payload) if want_meta else None, doc))
        return out

    def _vectors(self, points: list[Any]) -> list[np.ndarray | None]:
        """The points' vectors as float32, converted in one numpy call per page (qdrant-client
        gives Python lists; one ``np.asarray`` per point cost half the scan's time)."""
        raw = [p.vector.get(self._using or "") if isinstance(p.vector, dict) else p.vector for p in points]
        present = [v for v in raw if v is not None]
        if not present:
            return [None] * len(raw)
        try:
            block = np.array(present, dtype=np.float32)
        except ValueError:  # vectors of several lengths: no block, one at a time
            block = None
        if block is None or block.ndim != 2:
            rows = [self._unit_rows(np.asarray(v, dtype=np.float32)[None, :])[0] for v in present]
        else:
            rows = list(self._unit_rows(block))
        it = iter(rows)
        return [None if v is None else next(it) for v in raw]

    def _unit_rows(self, block: np.ndarray) -> np.ndarray:
        """``block`` (rows of vectors) with the rows of a cosine collection at unit length (see
        ``_unit`` in ``__init__``), in place."""
        if self._unit:
            norms = np.linalg.norm(block, axis=1)
            off = (norms > 0) & (np.abs(norms - 1.0) > 1e-7)
            if off.any():
                block[off] = (block[off].astype(np.float64) / norms[off, None]).astype(np.float32)
        return block

    def _metadata(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        rest = {k: v for k, v in payload.items() if k != self._doc and not k.startswith("_vb")}
        inner = rest.pop(self.mapping.metadata_field, None) if self.mapping.metadata_field else None
        meta = to_metadata(rest, self.conversions)
        if isinstance(inner, Mapping):
            meta.update(to_metadata(inner, self.conversions))
        return meta

    def _vb_check_batch(self, batch: Batch) -> None:
        """The checks of the write path for ``batch`` (ids a point cannot have, keys that cannot
        nest, documents without a key), raising what a write would; nothing is written or read."""
        n = len(batch.ids)
        full = replace(batch, vectors=batch.vectors if batch.vectors is not None else np.zeros((n, self.dimension),
                                                                                             dtype=np.float32),
                       metadatas=batch.metadatas if batch.metadatas is not None else [{}] * n,
                       documents=batch.documents if batch.documents is not None else [None] * n)
        self._write_parts(full, Conversions())  # counted apart: the write counts its own

    def _write_parts(self, b: Batch, conv: Conversions | None = None) -> tuple[list[Any], Any, list[dict[str, Any]]]:
        assert b.vectors is not None and b.metadatas is not None and b.documents is not None
        pids = self._point_ids(b.ids)
        outer = self.mapping.metadata_field
        payloads = []
        for pos, (meta, doc) in enumerate(zip(b.metadatas, b.documents)):
            try:
                top, rest = split_metadata(meta, self.mapping)
                if self._doc is not None and self._doc in (top if outer else {**top, **rest}):
                    raise InvalidMetadataError(f"the metadata key {self._doc!r} is this collection's document key")
                payload = nest(top if outer is not None else {**top, **rest})
                if outer is not None and rest:
                    payload[outer] = nest(rest)
            except InvalidMetadataError as exc:
                raise InvalidMetadataError(f"metadatas[{pos}] (id {b.ids[pos]!r}): {exc}; nothing was written") from None
            if doc is not None:
                if self._doc is None:
                    raise InvalidRecordError(
                        f"documents[{pos}] (id {b.ids[pos]!r}): qdrant collection {self.name!r} has no document key; "
                        "name one with ?document_field=KEY; nothing was written")
                payload[self._doc] = doc
            payloads.append(payload)
        return pids, b.vectors, payloads

