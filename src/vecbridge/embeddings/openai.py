"""``openai:MODEL``: any OpenAI-compatible embeddings endpoint, through the official client.

Options: ``base_url`` (OpenAI's when absent: vLLM, Ollama, TEI, DashScope and others
serve the same ``/v1/embeddings``), ``dimensions`` (sent to models that can shorten
their vectors; checked against every answer), ``api_key_env`` (the name of the
environment variable holding the key, default ``OPENAI_API_KEY``; only the name is
stored), ``batch_size`` (texts per request, default 64: DashScope's v4 takes 10),
``timeout`` (seconds per request) and ``max_retries`` (default 5).

Retries are the official client's own: on a dropped connection, a timeout, 408, 409,
429 and 5xx, with exponential backoff that honours ``Retry-After``.  Answers are put
back in input order by their ``index``.  The key never reaches a repr, a log line, an
error message or the stored spec.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import EmbeddingError
from ..options import Option
from ..url import redact
from . import EmbedderSpec, provider_options

OPTIONS = (
    Option("base_url", doc="the endpoint, e.g. http://127.0.0.1:8000/v1 (default: OpenAI's)"),
    Option("dimensions", "int", minimum=1, doc="ask the model for vectors of this length"),
    Option("api_key_env", default="OPENAI_API_KEY", doc="the environment variable that holds the key"),
    Option("batch_size", "int", default=64, minimum=1, doc="texts per request"),
    Option("timeout", "float", default=60.0, minimum=0, doc="seconds per request"),
    Option("max_retries", "int", default=5, minimum=0, doc="retries on 429, 5xx and dropped connections"),
)


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible endpoint."""

    def __init__(self, model: str, **options: Any):
        opts = provider_options(OPTIONS, options, "openai")
        self.model = model
        self.base_url: str | None = opts["base_url"]
        self.batch_size = int(opts["batch_size"])
        self._dimensions: int | None = opts["dimensions"]
        self._env = str(opts["api_key_env"])
        kept = {k: str(v) for k, v in opts.items()
                if v is not None and k in options and k not in ("timeout", "max_retries")}
        self.spec = EmbedderSpec("openai", model, kept).render()
        key = os.environ.get(self._env)
        if not key:
            if self.base_url is None:
                raise EmbeddingError(f"the openai embedder reads its key from ${self._env}, which is not set: set it, "
                                     "or name another variable with api_key_env=NAME")
            key = "EMPTY"  # local servers (vLLM, TEI, Ollama) take any key
        from openai import OpenAI

        self._client = OpenAI(api_key=key, base_url=self.base_url, timeout=float(opts["timeout"]),
                              max_retries=int(opts["max_retries"]))
        self._key = key
        self._probe_lock = threading.Lock()
        self._probed: int | None = None

    def __repr__(self) -> str:
        return f"<OpenAIEmbedder {self.spec!r}>"

    @property
    def dimension(self) -> int:
        """The vectors' length: ``dimensions`` when given, else asked of the model once."""
        if self._dimensions is not None:
            return self._dimensions
        with self._probe_lock:
            if self._probed is None:
                self._probed = int(self._request(["dimension probe"]).shape[1])
        return self._probed

    def _fail(self, exc: Exception) -> EmbeddingError:
        import openai

        where = f"the embeddings endpoint {self.base_url or 'of OpenAI'} (model {self.model!r})"
        if isinstance(exc, openai.AuthenticationError):
            why = f"refused the key from ${self._env} (401): check the key or api_key_env"
        elif isinstance(exc, openai.PermissionDeniedError):
            why = f"does not let the key from ${self._env} use this model (403)"
        elif isinstance(exc, openai.NotFoundError):
            why = "has no such model (404): check the model name and base_url"
        elif isinstance(exc, openai.BadRequestError):
            why = f"refused the request (400): {getattr(exc, 'message', exc)}"
        elif isinstance(exc, openai.RateLimitError):
            why = "kept answering 429 (rate limit) after every retry: lower batch_size or retry later"
        elif isinstance(exc, openai.APIConnectionError):
            why = f"could not be reached after every retry ({type(exc).__name__})"
        elif isinstance(exc, openai.APIStatusError):
            why = f"answered {exc.status_code} after every retry"
        else:
            why = f"failed: {type(exc).__name__}: {exc}"
        text = redact(f"{where} {why}").replace(self._key, "***") if self._key != "EMPTY" else redact(f"{where} {why}")
        return EmbeddingError(text)

    def _request(self, texts: Sequence[str]) -> np.ndarray:
        import openai

        kwargs: dict[str, Any] = {"model": self.model, "input": list(texts), "encoding_format": "float"}
        if self._dimensions is not None:
            kwargs["dimensions"] = self._dimensions
        try:
            resp = self._client.embeddings.create(**kwargs)
        except openai.OpenAIError as exc:
            raise self._fail(exc) from exc
        data = sorted(resp.data, key=lambda d: d.index)
        if len(data) != len(texts) or [d.index for d in data] != list(range(len(texts))):
            raise EmbeddingError(f"the embeddings endpoint answered {len(data)} vectors for {len(texts)} texts "
                                 f"(model {self.model!r})")
        out = np.asarray([d.embedding for d in data], dtype=np.float32)
        want = self._dimensions if self._dimensions is not None else self._probed
        if want is not None and out.shape[1] != want:
            raise EmbeddingError(f"the model {self.model!r} answered vectors of {out.shape[1]} dimensions, not "
                                 f"{want}: it may not support dimensions={want}")
        return out

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        parts = [self._request(texts[i:i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        out = np.ascontiguousarray(np.vstack(parts), dtype=np.float32)
        if self._dimensions is None and self._probed is None:
            self._probed = int(out.shape[1])
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]
