"""The pgvector backend: PostgreSQL with the ``vector`` extension, one table per collection.

``pgvector://user:pass@host:5432/db`` (alias ``postgresql://``) connects to a server;
``pgvector:///path`` runs an embedded PostgreSQL with pgvector on a folder
(``pip install "vecbridge[pgvector-embedded]"``).
"""

from .client import PgvectorClient
from .collection import PgvectorCollection
from .embedded import stop_embedded

__all__ = ["PgvectorClient", "PgvectorCollection", "stop_embedded"]
