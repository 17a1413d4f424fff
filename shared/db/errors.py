"""The one classifier of database errors: is it an outage (retry) or about the data (dead-letter)?

Used by every stage's retry loop (:func:`shared.retry.until_done`), the writer's transactions
and the CLI's "cannot reach the database" line.
"""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

#: SQLSTATE classes that mean "the database is away or busy", worth retrying: connection
#: exceptions, transaction rollback (deadlock, serialization), insufficient resources,
#: operator intervention (shutdown, recovery). Anything else is about the data.
TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57")


#: Exceptions that mean "the database (or the network to it) is away", whatever the statement.
UNREACHABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    asyncpg.exceptions.InterfaceError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
)


def sqlstate(exc: BaseException) -> str | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None)
        if isinstance(state, str):
            return state
        current = getattr(current, "orig", None) or current.__cause__
    return None


def db_error_kind(exc: BaseException) -> str:
    """``db_<SQLSTATE>`` for an error PostgreSQL raised (``db_22021``), else ``bug_<Class>``."""
    state = sqlstate(exc)
    return f"db_{state}" if state else f"bug_{type(exc).__name__}"


def is_unreachable(exc: BaseException) -> bool:
    """True when *exc* says the database cannot be reached (connection refused, dropped or
    invalidated), as raised by SQLAlchemy or by asyncpg directly."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, UNREACHABLE_EXCEPTIONS)


def is_transient_db_error(exc: BaseException) -> bool:
    """True for outages worth retrying: unreachable (see :func:`is_unreachable`), or a
    SQLSTATE in :data:`TRANSIENT_SQLSTATE_CLASSES` (deadlock, shutdown, too many clients).
    False for anything about the data (constraint, encoding, trigger): dead-letter those."""
    if is_unreachable(exc):
        return True
    state = sqlstate(exc)
    return state is not None and state[:2] in TRANSIENT_SQLSTATE_CLASSES
