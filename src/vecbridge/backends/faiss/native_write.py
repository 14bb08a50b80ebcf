"""A FAISS index file written by vecbridge: ``create_collection`` under ``?layout=native``.

FAISS's own layout is the file ``faiss.write_index`` writes: vectors and int64 ids, nothing
else.  So ``faiss:///FOLDER?layout=native`` creates ``FOLDER/<name>.faiss``, an
``IndexIDMap2`` over an exact flat index (``IndexFlatL2`` for l2, ``IndexFlatIP`` for ip and
cosine) -- what a FAISS user writes by hand, which ``faiss.read_index`` opens and
:mod:`.native` reads back as ``layout native``.  What it takes and what it gives up:

* ids must be whole numbers in canonical form within int64 (``"42"``, not ``"a"`` or
  ``"042"``): the file's labels;
* records with metadata or a document are refused (``InvalidRecordError`` naming the
  record and what it carries) before anything is written: the file has no place for them;
* cosine: FAISS has no cosine metric; the file holds the *normalised* vectors in an
  inner-product index (what LangChain's FAISS store does), so a vector comes back as its
  unit vector, and a zero vector is refused.  The file cannot say "cosine": reopened, it is
  an ``ip`` index unless the URL says ``?metric=cosine``;
* the index is flat (exact; the default) or HNSW (``{"type": "hnsw", "m": …}``, an
  ``IndexHNSWFlat``: what a migration from an HNSW collection asks for).  FAISS's HNSW cannot
  remove ids, so on an HNSW file an upsert of an existing id and a delete are refused
  (``UnsupportedFeatureError``, nothing written); adding new ids works;
* no configuration document (``set_config`` is refused): the file has no room for one;
* the collection returned by ``create_collection`` takes writes (each rewrites the file
  whole, into a temporary file renamed over it, so a reader never sees half a file); the
  file reopened later is read-only like any index file, since vecbridge cannot tell it
  from one an application owns.  One writer at a time: a second process writing the same
  file would overwrite the first's records.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ... import filters
from ...errors import CollectionExistsError, DuplicateIdError, InvalidRecordError, UnsupportedFeatureError
from ...filters import Node
from ...flows import run
from ...mapping import id_to_native
from ...validation import Batch
from .native import NativeIndexCollection, faiss

if TYPE_CHECKING:
    from .client import FaissClient

__all__ = ["INDEX_SUFFIX", "WritableIndexFile", "create_index_file"]

#: The file a collection named ``docs`` is written to: ``docs.faiss``.
INDEX_SUFFIX = ".faiss"


def _write(index: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    try:
        faiss.write_index(index, str(tmp))
        os.replace(tmp, path)  # whole or not at all: a reader never sees half a file
    finally:
        tmp.unlink(missing_ok=True)


def create_index_file(client: FaissClient, name: str, path: Path, dimension: int, metric: str,
                      index: dict[str, Any], options: dict[str, Any]) -> WritableIndexFile:
    """Write an empty index file at ``path`` and open it for writing (module docstring)."""
    kind = index.get("type")
    faiss_metric = faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT
    if kind in ("default", "flat"):
        inner = faiss.IndexFlatL2(dimension) if metric == "l2" else faiss.IndexFlatIP(dimension)
    elif kind == "hnsw":
        inner = faiss.IndexHNSWFlat(dimension, int(index.get("m") or 32), faiss_metric)
        if index.get("ef_construction"):
            inner.hnsw.efConstruction = int(index["ef_construction"])
        if index.get("ef_search"):
            inner.hnsw.efSearch = int(index["ef_search"])
    else:
        raise UnsupportedFeatureError(f"faiss: a FAISS index file in layout native is a flat or HNSW index; "
                                      f"{kind!r} is not offered (an IVF index must be trained before it is written)")
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))  # claims the name, or fails
    except FileExistsError:
        raise CollectionExistsError(f"faiss: {path} exists already (collection {name!r}); open it with "
                                    "get_collection, or remove the file") from None
    with client._mapped_errors(f"write the FAISS index file {path}"):
        try:
            _write(faiss.IndexIDMap2(inner), path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    return WritableIndexFile(client, name, path, {**options, "metric": metric, "layout": "native"})


class WritableIndexFile(NativeIndexCollection):
    """An index file vecbridge created, open for writing (module docstring)."""

    def __init__(self, client: FaissClient, name: str, path: Path, options: dict[str, Any]):
        super().__init__(client, name, path, options)
        self._write_lock = threading.Lock()

    # -- what the file can take ---------------------------------------------------------------
    def _labels(self, b: Batch) -> np.ndarray:
        """The batch's ids as int64 labels, after every check (the same as :meth:`_vb_check_batch`)."""
        self._vb_check_batch(b)
        return np.asarray([id_to_native(i, "int") for i in b.ids], dtype=np.int64)

    def _vb_check_batch(self, batch: Batch) -> None:
        """A record this file cannot hold -> InvalidRecordError naming it; nothing written."""
        where = f"faiss: the index file {self.path}"
        for i, id_ in enumerate(batch.ids):
            id_to_native(id_, "int", f"{where}: id")
            meta = batch.metadatas[i] if batch.metadatas is not None else None
            doc = batch.documents[i] if batch.documents is not None else None
            if meta or doc is not None:
                what = " and ".join(filter(None, [f"metadata ({', '.join(sorted(meta))})" if meta else "",
                                                  "a document" if doc is not None else ""]))
                raise InvalidRecordError(
                    f"{where} holds vectors and integer ids only: record {id_!r} carries {what}, which it cannot "
                    "store (nothing was written); copy into a collection folder (faiss:///FOLDER without "
                    "?layout=native) to keep them, or leave them out")
        if self.metric == "cosine" and batch.vectors is not None:
            zero = np.flatnonzero(~np.any(batch.vectors != 0, axis=1))
            if len(zero):
                raise InvalidRecordError(f"{where} ranks cosine by the inner product of unit vectors: record "
                                         f"{batch.ids[int(zero[0])]!r} has a zero vector, which has no direction")

    def _write_config(self, doc: dict[str, Any]) -> None:
        raise UnsupportedFeatureError(f"faiss: set_config refused: {self.path} is a FAISS index file (layout native), "
                                      "which has no room for a configuration document")

    def _can_remove(self, ids: list[str]) -> None:
        if self.index.get("type") == "hnsw":
            raise UnsupportedFeatureError(
                f"faiss: {self.path} is an HNSW index file, and FAISS's HNSW cannot remove ids, so the records "
                f"{', '.join(map(repr, ids[:5]))} cannot be replaced or deleted (nothing was written); write new ids "
                "only, or create the file with a flat index ({'type': 'flat'}, the default)")

    # -- writes --------------------------------------------------------------------------------
    def _commit(self, index: Any) -> None:
        """The file rewritten whole, and this collection's view of it renewed."""
        with self._mapped_errors(f"write the FAISS index file {self.path}"):
            _write(index, self.path)
        self._ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        self._positions = None

    def _put(self, b: Batch, replace: bool) -> None:
        assert b.vectors is not None
        labels = self._labels(b)
        vectors = np.array(b.vectors, dtype=np.float32, copy=True, order="C")
        if self.metric == "cosine":
            faiss.normalize_L2(vectors)
        with self._write_lock:
            present = [i for i, label in zip(b.ids, labels.tolist()) if label in self._position_of()]
            if present and not replace:
                raise DuplicateIdError(self._duplicate_message(present))
            if present:
                self._can_remove(present)
            with self._mapped_errors(f"write {len(labels)} vectors"):
                if present:
                    self._index.remove_ids(faiss.IDSelectorBatch(labels))
                self._index.add_with_ids(vectors, labels)
            self._commit(self._index)

    def _add(self, b: Batch) -> None:
        self._put(b, replace=False)

    def _upsert(self, b: Batch) -> None:
        self._put(b, replace=True)

    def _update(self, b: Batch) -> None:
        run(self, self._flow_default_update(b))  # read, merge, upsert: the checks of _upsert apply

    def _delete(self, ids: list[str] | None, where: Node | None) -> None:
        if where is not None and not filters.matches(where, {}):
            return  # no record has metadata: the filter selects none (native.py)
        with self._write_lock:
            if ids is None:
                labels = self._ids.copy()
            else:
                known = self._position_of()
                labels = np.asarray([int(i) for i in ids if i.lstrip("-").isdigit() and i == str(int(i))
                                     and int(i) in known], dtype=np.int64)
            if not len(labels):
                return
            self._can_remove([str(v) for v in labels[:5].tolist()])
            with self._mapped_errors(f"delete {len(labels)} vectors"):
                self._index.remove_ids(faiss.IDSelectorBatch(labels))
            self._commit(self._index)
