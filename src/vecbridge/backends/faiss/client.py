"""``faiss://`` (in memory) and ``faiss:///path`` (a folder on disk).

Each collection on disk is a folder ``<root>/<name>/`` holding ``records.sqlite``
(ids, vectors, metadata, documents: the source of truth), ``index-<generation>.faiss``
(the index, saved on ``close()``) and ``lock`` (the write lock).  Any number of
clients and processes may read and write a folder: writes are serialised by the lock
and every reader catches its index up with the records (see :mod:`.collection`).

The collection's facts (dimension, metric, index spec, layout) and what ``set_config``
stores with it are one JSON document in the info table of ``records.sqlite`` (key
``config``); a folder made before that key existed is read from its older info keys.

FAISS index files that vecbridge did not write (``faiss.write_index``) open read-only
(:mod:`.native`): ``faiss:///path/index.faiss`` names one such file (a path ending in
``.faiss`` or ``.index`` that is not a folder), whose one collection is named by the file's
name; in a folder, such files are listed beside the collections under their file names.
The URL options of a mapping (:data:`vecbridge.mapping.MAPPING_OPTIONS`) apply to them.
``faiss:///FOLDER?layout=native`` creates such files (:mod:`.native_write`): the collection
``docs`` is the file ``FOLDER/docs.faiss``, which that URL also opens as ``docs``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any

from ...base import BaseClient, BaseCollection
from ...capabilities import Capabilities
from ...errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    InvalidURLError,
    UnsupportedFeatureError,
    VecbridgeError,
)
from ...mapping import LAYOUTS
from ...options import Option
from ...url import URL
from .collection import DB_NAME, FaissCollection
from .failures import ERRORS, mapped_errors
from .lock import folder_lock
from .native import NativeIndexCollection, is_index_file
from .native_write import INDEX_SUFFIX, WritableIndexFile, create_index_file
from .store import MAX_DOCUMENT_BYTES, MAX_METADATA_BYTES, Store, stored_metadata_bytes

#: The mapping options (vecbridge.mapping): they apply to FAISS index files (native.py).
OPTIONS = (
    Option("id_field", doc="the id field of an index file (only 'id': its labels or positions)", where="local"),
    Option("vector_field", doc="the vector field of an index file (only 'vector')", where="local"),
    Option("document_field", doc="an index file has no documents", where="local"),
    Option("metadata_field", doc="an index file has no metadata", where="local"),
    Option("metadata_fields", doc="an index file has no metadata", where="local"),
    Option("metric", doc="an index file's metric: l2 or ip from its metric_type; cosine for an inner-product "
           "index over normalised vectors", where="local", choices=("cosine", "l2", "ip")),
    Option("layout", doc="vecbridge (folders of collections) or native (index files; created as NAME.faiss)",
           where="local",
           choices=LAYOUTS),
)


class FaissClient(BaseClient):
    backend_name = "faiss"
    error_map = ERRORS
    declared_options = OPTIONS
    capabilities_declared = Capabilities(
        index_types=("flat", "hnsw"),
        # one SQLite row per record (store.py); vectors never leave the process
        max_document_bytes=MAX_DOCUMENT_BYTES, max_metadata_bytes=MAX_METADATA_BYTES,
        metadata_bytes=stored_metadata_bytes,
        ordered_scan=True,  # by row id: the order records were last written in, stable between scans
        # add's check and write are one SQLite transaction under the folder's flock (lock.py),
        # which every process writing the folder takes
        atomic_add=True,
        shared_between_processes=True, persistent=True)

    def __init__(self, url: URL | str, **options: Any):
        super().__init__(url, **options)
        if self.url.host:
            raise InvalidURLError(f"{self.url}: a faiss URL names a folder (faiss:///path) or nothing (faiss://), not a host")
        path = Path(self.url.path) if self.url.path else None
        #: an index file that vecbridge did not write, named by the URL (native.py)
        self._file = path if path is not None and is_index_file(path) else None
        self._root = path if self._file is None else None
        if self._file is not None and not self._file.is_file():
            raise CollectionNotFoundError(f"faiss: no FAISS index file at {self._file} (a faiss URL whose path ends "
                                          "in .faiss or .index names a file written by faiss.write_index)")
        if self._root is not None:
            self._root.mkdir(parents=True, exist_ok=True)
        self._open: dict[str, FaissCollection] = {}
        self._native: dict[str, NativeIndexCollection] = {}
        self._mapping_options = {k: v for k, v in self.options.items() if v is not None}
        # Save indexes if the program ends without close(); records are safe in SQLite anyway.
        self._finalizer = weakref.finalize(self, FaissClient._flush_all, self._open)

    def _capabilities(self) -> Capabilities:
        if self._root is not None or self._file is not None:
            return self.capabilities_declared
        # faiss:// lives in this client's memory: no other process (or client) can reach it
        return replace(self.capabilities_declared, shared_between_processes=False, persistent=False)

    def _mapped_errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        return mapped_errors(action, self._root, self.backend_name, self.error_map)

    @staticmethod
    def _flush_all(open_: dict[str, FaissCollection]) -> None:
        first: BaseException | None = None
        for coll in list(open_.values()):
            try:
                coll.flush()  # saves only an index that is current (collection.py)
            except Exception as exc:  # the others are still saved and closed
                first = first or exc
            finally:
                coll._store.close()
        open_.clear()
        if first is not None:
            raise first

    def _close(self) -> None:
        self._finalizer()

    def _dir(self, name: str) -> Path:
        assert self._root is not None
        return self._root / name

    def _list_collections(self) -> list[str]:
        if self._file is not None:
            return [self._file.name]
        if self._root is None:
            return list(self._open)
        return [p.name for p in self._root.iterdir() if (p / DB_NAME).is_file() or is_index_file(p)]

    @property
    def default_collection(self) -> str | None:
        """A URL naming an index file means its one collection."""
        return self._file.name if self._file is not None else None

    def _index_file(self, name: str) -> Path | None:
        """The index file a collection name stands for, if it names one."""
        if self._file is not None:
            return self._file if name == self._file.name else None
        if self._root is None or "/" in name:
            return None
        if not is_index_file(Path(name)):
            # under ?layout=native the collection "docs" is the file docs.faiss (native_write.py)
            native = self._native_layout() and not (self._dir(name) / DB_NAME).is_file()
            path = self._root / f"{name}{INDEX_SUFFIX}"
            return path if native and path.is_file() else None
        path = self._root / name
        return path if path.is_file() else None

    def _native_layout(self) -> bool:
        return self._mapping_options.get("layout") == "native"

    def describe_collections(self) -> list[dict[str, Any]]:
        """Every collection with its ``layout`` (``vecbridge``, or ``native`` for an index file),
        and ``error``, the reason in one line, for one that cannot be opened; never fails for one."""
        self._check_open()
        out: list[dict[str, Any]] = []
        for name in sorted(self._list_collections()):
            entry: dict[str, Any] = {"name": name, "layout": "native" if self._index_file(name) else "vecbridge"}
            try:
                coll = self._get_collection(name)
                if coll is None:
                    continue  # deleted meanwhile
                entry["layout"] = coll.config.get("layout", entry["layout"])
            except VecbridgeError as exc:
                entry["error"] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            out.append(entry)
        return out

    def _create_collection(self, name: str, dimension: int, metric: str, index: dict[str, Any]) -> BaseCollection:
        if self._file is not None:
            raise UnsupportedFeatureError(f"faiss: {self._file} is a FAISS index file, opened read-only; create "
                                          "collections in a folder (faiss:///FOLDER)")
        if self._native_layout():
            if self._root is None:
                raise UnsupportedFeatureError("faiss: layout native writes a FAISS index file, which needs a folder: "
                                              "faiss:///FOLDER?layout=native")
            if (self._dir(name) / DB_NAME).is_file():
                raise CollectionExistsError(f"collection {name!r} exists already in {self._root} (layout vecbridge)")
            self._native[name] = created = create_index_file(self, name, self._root / f"{name}{INDEX_SUFFIX}",
                                                             dimension, metric, index, self._mapping_options)
            return created
        if self._mapping_options.get("layout", "vecbridge") != "vecbridge":
            raise UnsupportedFeatureError(f"faiss: creates collections in the vecbridge layout (a folder with "
                                          f"records.sqlite) or native (an index file), not "
                                          f"{self._mapping_options['layout']!r}")
        spec = {"type": "hnsw"} if index["type"] == "default" else dict(index)
        with mapped_errors("create_collection", self._dir(name) if self._root is not None else None):
            directory = None
            if self._root is None:
                store = Store(":memory:")
            else:
                directory = self._dir(name)
                directory.mkdir(parents=True, exist_ok=True)
                tmp = directory / f"{DB_NAME}.{os.getpid()}.{id(self)}.new"
                store = Store(str(tmp))
            store.set_config({"dimension": dimension, "metric": metric, "index": spec, "layout": "vecbridge"})
            store.set_info(generation=0)
            if directory is not None:  # the collection appears only once complete
                store.close()
                try:
                    # link, unlike rename, fails when another client created it meanwhile
                    os.link(tmp, directory / DB_NAME)
                except FileExistsError:
                    raise CollectionExistsError(
                        f"collection {name!r} was created meanwhile by another client or process "
                        f"({directory}); open it with get_collection") from None
                finally:
                    tmp.unlink(missing_ok=True)
                store = Store(str(directory / DB_NAME))
        self._forget(name)
        coll = FaissCollection(self, name, store, dimension, metric, spec, directory)
        self._open[name] = coll
        return coll

    def _forget(self, name: str) -> None:
        old = self._open.pop(name, None)
        if old is not None:
            old._store.close()

    def _get_collection(self, name: str) -> BaseCollection | None:
        path = self._index_file(name)
        if path is not None:
            native = self._native.get(name)
            if native is None:
                native = self._native[name] = NativeIndexCollection(self, name, path, self._mapping_options)
            return native
        if self._file is not None:
            return None
        if self._mapping_options.get("layout") not in (None, "vecbridge") and self._root is not None \
                and (self._dir(name) / DB_NAME).is_file():
            raise UnsupportedFeatureError(f"faiss: collection {name!r} is in the vecbridge layout, not "
                                          f"{self._mapping_options['layout']!r}")
        coll = self._open.get(name)
        if self._root is None:
            return coll
        if coll is not None:
            if coll.is_alive():
                return coll
            self._forget(name)  # deleted by another client: open what is there now, if anything
        directory = self._dir(name)
        if "/" in name or name in ("", ".", "..") or not (directory / DB_NAME).is_file():
            return None
        with mapped_errors("open collection", directory):
            store = Store(str(directory / DB_NAME))
            doc = store.get_config()
        coll = FaissCollection(self, name, store, doc["dimension"], doc["metric"], doc["index"], directory)
        self._open[name] = coll
        return coll

    def _delete_collection(self, name: str) -> None:
        made = self._native.get(name)
        if isinstance(made, WritableIndexFile):  # a file this client wrote (a failed migration's target)
            del self._native[name]
            made.path.unlink(missing_ok=True)
            return
        if self._index_file(name) is not None:
            raise UnsupportedFeatureError(f"faiss: {name!r} is a FAISS index file that vecbridge opens read-only; "
                                          "it is not deleted (remove the file yourself)")
        self._forget(name)
        if self._root is not None:
            directory = self._dir(name)
            with mapped_errors("delete_collection", directory), folder_lock(directory):
                # under the lock: no writer of another client is inside a transaction; they
                # find the folder gone when they next take the lock
                shutil.rmtree(directory, ignore_errors=True)
