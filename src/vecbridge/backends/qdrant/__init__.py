"""The Qdrant backend: a Qdrant server, or qdrant-client's local mode (disk or memory)."""

from .client import QdrantClient
from .collection import QdrantCollection

__all__ = ["QdrantClient", "QdrantCollection"]
