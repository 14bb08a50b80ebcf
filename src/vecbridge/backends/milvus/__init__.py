"""The Milvus backend: a Milvus server (2.3 or later) or Milvus Lite, through pymilvus."""

from .client import MilvusClient
from .collection import MilvusCollection

__all__ = ["MilvusClient", "MilvusCollection"]
