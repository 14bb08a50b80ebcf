"""The FAISS backend: FAISS indexes with ids, metadata and documents kept in SQLite."""

from .client import FaissClient
from .collection import FaissCollection

__all__ = ["FaissClient", "FaissCollection"]
