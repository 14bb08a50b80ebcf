"""The pgvector backend's error table (see :func:`vecbridge.base.native_errors`).

Why: a migration retries only :class:`~vecbridge.errors.BackendUnavailableError`.  A
server's error carries its SQLSTATE (``psycopg.errors`` has a class per code), which
decides what a retry can cure: a connection exception (class 08), the server shutting
down or starting, no free connection slot.  psycopg_pool says so by type
(``PoolTimeout``).  A failure before any server answer (a refused, reset or lost
connection, a timeout) has no SQLSTATE: libpq only gives a text, so that one case reads
the text (:func:`_libpq_failure`).  A unique violation is no row here: ``add`` turns it
into :class:`~vecbridge.errors.DuplicateIdError` where it happens.  Everything else stays
a :class:`~vecbridge.errors.BackendError`.
"""

from __future__ import annotations

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolClosed, PoolTimeout, TooManyRequests

from ...base import ErrorRule
from ...errors import BackendError, BackendUnavailableError, VecbridgeError

__all__ = ["ERRORS"]

#: SQLSTATEs a retry can cure besides class 08 (connection exception): the server shutting
#: down or restarting (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now)
#: and no free connection slot (53300 too_many_connections).
_RETRY_STATES = frozenset({"57P01", "57P02", "57P03", "53300"})
#: Texts of the server's FATAL refusals at connection time that a retry can cure.  libpq
#: gives no SQLSTATE for a refusal during the start-up (psycopg/generators.py ``_connect``
#: raises ``OperationalError("connection failed: " + PQerrorMessage)``), only the text
#: PostgreSQL wrote (src/backend/tcop/backend_startup.c, postmaster.c, postgres.c).
_TRANSIENT_FATAL = ("the database system is starting up", "the database system is shutting down",
                    "the database system is in recovery mode", "the database system is not yet accepting",
                    "the database system is not accepting", "sorry, too many clients",
                    "remaining connection slots are reserved", "terminating connection due to")
#: libpq's own texts for a connection that cannot work however often it is tried
#: (src/interfaces/libpq/fe-auth.c, fe-connect.c, fe-secure-openssl.c).
_PERMANENT_CLIENT = ("no password supplied", "invalid connection option", "invalid sslmode value",
                     "server does not support SSL", "certificate", "GSSAPI", "channel binding", "invalid URI",
                     "invalid integer value", "invalid port number")


def _libpq_failure(exc: BaseException) -> type[VecbridgeError] | None:
    """An ``OperationalError`` without SQLSTATE: libpq's text is all there is.  A refusal
    the server wrote (``FATAL:``) is retried only when it says the server is starting, stopping
    or full; libpq's own configuration errors are not retried; any other failure happened
    on the way to the server or back (refused, reset, lost, timed out), which a retry cures."""
    if getattr(exc, "sqlstate", None) is not None:
        return None
    text = str(exc)
    if "FATAL:" in text or "ERROR:" in text:
        return BackendUnavailableError if any(m in text for m in _TRANSIENT_FATAL) else None
    if any(m in text for m in _PERMANENT_CLIENT):
        return None
    return BackendUnavailableError


def _server_state(exc: BaseException) -> type[VecbridgeError] | None:
    state = getattr(exc, "sqlstate", None)
    if state is not None and (state.startswith("08") or state in _RETRY_STATES):
        return BackendUnavailableError
    return None


#: psycopg and psycopg_pool exceptions -> vecbridge errors (see :func:`vecbridge.base.classify`).
ERRORS: tuple[ErrorRule, ...] = (
    (PoolClosed, BackendError),                 # the client was closed: no retry opens it again
    (PoolTimeout, BackendUnavailableError),     # every connection busy (or none could be opened) for pool_timeout
    (TooManyRequests, BackendUnavailableError),  # the pool's queue of waiting callers is full
    (pg_errors.ConnectionTimeout, BackendUnavailableError),  # connect_timeout expired
    (psycopg.OperationalError, _server_state),
    (psycopg.OperationalError, _libpq_failure),
)
