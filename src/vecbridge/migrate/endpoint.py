"""The two sides of a migration: opened by URL (or given as objects), reopened after a failure.

A side given as a URL is connected here and closed at the end; after a transient
error a server side is reconnected from scratch (a restarted server invalidates the
old connection).  Two URLs naming the same database share one client, because some
embedded engines lock their folder against a second client, even in one process.
A side given as a ``Collection`` or ``Client`` object belongs to the caller: it is
used as is, never closed and never reopened.
"""

from __future__ import annotations

import contextlib
from typing import Any

from ..capabilities import Capabilities, capabilities_of
from ..errors import InvalidURLError
from ..url import URL

__all__ = ["Connections", "Side"]


def _connect(url: URL) -> Any:
    import vecbridge  # late: vecbridge imports this package lazily

    return vecbridge.connect(url)


class Connections:
    """One client per database URL (collection parameter removed), opened on first use."""

    def __init__(self) -> None:
        self._clients: dict[str, Any] = {}

    @staticmethod
    def key(url: URL) -> str:
        return url.with_query(collection=None).render(hide_secrets=False)

    def client(self, url: URL) -> Any:
        k = self.key(url)
        if k not in self._clients:
            self._clients[k] = _connect(url.with_query(collection=None))
        return self._clients[k]

    def drop(self, url: URL) -> None:
        """Close and forget the client of ``url``; the next use reconnects."""
        client = self._clients.pop(self.key(url), None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def close(self) -> None:
        for k in list(self._clients):
            client = self._clients.pop(k)
            with contextlib.suppress(Exception):
                client.close()


def _is_collection(obj: Any) -> bool:
    return hasattr(obj, "scan") and hasattr(obj, "upsert") and hasattr(obj, "dimension")


def _is_client(obj: Any) -> bool:
    return hasattr(obj, "create_collection") and hasattr(obj, "get_collection")


class Side:
    """The source or the target: where it is, its collection name, the open collection."""

    def __init__(self, spec: Any, role: str, connections: Connections):
        self.role = role
        self._conns = connections
        self.url: URL | None = None
        self._client_obj: Any = None
        self._coll: Any = None
        self.owned = True  # opened here, so reopened and closed here
        if isinstance(spec, (str, URL)):
            self.url = URL.parse(spec)
            name = self.url.query.get("collection")
            self.name: str | None = str(name) if name not in (None, "") else None
        elif _is_collection(spec):
            self._coll, self.name, self.owned = spec, spec.name, False
            self._client_obj = getattr(spec, "_client", None)
        elif _is_client(spec):
            self._client_obj, self.name, self.owned = spec, None, False
        else:
            raise InvalidURLError(f"the {role} must be a URL, a Collection or a Client, not {type(spec).__name__}")
        self.name_given = self.name is not None

    # -- naming ----------------------------------------------------------------------
    @property
    def backend(self) -> str:
        if self.url is not None:
            return self.url.scheme
        obj = self._client_obj if self._client_obj is not None else self._coll
        return str(getattr(obj, "backend_name", None) or getattr(obj, "backend", None) or type(obj).__name__)

    @property
    def backend_name(self) -> str:
        """The backend's own name, whatever the URL's scheme (``pgvector`` for ``postgresql://``):
        what the frameworks' layouts are known by (:mod:`vecbridge.layouts`)."""
        if self._client_obj is not None:
            client = self._client_obj
        elif self._coll is not None:
            client = getattr(self._coll, "_client", None)
        else:
            client = self.client()
        return str(getattr(client, "backend_name", None) or self.backend)

    @property
    def display(self) -> str:
        """The location for people: the URL without the collection, secrets as ``***``."""
        if self.url is not None:
            return self.url.with_query(collection=None).render()
        url = getattr(self._client_obj, "url", None)
        return str(url) if url is not None else f"<{type(self._client_obj or self._coll).__name__}>"

    @property
    def in_memory(self) -> bool:
        """An in-memory database given by URL: a fresh, empty one in every process."""
        return self.url is not None and self.url.host is None and self.url.path is None

    def same_database(self, other: Side) -> bool:
        if self.url is not None and other.url is not None:
            return not self.in_memory and Connections.key(self.url) == Connections.key(other.url)
        if self._coll is not None and self._coll is other._coll:
            return True
        return self._client_obj is not None and self._client_obj is other._client_obj

    # -- objects ---------------------------------------------------------------------
    @property
    def given_collection(self) -> Any:
        """The collection object the caller passed, if any."""
        return self._coll if not self.owned and self._coll is not None else None

    def named(self) -> bool:
        """Whether the side names a collection: by its URL's ``?collection=``, or by the
        client's default (a FAISS index file's one collection)."""
        if self.name is None and self._coll is None and (self.url is not None or self._client_obj is not None):
            default = getattr(self.client(), "default_collection", None)
            if default:
                self.name = str(default)
        return self.name is not None

    @property
    def capabilities(self) -> Capabilities:
        """What this side's backend can do (:mod:`vecbridge.capabilities`)."""
        client = self._client_obj if self._client_obj is not None else getattr(self._coll, "_client", None)
        return capabilities_of(client if client is not None else self.client())

    def client(self) -> Any:
        if self._client_obj is not None:
            return self._client_obj
        assert self.url is not None
        return self._conns.client(self.url)

    @property
    def collection(self) -> Any:
        """The open collection (opened on first use and after :meth:`reopen`)."""
        if self._coll is None:
            assert self.name is not None
            self._coll = self.client().get_collection(self.name)
        return self._coll

    def set_collection(self, coll: Any) -> None:
        self._coll = coll
        self.name = coll.name

    def reopen(self) -> None:
        """Forget the connection so that the next use reconnects (server URLs only).

        Embedded and in-memory databases are not reconnected: their state lives in
        this process, and a new in-memory client would be empty.
        """
        if not self.owned or self.url is None or self.url.host is None:
            return
        self._coll = None
        self._conns.drop(self.url)
