"""Which backend serves a URL scheme (and which provider an embedding spec names).

Three sources, later ones winning: the built-in table below (each scheme names its
module and its pip extra), then backends registered by entry point in the group
``vecbridge.backends`` (``name = "package.module:ClientClass"``), then calls to
:func:`register_backend`.  Backend modules are imported only when used, so
``import vecbridge`` never imports a database SDK.  :class:`Plugins` is that
mechanism; embedding providers (:mod:`vecbridge.embeddings`) use it too.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .errors import BackendNotInstalledError, InvalidURLError

__all__ = ["BUILTIN_BACKENDS", "BackendSpec", "Plugins", "available_schemes", "get_backend", "register_backend"]


@dataclass(frozen=True)
class BackendSpec:
    """Where a plugin's class lives and what installs its library."""

    scheme: str
    target: str  # "package.module:ClientClass"
    extra: str | None = None
    requires: tuple[str, ...] = ()  # import names of the client libraries it needs

    @property
    def install_line(self) -> str:
        return f'pip install "vecbridge[{self.extra}]"' if self.extra else ""


class Plugins:
    """Named plugins of one kind: a built-in table, an entry-point group, registrations."""

    def __init__(self, noun: str, group: str, builtin: Iterable[BackendSpec], lookup: str = ""):
        # noun: "backend", "embedding provider"; lookup: how a missing name is described
        self.noun, self.group, self.lookup = noun, group, lookup or noun
        self.builtin = {s.scheme: s for s in sorted(builtin, key=lambda s: s.scheme)}
        self.registered: dict[str, BackendSpec | Callable[..., Any]] = {}
        self._entry_points_loaded = False
        self._lock = threading.Lock()

    def register(self, name: str, target: str | Callable[..., Any], extra: str | None = None) -> None:
        name = name.lower()
        with self._lock:
            self.registered[name] = BackendSpec(name, target, extra) if isinstance(target, str) else target

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        from importlib.metadata import entry_points

        found = {ep.name.lower(): BackendSpec(ep.name.lower(), ep.value) for ep in entry_points(group=self.group)}
        with self._lock:
            for name, spec in found.items():
                self.registered.setdefault(name, spec)
            self._entry_points_loaded = True

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(set(self.builtin) | set(self.registered))

    def get(self, name: str) -> Any:
        """The class (or factory) for ``name``, importing its module on first use; a missing
        library raises :class:`BackendNotInstalledError` with the exact install line."""
        name = name.lower()
        spec: Any = self.registered.get(name)
        if spec is None:
            self._load_entry_points()
            spec = self.registered.get(name) or self.builtin.get(name)
        if spec is None:
            raise InvalidURLError(f"no {self.lookup} {name!r}; known: {', '.join(self.names())}")
        if not isinstance(spec, BackendSpec):
            return spec
        for lib in spec.requires:
            try:
                importlib.import_module(lib)
            except ImportError as exc:
                hint = spec.install_line or f"install the client library {lib!r}"
                raise BackendNotInstalledError(
                    f"the {name!r} {self.noun} needs the Python package {lib!r}, which is not "
                    f"installed; run: {hint}") from exc
        module_name, _, attr = spec.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            hint = f"; run: {spec.install_line}" if spec.install_line else ""
            raise BackendNotInstalledError(f"cannot import the {name!r} {self.noun} ({exc}){hint}") from exc
        return getattr(module, attr or "Client")


BACKENDS = Plugins("backend", "vecbridge.backends", lookup="backend for the scheme", builtin=[
    BackendSpec("chroma", "vecbridge.backends.chroma:ChromaClient", "chroma", ("chromadb",)),
    BackendSpec("faiss", "vecbridge.backends.faiss:FaissClient", "faiss", ("faiss",)),
    BackendSpec("milvus", "vecbridge.backends.milvus:MilvusClient", "milvus", ("pymilvus",)),
    BackendSpec("pgvector", "vecbridge.backends.pgvector:PgvectorClient", "pgvector", ("psycopg",)),
    BackendSpec("postgresql", "vecbridge.backends.pgvector:PgvectorClient", "pgvector", ("psycopg",)),
    BackendSpec("qdrant", "vecbridge.backends.qdrant:QdrantClient", "qdrant", ("qdrant_client",)),
])
#: Built-in schemes, sorted.  Aliases map onto the same module.
BUILTIN_BACKENDS = BACKENDS.builtin
_registered = BACKENDS.registered

ClientFactory = Callable[..., Any]


def register_backend(scheme: str, target: str | ClientFactory, extra: str | None = None) -> None:
    """Register a backend for ``scheme``.

    ``target`` is a client class (or factory) taking ``(url, **options)``, or its
    import path as ``"package.module:ClientClass"``.
    """
    BACKENDS.register(scheme, target, extra)


def available_schemes() -> list[str]:
    """Every scheme a URL may use now."""
    return BACKENDS.names()


def get_backend(scheme: str) -> ClientFactory:
    """The client class for ``scheme``, importing its module on first use."""
    return BACKENDS.get(scheme)  # type: ignore[no-any-return]
