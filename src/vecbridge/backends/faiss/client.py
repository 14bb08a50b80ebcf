"""``faiss://`` (in memory) and ``faiss:///path`` (a folder on disk).

Each collection on disk is a folder ``<root>/<name>/`` holding ``records.sqlite``
(ids, vectors, metadata, documents: the source of truth) and
``index-<generation>.faiss`` (the index, saved on ``close()``).  One process at a
time should write a folder.
"""

from __future__ import annotations

import shutil
import weakref
from pathlib import Path
from typing import Any

from ...base import BaseClient, native_errors
from ...capabilities import Capabilities
from ...errors import InvalidURLError
from ...url import URL
from .collection import FaissCollection
from .store import Store

_DB = "records.sqlite"


class FaissClient(BaseClient):
    backend_name = "faiss"
    capabilities_declared = Capabilities(index_types=("flat", "hnsw"), ordered_scan=True)

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
        from dataclasses import replace

        return replace(self.capabilities_declared, persistent=self._root is not None)

    @staticmethod
    def _flush_all(open_: dict[str, FaissCollection]) -> None:
        for coll in list(open_.values()):
            try:
                coll.flush()
            finally:
                coll._store.close()
        open_.clear()

    def _close(self) -> None:
        self._finalizer()

    def _dir(self, name: str) -> Path:
        assert self._root is not None
        return self._root / name

    def _list_collections(self) -> list[str]:
        if self._root is None:
            return list(self._open)
        return [p.name for p in self._root.iterdir() if (p / _DB).is_file()]

    def _create_collection(self, name: str, dimension: int, metric: str, index: dict[str, Any]) -> FaissCollection:
        spec = {"type": "hnsw"} if index["type"] == "default" else dict(index)
        with native_errors("faiss", "create_collection"):
            directory = None
            if self._root is None:
                store = Store(":memory:")
            else:
                directory = self._dir(name)
                directory.mkdir(parents=True, exist_ok=True)
                store = Store(str(directory / (_DB + ".new")))
            store.set_info(dimension=dimension, metric=metric, index=spec, generation=0)
            if directory is not None:  # the collection appears only once complete
                store.close()
                (directory / (_DB + ".new")).rename(directory / _DB)
                store = Store(str(directory / _DB))
        coll = FaissCollection(self, name, store, dimension, metric, spec, directory)
        self._open[name] = coll
        return coll

    def _get_collection(self, name: str) -> FaissCollection | None:
        coll = self._open.get(name)
        if coll is not None or self._root is None:
            return coll
        directory = self._dir(name)
        if "/" in name or name in ("", ".", "..") or not (directory / _DB).is_file():
            return None
        with native_errors("faiss", "open collection"):
            store = Store(str(directory / _DB))
            info = store.get_info()
        coll = FaissCollection(self, name, store, info["dimension"], info["metric"], info["index"], directory)
        self._open[name] = coll
        return coll

    def _delete_collection(self, name: str) -> None:
        coll = self._open.pop(name, None)
        if coll is not None:
            coll._store.close()
        if self._root is not None:
            shutil.rmtree(self._dir(name), ignore_errors=True)
