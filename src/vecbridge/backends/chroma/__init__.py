"""The Chroma backend: a Chroma server over HTTP, or chromadb's embedded engine."""

from .client import ChromaClient
from .collection import ChromaCollection

__all__ = ["ChromaClient", "ChromaCollection"]
