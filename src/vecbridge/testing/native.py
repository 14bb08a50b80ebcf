"""Native collections of the standard dataset, written by each database's own client.

The suite's read tests run a second time on these (``vb_layout == "native"``): the same
records (:func:`.data.make_dataset`) written with chromadb, qdrant-client, pymilvus, psycopg
SQL or ``faiss.write_index`` into the schema a user of that database would choose, then
opened by vecbridge (``get_collection``, layout ``native``, CONTRACT §7).

What the native schema cannot hold is not hidden here: each factory returns the dataset it
*wrote* (:class:`NativeMade.expected`), derived from the standard one by the rules below and
by the entries of :data:`.gaps.NATIVE_GAPS` (each with its reason), and the tests compare
with that dataset through numpy and the reference evaluator as before.  The derivations:

- ids: a key that must be an integer (Qdrant point ids, FAISS ids) holds the record's
  position ``i``; the contract gives it back as ``str(i)`` (CONTRACT §7), so the expected
  ids are ``"0"`` … ``"119"``;
- the schemas (one per family) are written out in each factory's docstring.

A third-party backend adds its own factory with :func:`register_native`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

import vecbridge

from .data import BackendUnderTest, Dataset
from .gaps import native_written

__all__ = ["MILVUS_FIELDS", "NATIVE", "PG_COLUMNS", "NativeFamily", "NativeMade", "native_collection", "register_native",
           "release_milvus_lite"]


@dataclass
class NativeMade:
    """A native collection opened by vecbridge, and the records it holds as the contract reads them."""

    collection: Any
    expected: Dataset


#: A factory: (backend under test, metric, standard dataset, a temporary folder, an exit stack
#: for its clean-up) -> what it made.
Factory = Callable[[BackendUnderTest, str, Dataset, str, contextlib.ExitStack], NativeMade]


@dataclass(frozen=True)
class NativeFamily:
    """How to make a native collection of one backend family, and the parts of records it holds."""

    factory: Factory
    holds: frozenset[str] = frozenset({"ids", "vectors", "metadata", "documents"})


def _unique(prefix: str = "vbn") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def _chunks(n: int, size: int = 1000) -> Iterator[slice]:
    """Slices of at most ``size`` rows: the engines cap a request (Chroma's batch, gRPC's message)."""
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _positional(ds: Dataset) -> Dataset:
    """The dataset with each record's id its position as the contract gives an integer key back."""
    return replace(ds, ids=[str(i) for i in range(len(ds))])


# -- Chroma -----------------------------------------------------------------------------------
def _chroma(backend: BackendUnderTest, metric: str, ds: Dataset, tmp: str, stack: contextlib.ExitStack) -> NativeMade:
    """A chromadb collection in the metric's space (``configuration={"hnsw": {"space": …}}``),
    written by the application's own ``PersistentClient`` in a folder of its own (kept open
    while vecbridge reads: the case of issue 12), metadata and documents as Chroma holds them."""
    import chromadb


    folder = os.path.join(tmp, "chroma")
    app = chromadb.PersistentClient(path=folder)
    stack.callback(getattr(app, "close", lambda: None))
    name = _unique()
    written = native_written(backend.name, ds, metric)
    config: Any = {"hnsw": {"space": metric}}
    coll = app.create_collection(name, configuration=config, embedding_function=None)
    metadatas: Any = [m or None for m in written.metadatas]  # chromadb refuses an empty dict
    for part in _chunks(len(written), min(1000, int(app.get_max_batch_size()))):
        coll.add(ids=written.ids[part], embeddings=written.vectors[part], metadatas=metadatas[part],
                 documents=written.documents[part])
    client = stack.enter_context(vecbridge.connect(f"chroma:///{folder}"))
    return NativeMade(client.get_collection(name), written)


# -- Qdrant -----------------------------------------------------------------------------------
_QDRANT_DISTANCE = {"cosine": "Cosine", "l2": "Euclid", "ip": "Dot"}


def _qdrant(backend: BackendUnderTest, metric: str, ds: Dataset, tmp: str, stack: contextlib.ExitStack) -> NativeMade:
    """qdrant-client (local mode, a folder of its own): one unnamed vector of the metric's
    distance, integer point ids (the record's position), the metadata as plain payload keys and
    the document under the payload key ``document`` (left out where there is none)."""
    from qdrant_client import QdrantClient, models


    folder = os.path.join(tmp, "qdrant")
    name = _unique()
    written = native_written(backend.name, _positional(ds), metric)
    native = QdrantClient(path=folder)
    try:
        native.create_collection(name, vectors_config=models.VectorParams(
            size=ds.vectors.shape[1], distance=models.Distance(_QDRANT_DISTANCE[metric])))
        points = [models.PointStruct(id=i, vector=v.tolist(), payload={**m, **({"document": d} if d is not None else {})})
                  for i, (v, m, d) in enumerate(zip(written.vectors, written.metadatas, written.documents))]
        for part in _chunks(len(points)):
            native.upsert(name, points[part], wait=True)
    finally:
        native.close()  # local mode admits one client per folder
    client = stack.enter_context(vecbridge.connect(f"qdrant:///{folder}"))
    return NativeMade(client.get_collection(name), written)


# -- Milvus -----------------------------------------------------------------------------------
#: The metadata keys the Milvus native schema keeps in real (nullable) fields; the rest are dynamic.
MILVUS_FIELDS = ("year",)
#: The metadata keys the PostgreSQL native table keeps in real columns; the rest are in its jsonb.
PG_COLUMNS = ("year", "tags", "nums")

def _milvus(backend: BackendUnderTest, metric: str, ds: Dataset, tmp: str, stack: contextlib.ExitStack) -> NativeMade:
    """pymilvus on Milvus Lite (a database file of its own): a VARCHAR primary key ``id``, a
    ``vector`` field with a FLAT index of the metric, the document in a nullable VARCHAR
    ``document``, ``year`` (an int wherever it is present) as a nullable INT64 field, and
    every other key in the dynamic field, as ``MilvusClient.insert`` takes a dict per row."""
    from pymilvus import DataType, MilvusClient


    path = os.path.join(tmp, "native.db")
    name = _unique()
    written = native_written(backend.name, ds, metric)
    native = MilvusClient(path)
    try:
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=ds.vectors.shape[1])
        schema.add_field("document", DataType.VARCHAR, max_length=4096, nullable=True)
        schema.add_field("year", DataType.INT64, nullable=True)
        index = native.prepare_index_params()
        index.add_index("vector", index_type="FLAT", metric_type=metric.upper())
        native.create_collection(name, schema=schema, index_params=index)
        rows = [{"id": i, "vector": v.tolist(), "document": d, **{k: m.get(k) for k in MILVUS_FIELDS},
                 **{k: x for k, x in m.items() if k not in MILVUS_FIELDS}}
                for i, v, m, d in zip(written.ids, written.vectors, written.metadatas, written.documents)]
        for part in _chunks(len(rows)):
            native.insert(name, rows[part])
    finally:
        native.close()
    stack.callback(release_milvus_lite, path)  # after vecbridge's client has closed, before the folder goes
    client = stack.enter_context(vecbridge.connect(f"milvus:///{path}"))
    return NativeMade(client.get_collection(name), written)


def release_milvus_lite(path: str) -> None:
    """Stop Milvus Lite's in-process server of ``path``: closing the clients leaves it running
    until the process exits, and then it writes the database again into the removed folder."""
    with contextlib.suppress(ImportError):
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(path)


# -- PostgreSQL -------------------------------------------------------------------------------
_OPCLASS = {"cosine": "vector_cosine_ops", "l2": "vector_l2_ops", "ip": "vector_ip_ops"}


def pg_conninfo(url: str) -> dict[str, Any]:
    """psycopg's connection parameters for a ``pgvector://`` URL (the test's own reading of a
    server URL: host, port, user, password, database, the ``host`` option of a socket; the
    embedded server's own parameters for a folder)."""
    from vecbridge.url import URL

    u = URL.parse(url)
    if not u.host and not u.query.get("host"):  # pgvector:///folder: the embedded server on that folder
        from vecbridge.backends.pgvector.embedded import embedded_conninfo

        return dict(embedded_conninfo(u.path or ""))
    params: dict[str, Any] = {k: v for k, v in (("host", u.host), ("port", u.port), ("user", u.username),
                                                 ("password", u.password), ("dbname", (u.path or "").lstrip("/")))
                              if v not in (None, "")}
    params.update({k: v for k, v in u.query.items() if k in ("host", "port", "user", "password", "dbname", "sslmode")})
    return params


def _pgvector(backend: BackendUnderTest, metric: str, ds: Dataset, tmp: str,
              stack: contextlib.ExitStack) -> NativeMade:
    """psycopg SQL on the PostgreSQL under test (server or embedded): ``public.<name>`` with a text primary key, a
    ``vector(16)`` column with an HNSW index of the metric's operator class, a ``document``
    column, real columns for the keys of one type (``year int``, ``tags text[]``,
    ``nums bigint[]``, NULL where the record lacks the key) and a ``metadata jsonb`` with the
    other keys (those whose type varies from record to record, and the odd names)."""
    import psycopg


    name = _unique()
    written = native_written(backend.name, ds, metric)
    real = PG_COLUMNS
    conninfo = pg_conninfo(backend.url)
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute(f"CREATE TABLE public.{name} (id text PRIMARY KEY, embedding vector({ds.vectors.shape[1]}) "
                     "NOT NULL, document text, year int, tags text[], nums bigint[], metadata jsonb)")
        conn.execute(f"CREATE INDEX ON public.{name} USING hnsw (embedding {_OPCLASS[metric]})")
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO public.{name} VALUES (%s, %s::vector, %s, %s, %s, %s, %s::jsonb)",
                [(i, str(v.tolist()), d, m.get("year"), m.get("tags"), m.get("nums"),
                  json.dumps({k: x for k, x in m.items() if k not in real}))
                 for i, v, m, d in zip(written.ids, written.vectors, written.metadatas, written.documents)])

    def drop() -> None:
        with psycopg.connect(**conninfo, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS public.{name}")

    stack.callback(drop)
    client = stack.enter_context(vecbridge.connect(backend.url))
    return NativeMade(client.get_collection(f"public.{name}"), written)


# -- FAISS ------------------------------------------------------------------------------------
def _faiss(backend: BackendUnderTest, metric: str, ds: Dataset, tmp: str, stack: contextlib.ExitStack) -> NativeMade:
    """``faiss.write_index`` of a flat index (``IndexFlatL2``; ``IndexFlatIP`` for ip, and for
    cosine of the normalised vectors, opened with ``?metric=cosine`` since nothing in the file
    says cosine); ids are positions; a FAISS file holds no metadata and no documents."""
    import faiss


    written = native_written(backend.name, _positional(ds), metric)
    vectors = np.ascontiguousarray(written.vectors, dtype=np.float32)
    index = faiss.IndexFlatL2(vectors.shape[1]) if metric == "l2" else faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    path = os.path.join(tmp, f"{metric}.faiss")
    faiss.write_index(index, path)
    client = stack.enter_context(vecbridge.connect(f"faiss:///{tmp}" + ("?metric=cosine" if metric == "cosine" else "")))
    return NativeMade(client.get_collection(os.path.basename(path)), written)


#: The native collection of each built-in family; see :func:`register_native`.
NATIVE: dict[str, NativeFamily] = {
    "chroma": NativeFamily(_chroma),
    "qdrant": NativeFamily(_qdrant),
    "milvus": NativeFamily(_milvus),
    "pgvector": NativeFamily(_pgvector),
    "faiss": NativeFamily(_faiss, frozenset({"ids", "vectors"})),
}


def register_native(family: str, factory: Factory, holds: frozenset[str] | None = None) -> None:
    """Add (or replace) the native-collection factory of ``family`` (a third-party backend)."""
    NATIVE[family] = NativeFamily(factory, holds if holds is not None else NativeFamily(factory).holds)


@contextlib.contextmanager
def native_collection(backend: BackendUnderTest, metric: str, ds: Dataset) -> Iterator[NativeMade]:
    """A native collection of ``ds`` for ``backend``'s family, removed afterwards."""
    family = NATIVE[backend.family]
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="vbnative-"))
        yield family.factory(backend, metric, ds, tmp, stack)
