"""``layout=langchain`` and ``layout=llamaindex`` on PostgreSQL: the official packages' tables.

What each layout is comes from :mod:`vecbridge.layouts` (the one table); this module turns it
into SQL, with :class:`.native.NativeCollection` doing the reading, filtering and writing:

LangChain (langchain-postgres 0.0.19, ``PGVector``)
    Two tables shared by every LangChain collection of the database:
    ``langchain_pg_collection (uuid, name, cmetadata json)`` and ``langchain_pg_embedding
    (id varchar PRIMARY KEY, collection_id uuid, embedding vector, document varchar,
    cmetadata jsonb)``.  Each collection row is a vecbridge collection of its own, named by
    its ``name``; the table pair itself is not listed.  Reads select from the collection's
    rows only (``_t`` is a subquery on ``collection_id``), deletes keep to them (``_scope``),
    inserts carry the ``collection_id``.  ``id`` is the primary key of the whole table, not of
    one collection: an id that another LangChain collection holds is refused
    (InvalidRecordError) -- LangChain's own ``add_texts`` would silently update that other
    collection's row, leaving it in the other collection.  LangChain makes its ``embedding``
    column without a dimension and no ANN index, and queries with the distance strategy the
    application passes (cosine by default), so a collection vecbridge creates keeps its
    dimension and metric in its collection row's ``cmetadata`` (``{"vecbridge": {...}}``,
    which LangChain never reads); a collection LangChain made has its dimension read from
    one of its rows and its metric from ``?metric=``, else cosine.
LlamaIndex (llama-index-vector-stores-postgres 0.9, ``PGVectorStore``)
    One table per store, ``data_<table_name>`` (LlamaIndex lower-cases the name) with
    ``id bigserial``, ``text varchar NOT NULL``, ``metadata_ json``, ``node_id varchar``,
    ``embedding vector(n)``; listed as ``<table_name>``.  The record id is ``node_id``, which
    has no unique index: an upsert deletes the node's rows and inserts it again in one
    transaction, and adds and upserts take a lock that writers take in turn (SHARE ROW
    EXCLUSIVE: readers go on), so that two writers of one node cannot both insert it.  A
    record without a text is stored with ``""`` (the column is NOT NULL), counted.
    LlamaIndex always queries by cosine distance; a store vecbridge creates gets the ANN
    index of its index spec (HNSW by default) with the operator class of its metric, so
    vecbridge reads the metric back.

Every write goes through the layout's ``encode`` (counted in ``collection.conversions``),
every read through its ``decode``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from ...base import RawHit
from ...errors import CollectionExistsError, DuplicateIdError, InvalidRecordError, UnsupportedFeatureError
from ...layouts import FrameworkLayout, framework_layout
from ...mapping import Conversions, NativeSchema, decide
from ...types import Record
from ...validation import Batch
from . import created, ddl
from .native import COLUMNS, COMMENT, NativeCollection, Relation, describe
from .ops import Exec, Program

if TYPE_CHECKING:
    from .client import PgvectorClient

__all__ = ["FrameworkCollection", "LangchainCollection", "LlamaIndexCollection", "create", "drop", "exists", "find",
           "listing"]

LC_COLLECTIONS, LC_EMBEDDINGS = "langchain_pg_collection", "langchain_pg_embedding"
LI_PREFIX = "data_"
LI_COLUMNS = frozenset({"text", "metadata_", "node_id", "embedding"})
#: serialises the making of LangChain's tables (langchain-postgres takes its own lock for the extension)
_LC_LOCK = 0x76626C63  # "vblc"
#: What each layout gives up on PostgreSQL, in the mapping's description (``vecbridge info``, the plan).
NOTES = {"langchain": (("an id is the primary key of the whole langchain_pg_embedding table: an id that another "
                        "LangChain collection holds is refused"),
                       "nested cmetadata objects read as dotted keys"),
         "llamaindex": (("node_id has no unique index: an upsert deletes the node's rows and inserts it, in one "
                         "transaction"),
                        "a record without a text is stored with an empty text (the text column is NOT NULL)")}
EMPTY_TEXT = "records without a text stored with an empty text (LlamaIndex's text column is NOT NULL)"


class FrameworkCollection(NativeCollection):
    """A collection of a framework layout: the native mapping, plus the layout's encode/decode."""

    framework: FrameworkLayout

    def _encoded(self, b: Batch, conv: Conversions | None) -> Batch:
        if b.metadatas is None and b.documents is None:
            return b
        metas: list[dict[str, Any]] | None = [] if b.metadatas is not None else None
        docs: list[str | None] | None = [] if b.documents is not None else None
        for i, id_ in enumerate(b.ids):
            doc = b.documents[i] if b.documents is not None else None
            if b.metadatas is not None:
                doc, meta = self.framework.encode(id_, doc, b.metadatas[i], conv)
                metas.append(meta)  # type: ignore[union-attr]
            if docs is not None:
                docs.append(self._text(doc, conv))
        return Batch(b.ids, b.vectors, metas, docs)

    def _text(self, doc: str | None, conv: Conversions | None) -> str | None:
        return doc

    def _p_write(self, b: Batch, replace: bool) -> Program:
        # an add/upsert writes the whole record: a LlamaIndex node even for a record without metadata
        b = Batch(b.ids, b.vectors, b.metadatas if b.metadatas is not None else [{} for _ in b.ids],
                  b.documents if b.documents is not None else [None] * len(b.ids))
        return (yield from super()._p_write(self._encoded(b, self.conversions), replace))

    def _p_update(self, b: Batch) -> Program:
        return (yield from super()._p_update(self._encoded(b, self.conversions)))

    def _vb_check_batch(self, b: Batch) -> None:
        super()._vb_check_batch(self._encoded(b, Conversions()))

    def _decode(self, doc: str | None, meta: dict[str, Any] | None) -> tuple[str | None, dict[str, Any] | None]:
        if meta is None and doc is None:
            return None, None
        doc2, meta2 = self.framework.decode(doc, meta)
        return doc2, (meta2 if meta is not None else None)

    def _to_records(self, rows: Sequence[tuple[Any, ...]]) -> list[Record]:
        out = []
        for r in super()._to_records(rows):
            doc, meta = self._decode(r.document, r.metadata)
            out.append(Record(r.id, r.vector, meta, doc))
        return out

    def _to_hits(self, rows: Sequence[tuple[Any, ...]]) -> list[RawHit]:
        out = []
        for h in super()._to_hits(rows):
            doc, meta = self._decode(h.document, h.metadata)
            out.append(h._replace(metadata=meta, document=doc))
        return out

    def _read_config(self) -> dict[str, Any] | None:
        return {"layout": self.framework.layout}


class LangchainCollection(FrameworkCollection):
    """One LangChain collection: the rows of ``langchain_pg_embedding`` with its ``collection_id``."""

    def __init__(self, client: PgvectorClient, mapping: Any, rel: Relation, name: str, collection_id: uuid.UUID):
        super().__init__(client, mapping, rel, name)
        self.framework = framework_layout("langchain", "pgvector")
        self.collection_id = collection_id
        self._scope = f"collection_id = '{collection_id}'::uuid"  # a UUID's text: nothing to escape
        self._t = f"(SELECT * FROM {self._w} WHERE {self._scope}) AS lc"
        self._extra = (("collection_id", "%s::uuid", collection_id),)
        # an id of another collection is refused before (_p_before_insert); this keeps a row that
        # another writer gave that id meanwhile out of reach
        self._on_conflict = f" WHERE {self._w}.collection_id = EXCLUDED.collection_id"

    def _sampled(self, sample: str) -> str:
        return f"{self._w}{sample} WHERE {self._scope}"

    def _p_before_insert(self, b: Batch, replace: bool) -> Program:
        rows = yield Exec(f"SELECT id, (SELECT name FROM {self._collections} WHERE uuid = e.collection_id) "
                          f"FROM {self._w} e WHERE id = ANY(%s) AND collection_id IS DISTINCT FROM %s::uuid",
                          [list(b.ids), self.collection_id])
        if rows:
            shown = ", ".join(f"{r[0]!r} (in {r[1]!r})" for r in rows[:5])
            raise InvalidRecordError(
                f"{len(rows)} id(s) belong to another LangChain collection of {self._rel.name!r}: {shown}; the id is "
                "the primary key of the whole table, shared by every collection: choose other ids; nothing was written")

    def _vb_check_batch(self, b: Batch) -> None:
        super()._vb_check_batch(b)
        self._io("check", self._p_before_insert(b, True))  # one read: ids another collection holds

    @property
    def _collections(self) -> str:
        return sql.Identifier(self._rel.schema, LC_COLLECTIONS).as_string(None).replace("%", "%%")


class LlamaIndexCollection(FrameworkCollection):
    """One LlamaIndex store: the table ``data_<name>``, its records keyed by ``node_id``."""

    def __init__(self, client: PgvectorClient, mapping: Any, rel: Relation, name: str):
        super().__init__(client, mapping, rel, name)
        self.framework = framework_layout("llamaindex", "pgvector")

    def _writable(self) -> None:
        """``node_id`` has no unique index: writes delete and insert (module docstring)."""

    def _text(self, doc: str | None, conv: Conversions | None) -> str | None:
        if doc is None:
            if conv is not None:
                conv[EMPTY_TEXT] += 1
            return ""
        return doc

    def _p_before_insert(self, b: Batch, replace: bool) -> Program:
        if self.mapping.id_field in self._rel.unique:
            return  # a unique index on node_id: ON CONFLICT does it
        yield Exec(f"LOCK TABLE {self._w} IN SHARE ROW EXCLUSIVE MODE", fetch="rowcount")
        params: list[Any] = []
        cond = self._ids_cond(list(b.ids), params)
        if replace:
            yield Exec(f"DELETE FROM {self._w} WHERE {cond}", params, "rowcount")
        else:
            rows = yield Exec(f"SELECT DISTINCT {self._key} FROM {self._w} WHERE {cond}", params)
            if rows:
                raise DuplicateIdError(self._duplicate_message([self._id_of(r[0]) for r in rows]))


# -- finding and opening ---------------------------------------------------------------------
def _options(client: PgvectorClient) -> dict[str, Any]:
    return {k: v for k, v in client.mapping_options.items() if v not in (None, "")}


def _open(client: PgvectorClient, conn: psycopg.Connection, cls: Callable[..., FrameworkCollection], layout: str,
          table: str, name: str, dimension: int | None = None, metric: str | None = None, **kw: Any
          ) -> FrameworkCollection:
    lay = framework_layout(layout, "pgvector")
    user = _options(client)
    native, rel = describe(conn, client.schema, table, "r", user)
    vec = user.get("vector_field", lay.vector_field)
    fields = tuple(dataclasses.replace(f, dimension=dimension) if f.name == vec and dimension else f
                   for f in native.fields)
    said = native.metric or metric or user.get("metric")
    native = NativeSchema(name, fields, said or lay.metric, layout=layout)
    mapping = decide(native, lay.mapping_options() | user)
    if "metadata_fields" not in user:  # collection_id, LlamaIndex's bigserial id: not metadata
        mapping = dataclasses.replace(mapping, metadata_fields=())
    guessed = () if said else (f"metric: {lay.metric}, what {lay.package} uses by default: nothing in the tables "
                               "says it (add ?metric= if the application uses another)",)
    mapping = dataclasses.replace(mapping, notes=(*lay.describe(), *NOTES[layout], *guessed))
    return cls(client, mapping, rel, name, **kw)


def _langchain_rows(conn: psycopg.Connection, schema: str, name: str | None = None) -> list[tuple[Any, ...]]:
    coll = sql.Identifier(schema, LC_COLLECTIONS)
    q = sql.SQL("SELECT uuid, name, cmetadata::jsonb FROM {}").format(coll)
    if name is not None:
        return list(conn.execute(q + sql.SQL(" WHERE name = %s"), (name,)))
    return list(conn.execute(q + sql.SQL(" ORDER BY name")))


def _open_langchain(client: PgvectorClient, conn: psycopg.Connection, row: tuple[Any, ...]) -> FrameworkCollection:
    cid, name, cmeta = row
    own = (cmeta or {}).get("vecbridge") if isinstance(cmeta, dict) else None
    own = own if isinstance(own, dict) else {}
    emb = sql.Identifier(client.schema, LC_EMBEDDINGS)
    found = conn.execute(sql.SQL("SELECT vector_dims(embedding) FROM {} WHERE collection_id = %s "
                                 "AND embedding IS NOT NULL LIMIT 1").format(emb), (cid,)).fetchone()
    dimension = int(found[0]) if found else own.get("dimension")
    return _open(client, conn, LangchainCollection, "langchain", LC_EMBEDDINGS, str(name), dimension,
                 own.get("metric"), collection_id=cid)


def _has(conn: psycopg.Connection, schema: str, table: str) -> bool:
    reg = sql.Identifier(schema, table).as_string(conn)
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (reg,)).fetchone()[0]  # type: ignore[index]


def _column_names(conn: psycopg.Connection, schema: str, table: str) -> set[str]:
    return {r[0] for r in conn.execute(COLUMNS, (sql.Identifier(schema, table).as_string(conn),))}


def find(client: PgvectorClient, conn: psycopg.Connection, name: str) -> FrameworkCollection | None:
    """The LangChain collection or LlamaIndex store ``name`` (as ``?layout=`` allows), or ``None``."""
    layout = client.mapping_options.get("layout") or None
    if layout in (None, "langchain") and _has(conn, client.schema, LC_COLLECTIONS) and \
            _has(conn, client.schema, LC_EMBEDDINGS):
        rows = _langchain_rows(conn, client.schema, name)
        if rows:
            return _open_langchain(client, conn, rows[0])
    table = LI_PREFIX + name
    if layout in (None, "llamaindex") and _has(conn, client.schema, table) and \
            LI_COLUMNS <= _column_names(conn, client.schema, table):
        return _open(client, conn, LlamaIndexCollection, "llamaindex", table, name)
    return None


def listing(client: PgvectorClient, conn: psycopg.Connection, natives: list[tuple[str, str, str]]
            ) -> tuple[list[tuple[str, str, Callable[[], Any]]], list[tuple[str, str, str]]]:
    """``(name, layout, open)`` of every framework collection of the client's schema, and the
    native relations that are none of theirs."""
    entries: list[tuple[str, str, Callable[[], Any]]] = []
    rest = []
    for schema, table, kind in natives:
        if schema == client.schema and kind in ("r", "p"):
            names = _column_names(conn, schema, table)
            if table == LC_EMBEDDINGS and "collection_id" in names and _has(conn, schema, LC_COLLECTIONS):
                for row in _langchain_rows(conn, schema):
                    entries.append((str(row[1]), "langchain", functools.partial(_open_langchain, client, conn, row)))
                continue
            if table.startswith(LI_PREFIX) and LI_COLUMNS <= names:
                name = table[len(LI_PREFIX):]
                entries.append((name, "llamaindex", functools.partial(
                    _open, client, conn, LlamaIndexCollection, "llamaindex", table, name)))
                continue
        rest.append((schema, table, kind))
    return entries, rest


def _droppable(client: PgvectorClient, conn: psycopg.Connection, name: str) -> sql.Composed | None:
    """The statement that deletes the collection ``name`` that vecbridge may delete: a LangChain
    collection (its row and its rows), a LlamaIndex store's table, a table vecbridge made in the
    native layout.  ``None`` for anything else: a table of the user's is never dropped."""
    schema = client.schema
    layout = client.mapping_options.get("layout") or None
    if layout in (None, "langchain") and _has(conn, schema, LC_COLLECTIONS) and _has(conn, schema, LC_EMBEDDINGS) \
            and _langchain_rows(conn, schema, name):
        coll, emb = sql.Identifier(schema, LC_COLLECTIONS), sql.Identifier(schema, LC_EMBEDDINGS)
        return sql.SQL("DELETE FROM {} WHERE collection_id = (SELECT uuid FROM {} WHERE name = {}); "
                       "DELETE FROM {} WHERE name = {}").format(emb, coll, sql.Literal(name), coll, sql.Literal(name))
    if layout in (None, "llamaindex") and _has(conn, schema, LI_PREFIX + name) and \
            LI_COLUMNS <= _column_names(conn, schema, LI_PREFIX + name):
        return sql.SQL("DROP TABLE {}").format(sql.Identifier(schema, LI_PREFIX + name))
    table = name.split(".", 1) if "." in name and not _has(conn, schema, name) else [schema, name]
    if len(table) == 2 and _has(conn, *table):
        comment = conn.execute(COMMENT, (sql.Identifier(*table).as_string(conn),)).fetchone()
        if comment is not None and str(comment[0] or "").startswith(created.DECIDED):
            return sql.SQL("DROP TABLE {}").format(sql.Identifier(*table))
    return None


def exists(client: PgvectorClient, conn: psycopg.Connection, name: str) -> bool:
    """Whether ``name`` is a collection of a framework layout, or a table vecbridge made in the native layout."""
    return _droppable(client, conn, name) is not None


def drop(client: PgvectorClient, conn: psycopg.Connection, name: str) -> None:
    stmt = _droppable(client, conn, name)
    if stmt is not None:
        conn.execute(stmt)


# -- creating ---------------------------------------------------------------------------------
def _langchain_ddl(schema: str, ext_schema: str) -> list[sql.Composed]:
    """What langchain-postgres's SQLAlchemy models create (``Base.metadata.create_all``)."""
    coll, emb = sql.Identifier(schema, LC_COLLECTIONS), sql.Identifier(schema, LC_EMBEDDINGS)
    return [sql.SQL("CREATE TABLE IF NOT EXISTS {} (uuid UUID NOT NULL, name VARCHAR NOT NULL, cmetadata JSON, "
                    "PRIMARY KEY (uuid), UNIQUE (name))").format(coll),
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (id VARCHAR NOT NULL, collection_id UUID, embedding {}, "
                    "document VARCHAR, cmetadata JSONB, PRIMARY KEY (id), FOREIGN KEY (collection_id) "
                    "REFERENCES {} (uuid) ON DELETE CASCADE)").format(emb, sql.Identifier(ext_schema, "vector"),
                                                                      coll),
            sql.SQL("CREATE INDEX IF NOT EXISTS ix_cmetadata_gin ON {} USING gin (cmetadata jsonb_path_ops)").format(
                emb)]


def _llamaindex_ddl(schema: str, ext_schema: str, name: str, dimension: int) -> list[sql.Composed]:
    """What llama-index-vector-stores-postgres's ``get_data_model`` creates (no hybrid search)."""
    table = sql.Identifier(schema, LI_PREFIX + name)
    return [sql.SQL("CREATE TABLE {} (id BIGSERIAL NOT NULL, text VARCHAR NOT NULL, metadata_ JSON, "
                    "node_id VARCHAR, embedding {}({}), PRIMARY KEY (id))").format(
                table, sql.Identifier(ext_schema, "vector"), sql.Literal(int(dimension))),
            sql.SQL("CREATE INDEX {} ON {} USING btree ((metadata_ ->> 'ref_doc_id'))").format(
                sql.Identifier(f"{name}_idx_1"), table)]


def create(client: PgvectorClient, layout: str, name: str, dimension: int, metric: str,
           index: dict[str, Any]) -> NativeCollection:
    """A new collection in the layout ``native``, ``langchain`` or ``llamaindex``."""
    from .native import open_native

    schema, ext = client.schema, client.ext_schema
    exists = CollectionExistsError(f"collection {name!r} exists already on pgvector ({layout} layout)")
    with client._connection() as conn, conn.transaction():
        if layout == "langchain":
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LC_LOCK,))
            for stmt in _langchain_ddl(schema, ext):
                conn.execute(stmt)
            typed = conn.execute(sql.SQL("SELECT atttypmod FROM pg_attribute WHERE attrelid = {}::regclass AND "
                                         "attname = 'embedding'").format(sql.Literal(
                                             sql.Identifier(schema, LC_EMBEDDINGS).as_string(conn)))).fetchone()
            if typed is not None and typed[0] > 0 and typed[0] != dimension:
                raise UnsupportedFeatureError(
                    f"the LangChain table {schema}.{LC_EMBEDDINGS} holds vectors of {typed[0]} dimensions (its "
                    f"embedding column is vector({typed[0]})), not {dimension}; use another ?schema= or database")
            if _langchain_rows(conn, schema, name):
                raise exists
            cid = uuid.uuid4()
            conn.execute(sql.SQL("INSERT INTO {} (uuid, name, cmetadata) VALUES (%s, %s, %s::json)").format(
                sql.Identifier(schema, LC_COLLECTIONS)),
                (cid, name, json.dumps({"vecbridge": {"dimension": dimension, "metric": metric}})))
            return _open_langchain(client, conn, _langchain_rows(conn, schema, name)[0])
        spec = ddl.resolve_index(index, dimension)
        if layout == "llamaindex":
            name = name.lower()  # as PGVectorStore does with its table_name
            table = LI_PREFIX + name
            if _has(conn, schema, table):
                raise exists
            stmts = _llamaindex_ddl(schema, ext, name, dimension)
            vec_index = ddl.vector_index_sql(sql.Identifier(schema, table), ext, metric, spec)
            for stmt in stmts + ([vec_index] if vec_index is not None else []):
                conn.execute(stmt)
            return _open(client, conn, LlamaIndexCollection, "llamaindex", table, name)
        if _has(conn, schema, name):
            raise exists
        for stmt in created.create_sql(sql.Identifier(schema, name), ext, dimension, metric, spec):
            conn.execute(stmt)
        return open_native(client, conn, schema, name, "r")

