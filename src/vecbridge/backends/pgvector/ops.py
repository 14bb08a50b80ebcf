"""Database programs: each collection hook's SQL as a generator of operations, run sync or async.

A hook of :class:`~.collection.PgvectorCollection` does not touch a connection: it is a
*program*, a generator that yields the operations it needs (:class:`Exec`, :class:`Copy`,
:class:`Many`, :class:`Each`, :class:`Setting`, :class:`Transaction`) and receives each
one's result (an exception raised by an operation is thrown into the program, which may
catch it -- a unique violation becomes a DuplicateIdError, a full shared memory a build
without parallel workers).  :func:`run_sync` runs a program on a psycopg ``Connection``,
:func:`run_async` on an ``AsyncConnection``: the SQL, its parameters, the order of the
statements and the conversion of the rows are written once, and only the I/O below
differs between the two worlds (issue 16: no second copy of any decision).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Union

import psycopg

__all__ = ["Copy", "Each", "Exec", "Many", "Op", "Program", "Setting", "Transaction", "run_async", "run_sync"]


@dataclass(frozen=True)
class Exec:
    """One statement; ``fetch``: ``all`` (the rows), ``one`` (a row or None), ``rowcount``."""

    query: Any
    params: Sequence[Any] | None = None
    fetch: str = "all"
    binary: bool = True


@dataclass(frozen=True)
class Copy:
    """``COPY … FROM STDIN`` fed with ``blocks``."""

    statement: str
    blocks: Iterable[bytes]


@dataclass(frozen=True)
class Many:
    """One statement for each parameter row (psycopg pipelines ``executemany``)."""

    query: str
    rows: Sequence[Sequence[Any]]


@dataclass(frozen=True)
class Each:
    """One statement per parameter list, pipelined when several; the rows of each."""

    query: str
    params: Sequence[Sequence[Any]]


@dataclass(frozen=True)
class Setting:
    """A session setting, sent only when the connection does not have it already."""

    name: str
    value: str


@dataclass(frozen=True)
class Transaction:
    """A program run inside a transaction (a savepoint when one is open); its result."""

    program: Program


Op = Union[Exec, Copy, Many, Each, Setting, Transaction]
Program = Generator[Op, Any, Any]


def _fetch(cur: Any, how: str) -> Any:
    if how == "all":
        return cur.fetchall()
    if how == "one":
        return cur.fetchone()
    return cur.rowcount


def _cursor(conn: psycopg.Connection) -> psycopg.Cursor:
    """The connection's binary cursor, kept with it: a new cursor would look up its adapters again."""
    cur = conn.__dict__.get("_vb_cursor")
    if cur is None:
        cur = conn.__dict__["_vb_cursor"] = conn.cursor(binary=True)
    return cur  # type: ignore[no-any-return]


def _step(prog: Program, value: Any, error: BaseException | None) -> tuple[bool, Any]:
    """Send ``value`` (or throw ``error``) into ``prog``: (done, next op or result)."""
    try:
        return False, (prog.throw(error) if error is not None else prog.send(value))
    except StopIteration as stop:
        return True, stop.value


def run_sync(conn: psycopg.Connection, prog: Program) -> Any:
    """Run ``prog`` on ``conn``; its result."""
    done, op = _step(prog, None, None)
    while not done:
        value, error = None, None
        try:
            value = _do_sync(conn, op)
        except Exception as exc:
            error = exc
        done, op = _step(prog, value, error)
    return op


def _do_sync(conn: psycopg.Connection, op: Op) -> Any:
    if isinstance(op, Exec):
        cur = _cursor(conn) if op.binary else conn.cursor()
        return _fetch(cur.execute(op.query, op.params), op.fetch)
    if isinstance(op, Each):
        if len(op.params) == 1:
            return [_cursor(conn).execute(op.query, op.params[0]).fetchall()]
        with conn.pipeline():
            curs = [conn.cursor(binary=True).execute(op.query, p) for p in op.params]
        return [c.fetchall() for c in curs]
    if isinstance(op, Setting):
        # kept per connection (in its __dict__) and sent only on change
        if conn.__dict__.get(op.name) != op.value:
            conn.execute("SELECT set_config(%s, %s, false)", (op.name, op.value))
            conn.__dict__[op.name] = op.value
        return None
    if isinstance(op, Copy):
        with conn.cursor().copy(op.statement) as cp:
            for block in op.blocks:
                cp.write(block)
        return None
    if isinstance(op, Many):
        conn.cursor().executemany(op.query, op.rows)
        return None
    if isinstance(op, Transaction):
        with conn.transaction():
            return run_sync(conn, op.program)
    raise TypeError(f"not a database operation: {op!r}")


async def run_async(conn: psycopg.AsyncConnection, prog: Program) -> Any:
    """Run ``prog`` on ``conn``; its result."""
    done, op = _step(prog, None, None)
    while not done:
        value, error = None, None
        try:
            value = await _do_async(conn, op)
        except Exception as exc:
            error = exc
        done, op = _step(prog, value, error)
    return op


async def _do_async(conn: psycopg.AsyncConnection, op: Op) -> Any:
    if isinstance(op, Exec):
        cur = conn.cursor(binary=op.binary)
        await cur.execute(op.query, op.params)
        if op.fetch == "all":
            return await cur.fetchall()
        if op.fetch == "one":
            return await cur.fetchone()
        return cur.rowcount
    if isinstance(op, Each):
        if len(op.params) == 1:
            cur = conn.cursor(binary=True)
            await cur.execute(op.query, op.params[0])
            return [await cur.fetchall()]
        async with conn.pipeline():
            curs = []
            for p in op.params:
                cur = conn.cursor(binary=True)
                await cur.execute(op.query, p)
                curs.append(cur)
        return [await c.fetchall() for c in curs]
    if isinstance(op, Setting):
        if conn.__dict__.get(op.name) != op.value:
            await conn.execute("SELECT set_config(%s, %s, false)", (op.name, op.value))
            conn.__dict__[op.name] = op.value
        return None
    if isinstance(op, Copy):
        async with conn.cursor().copy(op.statement) as cp:
            for block in op.blocks:
                await cp.write(block)
        return None
    if isinstance(op, Many):
        await conn.cursor().executemany(op.query, op.rows)
        return None
    if isinstance(op, Transaction):
        async with conn.transaction():
            return await run_async(conn, op.program)
    raise TypeError(f"not a database operation: {op!r}")
