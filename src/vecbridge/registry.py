"""Which backend serves a URL scheme.

Three sources, later ones winning: the built-in table below (each scheme names its
module and its pip extra), then backends registered by entry point in the group
``vecbridge.backends`` (``name = "package.module:ClientClass"``), then calls to
:func:`register_backend`.  Backend modules are imported only when used, so
``import vecbridge`` never imports a database SDK.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import BackendNotInstalledError, InvalidURLError

__all__ = ["BUILTIN_BACKENDS", "BackendSpec", "available_schemes", "get_backend", "register_backend"]


@dataclass(frozen=True)
class BackendSpec:
    """Where a backend's client class lives and what installs its library."""

    scheme: str
    target: str  # "package.module:ClientClass"
    extra: str | None = None
    requires: tuple[str, ...] = ()  # import names of the client libraries it needs

    @property
    def install_line(self) -> str:
        return f'pip install "vecbridge[{self.extra}]"' if self.extra else ""


#: Built-in schemes, sorted.  Aliases map onto the same module.
BUILTIN_BACKENDS: dict[str, BackendSpec] = {
    s.scheme: s
    for s in sorted(
        [
            BackendSpec("chroma", "vecbridge.backends.chroma:ChromaClient", "chroma", ("chromadb",)),
            BackendSpec("faiss", "vecbridge.backends.faiss:FaissClient", "faiss", ("faiss",)),
            BackendSpec("milvus", "vecbridge.backends.milvus:MilvusClient", "milvus", ("pymilvus",)),
            BackendSpec("pgvector", "vecbridge.backends.pgvector:PgvectorClient", "pgvector", ("psycopg",)),
            BackendSpec("postgresql", "vecbridge.backends.pgvector:PgvectorClient", "pgvector", ("psycopg",)),
            BackendSpec("qdrant", "vecbridge.backends.qdrant:QdrantClient", "qdrant", ("qdrant_client",)),
        ],
        key=lambda s: s.scheme,
    )
}

ClientFactory = Callable[..., Any]
_registered: dict[str, BackendSpec | ClientFactory] = {}
_entry_points_loaded = False
_lock = threading.Lock()


def register_backend(scheme: str, target: str | ClientFactory, extra: str | None = None) -> None:
    """Register a backend for ``scheme``.

    ``target`` is a client class (or factory) taking ``(url, **options)``, or its
    import path as ``"package.module:ClientClass"``.
    """
    scheme = scheme.lower()
    with _lock:
        _registered[scheme] = BackendSpec(scheme, target, extra) if isinstance(target, str) else target


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    from importlib.metadata import entry_points

    found = {}
    for ep in entry_points(group="vecbridge.backends"):
        found[ep.name.lower()] = BackendSpec(ep.name.lower(), ep.value, None)
    with _lock:
        for name, spec in found.items():
            _registered.setdefault(name, spec)
        _entry_points_loaded = True


def available_schemes() -> list[str]:
    """Every scheme a URL may use now."""
    _load_entry_points()
    return sorted(set(BUILTIN_BACKENDS) | set(_registered))


def get_backend(scheme: str) -> ClientFactory:
    """The client class for ``scheme``, importing its module on first use."""
    scheme = scheme.lower()
    spec: Any = _registered.get(scheme)
    if spec is None:
        _load_entry_points()
        spec = _registered.get(scheme) or BUILTIN_BACKENDS.get(scheme)
    if spec is None:
        raise InvalidURLError(
            f"no backend for the scheme {scheme!r}; known schemes: {', '.join(available_schemes())}"
        )
    if not isinstance(spec, BackendSpec):
        return spec
    for lib in spec.requires:
        try:
            importlib.import_module(lib)
        except ImportError as exc:
            hint = spec.install_line or f"install the client library {lib!r}"
            raise BackendNotInstalledError(
                f"the {scheme!r} backend needs the Python package {lib!r}, which is not installed; run: {hint}"
            ) from exc
    module_name, _, attr = spec.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"; run: {spec.install_line}" if spec.install_line else ""
        raise BackendNotInstalledError(f"cannot import the {scheme!r} backend ({exc}){hint}") from exc
    return getattr(module, attr or "Client")
