"""``sentence-transformers:NAME_OR_ABSOLUTE_PATH``: a local sentence-transformers model.

Options: ``device`` (default ``cpu``), ``batch_size`` (default 64), ``normalize``
(default true: unit vectors, so cosine, ip and l2 rank alike).  A model is loaded once
per process (per name/path and device) and shared by every collection that uses it.
A name that is not a folder is looked up by sentence-transformers (the Hugging Face hub
or its cache); on a machine without a network, give the model's folder.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import EmbeddingError
from ..options import Option
from . import EmbedderSpec, provider_options

OPTIONS = (
    Option("device", default="cpu", doc="torch device: cpu, cuda, cuda:1, mps"),
    Option("batch_size", "int", default=64, minimum=1, doc="texts per forward pass"),
    Option("normalize", "bool", default=True, doc="unit-length vectors"),
)

_models: dict[tuple[str, str], Any] = {}
_models_lock = threading.Lock()


def _load(model: str, device: str) -> Any:
    key = (os.path.abspath(model) if os.path.isdir(model) else model, device)
    with _models_lock:
        found = _models.get(key)
        if found is None:
            from sentence_transformers import SentenceTransformer

            try:
                found = SentenceTransformer(key[0], device=device)
            except Exception as exc:  # noqa: BLE001 - a model that cannot load is the user's to fix
                where = "folder" if os.path.isdir(model) else "name"
                raise EmbeddingError(f"sentence-transformers could not load the model {where} {model!r} on "
                                     f"{device}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}; without a "
                                     "network, give the model's folder") from exc
            _models[key] = found
        return found


class SentenceTransformerEmbedder:
    """A sentence-transformers model, loaded once per process."""

    def __init__(self, model: str, **options: Any):
        opts = provider_options(OPTIONS, options, "sentence-transformers")
        self.model_name = model
        self.device = str(opts["device"])
        self.batch_size = int(opts["batch_size"])
        self.normalize = bool(opts["normalize"])
        self._model = _load(model, self.device)
        # sentence-transformers 6 renamed the method; older releases have only the first name
        get_dim = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        dim = get_dim()
        self.dimension = int(dim) if dim else int(self._encode(["x"]).shape[1])
        kept = {"normalize": "true" if self.normalize else "false"}
        if self.batch_size != 64:
            kept["batch_size"] = str(self.batch_size)
        if self.device != "cpu":
            kept["device"] = self.device
        self.spec = EmbedderSpec("sentence-transformers", model, kept).render()

    def __repr__(self) -> str:
        return f"<SentenceTransformerEmbedder {self.spec!r} dimension={self.dimension}>"

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        out = self._model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=self.normalize,
                                 convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(out, dtype=np.float32).reshape(len(texts), -1)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dimension), dtype=np.float32)
        return self._encode(texts)

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([text])[0]
