"""``faiss://`` (in memory) and ``faiss:///path`` (a folder on disk).

Each collection on disk is a folder ``<root>/<name>/`` holding ``records.sqlite``
(ids, vectors, metadata, documents: the source of truth), ``index-<generation>.faiss``
(the index, saved on ``close()``) and ``lock`` (the write lock).  Any number of
clients and processes may read and write a folder: writes are serialised by the lock
and every reader catches its index up with the records (see :mod:`.collection`).

The collection's facts (dimension, metric, index spec, layout) and what ``set_config``
stores with it are one JSON document in the info table of ``records.sqlite`` (key
``config``); a folder made before that key existed is read from its older info keys.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import weakref
from dataclasses import replace
from pathlib import Path
from typing import Any

from ...base import BaseClient
from ...capabilities import Capabilities
from ...errors import CollectionExistsError, InvalidURLError
from ...url import URL
from .collection import DB_NAME, FaissCollection
from .failures import ERRORS, mapped_errors
from .lock import folder_lock
from .store import MAX_DOCUMENT_BYTES, MAX_METADATA_BYTES, Store, stored_metadata_bytes


class FaissClient(BaseClient):
    backend_name = "faiss"
    error_map = ERRORS
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
        self._root = Path(self.url.path) if self.url.path else None
        if self._root is not None:
            self._root.mkdir(parents=True, exist_ok=True)
        self._open: dict[str, FaissCollection] = {}
        # Save indexes if the program ends without close(); records are safe in SQLite anyway.
        self._finalizer = weakref.finalize(self, FaissClient._flush_all, self._open)

    def _capabilities(self) -> Capabilities:
        if self._root is not None:
            return self.capabilities_declared
        # faiss:// lives in this client's memory: no other process (or client) can reach it
        return replace(self.capabilities_declared, shared_between_processes=False, persistent=False)

    def _mapped_errors(self, action: str) -> contextlib.AbstractContextManager[None]:
        return mapped_errors(action, self._root)

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
        if self._root is None:
            return list(self._open)
        return [p.name for p in self._root.iterdir() if (p / DB_NAME).is_file()]

    def _create_collection(self, name: str, dimension: int, metric: str, index: dict[str, Any]) -> FaissCollection:
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

    def _get_collection(self, name: str) -> FaissCollection | None:
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
        self._forget(name)
        if self._root is not None:
            directory = self._dir(name)
            with mapped_errors("delete_collection", directory), folder_lock(directory):
                # under the lock: no writer of another client is inside a transaction; they
                # find the folder gone when they next take the lock
                shutil.rmtree(directory, ignore_errors=True)
