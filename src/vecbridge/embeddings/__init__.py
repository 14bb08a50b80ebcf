"""Text embeddings: the :class:`Embedder` protocol, the providers' registry and specs.

A spec names a provider and a model, with options as a query string::

    sentence-transformers:all-MiniLM-L6-v2?device=cpu
    sentence-transformers:/abs/path/to/model
    openai:text-embedding-3-small?dimensions=512
    openai:text-embedding-v4?base_url=https://dashscope.aliyuncs.com/compatible-mode/v1&dimensions=1024&api_key_env=DASHSCOPE_API_KEY

Providers come from the built-in table below (each naming its module and its pip
extra), then the entry-point group ``vecbridge.embedders``, then
:func:`register_embedder` (the same mechanism as the backends': :class:`vecbridge.registry.Plugins`).  A spec never holds a secret: a key is read from the
environment variable that ``api_key_env`` names, and only that name is stored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from urllib.parse import parse_qsl, quote

import numpy as np

from ..errors import EmbeddingMismatchError, InvalidURLError
from ..options import Option, parse_options
from ..registry import BackendSpec, Plugins
from ..url import SECRET_OPTIONS

__all__ = [
    "BUILTIN_EMBEDDERS",
    "PROVIDERS",
    "Embedder",
    "EmbedderSpec",
    "check_same",
    "get_embedder",
    "parse_spec",
    "register_embedder",
]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors.

    ``spec`` is the text that rebuilds an equal embedder (stored with a collection; never a
    secret); ``dimension`` the length of its vectors.
    """

    spec: str
    dimension: int

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """float32 array of shape ``(len(texts), dimension)``, in the order of ``texts``."""

    def embed_query(self, text: str) -> np.ndarray:
        """float32 array of shape ``(dimension,)``."""


@dataclass(frozen=True)
class EmbedderSpec:
    """A parsed spec: provider, model, and the options as written (strings)."""

    provider: str
    model: str
    options: Mapping[str, str]

    def render(self) -> str:
        text = f"{self.provider}:{self.model}"
        if self.options:
            text += "?" + "&".join(f"{quote(k, safe='')}={quote(str(v), safe='/:')}"
                                   for k, v in sorted(self.options.items()))
        return text


#: Built-in providers: name, class, pip extra, the library it needs.
PROVIDERS = Plugins("embedding provider", "vecbridge.embedders", [
    BackendSpec("openai", "vecbridge.embeddings.openai:OpenAIEmbedder", "openai", ("openai",)),
    BackendSpec("sentence-transformers", "vecbridge.embeddings.local:SentenceTransformerEmbedder",
                "sentence-transformers", ("sentence_transformers",)),
])
BUILTIN_EMBEDDERS = PROVIDERS.builtin
Factory = Callable[..., Embedder]


def register_embedder(name: str, target: str | Factory, extra: str | None = None) -> None:
    """Register a provider: a class (or factory) taking ``(model, **options)``, or its import path."""
    PROVIDERS.register(name, target, extra)


def providers() -> list[str]:
    return PROVIDERS.names()


def parse_spec(text: str) -> EmbedderSpec:
    """``PROVIDER:MODEL[?options]`` -> :class:`EmbedderSpec`; a secret in it is refused."""
    if not isinstance(text, str) or ":" not in text:
        raise InvalidURLError(f"an embedding spec is 'PROVIDER:MODEL[?options]', such as "
                              f"'sentence-transformers:all-MiniLM-L6-v2', not {text!r}")
    provider, _, rest = text.partition(":")
    model, _, query = rest.partition("?")
    provider = provider.strip().lower()
    if not provider or not model:
        raise InvalidURLError(f"the embedding spec {text!r} names no {'provider' if not provider else 'model'}")
    options = dict(parse_qsl(query, keep_blank_values=True))
    secret = sorted(k for k in options if k.lower() in SECRET_OPTIONS)
    if secret:
        raise InvalidURLError(f"an embedding spec is stored with the collection and never holds a secret; "
                              f"remove {', '.join(secret)} and name the environment variable that holds the key "
                              "with api_key_env=NAME")
    return EmbedderSpec(provider, model, options)


def get_embedder(spec: str | Embedder) -> Embedder:
    """The embedder for a spec (or the object itself when it is one)."""
    if not isinstance(spec, str):
        if not isinstance(spec, Embedder):
            raise TypeError(f"embedding= takes a spec such as 'sentence-transformers:all-MiniLM-L6-v2' or an object "
                            f"with spec, dimension, embed_documents and embed_query; got {type(spec).__name__}")
        return spec
    parsed = parse_spec(spec)
    return PROVIDERS.get(parsed.provider)(parsed.model, **parsed.options)  # type: ignore[no-any-return]


def provider_options(declared: Sequence[Option], given: Mapping[str, Any], provider: str) -> dict[str, Any]:
    """A provider's options, converted and checked like a backend's."""
    return parse_options(declared, given, backend=f"{provider} embedding", local=True)


def stored(embedder: Embedder) -> dict[str, Any]:
    """What a collection keeps of its embedder: the spec and the dimension."""
    return {"spec": str(embedder.spec), "dimension": int(embedder.dimension)}


def check_same(kept: Mapping[str, Any], embedder: Embedder, collection: str) -> None:
    """Refuse ``embedder`` for a collection whose vectors another model (or dimension) made."""
    spec, dim = str(kept.get("spec")), int(kept.get("dimension") or 0)
    if _identity(spec) != _identity(embedder.spec) or dim != int(embedder.dimension):
        raise EmbeddingMismatchError(
            f"collection {collection!r} holds vectors made by {spec!r} ({dim} dimensions); the embedder given is "
            f"{embedder.spec!r} ({embedder.dimension} dimensions): queries would compare vectors of different "
            "models. Open it without embedding= (its own embedder is rebuilt), or migrate it with reembed=SPEC")


#: Options that change how texts are sent or run, not which vectors come out.
_NEUTRAL = frozenset({"batch_size", "device", "api_key_env", "timeout", "max_retries", "base_url"})


def _identity(spec: str) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    try:
        p = parse_spec(spec)
    except InvalidURLError:
        return (spec, "", ())
    return (p.provider, p.model, tuple(sorted((k, v) for k, v in p.options.items() if k not in _NEUTRAL)))
