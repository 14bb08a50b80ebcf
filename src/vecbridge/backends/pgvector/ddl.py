"""Tables, indexes and the catalog: the SQL that defines a collection.

Layout, in the client's schema (``public`` unless ``?schema=`` says otherwise)::

    _vecbridge_collections (name, dimension, metric, index jsonb, created_at,
                            config jsonb)                                       -- the catalog
    "<name>" (id text COLLATE "C" PRIMARY KEY, embedding vector(d) NOT NULL,
              metadata jsonb NOT NULL, document text)                           -- one per collection

``config`` holds the collection's configuration document (an embedding spec, a layout);
catalogs made before it existed lack it until a configuration is first stored.
The table is named exactly as the collection (quoted, so case is kept); the catalog's
name starts with ``_`` and so can never be a portable collection name.  Indexes: HNSW
(default) or IVFFlat on ``embedding`` with the operator class of the metric, none for
an exact (``flat``) collection, and a GIN ``jsonb_path_ops`` index on ``metadata`` for
the containment tests filters compile to.  Identifiers go through
:class:`psycopg.sql.Identifier`; the ``vector`` type and its operator classes are
qualified with the extension's schema, so they work whatever the ``search_path``.
"""

from __future__ import annotations

import math
from typing import Any

from psycopg import sql

__all__ = [
    "CATALOG",
    "MAX_DIMENSION",
    "MAX_FIELD_BYTES",
    "MAX_INDEX_DIMENSION",
    "MAX_JSONB_BYTES",
    "OPCLASSES",
    "OPERATORS",
    "catalog_sql",
    "gin_index_sql",
    "resolve_index",
    "table_sql",
    "vector_index_sql",
]

CATALOG = "_vecbridge_collections"
#: Per metric: the distance operator (pgvector returns l2 distance, -dot, 1 - cos).
OPERATORS = {"l2": "<->", "ip": "<#>", "cosine": "<=>"}
OPCLASSES = {"l2": "vector_l2_ops", "ip": "vector_ip_ops", "cosine": "vector_cosine_ops"}
#: pgvector's limits: the vector type, and what HNSW / IVFFlat can index.
MAX_DIMENSION = 16000
MAX_INDEX_DIMENSION = 2000
#: PostgreSQL's ceilings on one value: a text field is a varlena of at most MaxAllocSize
#: (1 GB - 1) bytes, 4 of them its header; a jsonb's elements take at most 2**28 - 1 bytes
#: (JENTRY_OFFLENMASK, "total size of jsonb ... exceeds the maximum").
MAX_FIELD_BYTES = (1 << 30) - 1 - 4
MAX_JSONB_BYTES = (1 << 28) - 1
#: pgvector's own defaults, written into the catalog so that a collection keeps them.
HNSW_DEFAULTS = {"m": 16, "ef_construction": 64, "ef_search": 40}
IVF_DEFAULT_NLIST = 100


def resolve_index(spec: dict[str, Any], dimension: int) -> dict[str, Any]:
    """The complete index spec stored in the catalog (``default`` -> HNSW, or exact above 2,000-d)."""
    kind = spec["type"]
    if kind == "default":
        # HNSW cannot index more than 2,000 dimensions: the default then is an exact scan.
        kind = "hnsw" if dimension <= MAX_INDEX_DIMENSION else "flat"
        spec = {"type": kind}
    if kind == "flat":
        return {"type": "flat"}
    if kind == "hnsw":
        return {"type": "hnsw", **HNSW_DEFAULTS, **{k: v for k, v in spec.items() if k != "type"}}
    nlist = int(spec.get("nlist", IVF_DEFAULT_NLIST))
    nprobe = int(spec.get("nprobe", max(1, math.isqrt(nlist))))
    return {"type": "ivf", "nlist": nlist, "nprobe": min(nprobe, nlist)}


def catalog_sql(schema: str) -> sql.Composed:
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} (name text COLLATE \"C\" PRIMARY KEY, dimension integer NOT NULL, "
        "metric text NOT NULL, index jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), config jsonb)"
    ).format(sql.Identifier(schema, CATALOG))


def table_sql(table: sql.Identifier, ext_schema: str, dimension: int) -> sql.Composed:
    return sql.SQL(
        "CREATE TABLE {} (id text COLLATE \"C\" PRIMARY KEY, embedding {}({}) NOT NULL, "
        "metadata jsonb NOT NULL DEFAULT '{{}}'::jsonb, document text)"
    ).format(table, sql.Identifier(ext_schema, "vector"), sql.Literal(int(dimension)))


def vector_index_sql(table: sql.Identifier, ext_schema: str, metric: str, index: dict[str, Any]) -> sql.Composed | None:
    """``CREATE INDEX`` for the ANN index of ``index``, or ``None`` for an exact collection."""
    opclass = sql.Identifier(ext_schema, OPCLASSES[metric])
    if index["type"] == "hnsw":
        return sql.SQL("CREATE INDEX ON {} USING hnsw (embedding {}) WITH (m = {}, ef_construction = {})").format(
            table, opclass, sql.Literal(int(index["m"])), sql.Literal(int(index["ef_construction"])))
    if index["type"] == "ivf":
        return sql.SQL("CREATE INDEX ON {} USING ivfflat (embedding {}) WITH (lists = {})").format(
            table, opclass, sql.Literal(int(index["nlist"])))
    return None


def gin_index_sql(table: sql.Identifier) -> sql.Composed:
    return sql.SQL("CREATE INDEX ON {} USING gin (metadata jsonb_path_ops)").format(table)


#: The ANN index of a table (to drop it before a bulk load and build it again after).
FIND_VECTOR_INDEX = """
SELECT ic.relname FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_am am ON am.oid = ic.relam
JOIN pg_class tc ON tc.oid = i.indrelid
JOIN pg_namespace n ON n.oid = tc.relnamespace
WHERE n.nspname = %s AND tc.relname = %s AND am.amname IN ('hnsw', 'ivfflat')
"""
