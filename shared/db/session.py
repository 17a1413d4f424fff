"""Engine and session factories. Created by services in their start hook, never at import."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.db.errors import db_error_kind, is_transient_db_error
from shared.errors import TransientError

T = TypeVar("T")

logger = logging.getLogger(__name__)

#: how long closing a pool may take when its worker stops (milliseconds normally)
DISPOSE_TIMEOUT_S = 5.0

DEFAULT_POOL_SIZE = 5


def create_engine(
    url: str, *, pool_size: int = DEFAULT_POOL_SIZE, echo: bool = False
) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,  # survives a PostgreSQL restart without a crash loop
        echo=echo,
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def open_sessions(
    url: str, *, pool_size: int = DEFAULT_POOL_SIZE
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory on a new engine for *url*, disposed on exit: the database resource
    of one agent, opened when the agent starts and closed when the worker stops."""
    engine = create_engine(url, pool_size=pool_size)
    try:
        yield session_factory(engine)
    finally:
        await dispose(engine)


async def dispose(engine: AsyncEngine, *, within_s: float = DISPOSE_TIMEOUT_S) -> None:
    """Close *engine*'s pool, also from a task that is being cancelled (a stopping worker).

    faust stops a worker by cancelling its agents, more than once; a cancellation that lands
    while asyncpg says goodbye to the server cut the close short and SQLAlchemy logged it as an
    ERROR with a CancelledError traceback on every normal stop. The close runs in its own task,
    shielded: a cancellation waits for it (at most *within_s*) and is re-raised afterwards.
    """
    closing = asyncio.ensure_future(engine.dispose())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    cancelled = False
    while not closing.done():
        left = deadline - loop.time()
        if left <= 0:
            logger.warning("database pool did not close within %.0fs; leaving it", within_s)
            closing.cancel()
            break
        try:
            await asyncio.wait_for(asyncio.shield(closing), timeout=left)
        except asyncio.CancelledError:
            cancelled = True
        except TimeoutError:
            continue
    if closing.done() and not closing.cancelled() and closing.exception() is not None:
        logger.warning("closing the database pool failed: %s", closing.exception())
    if cancelled:
        raise asyncio.CancelledError


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under *session*, inside the session's open transaction.

    SQLAlchemy's asyncpg adapter sends BEGIN lazily, with its own first statement. A
    statement sent straight to asyncpg before that would run and commit on its own, so one
    statement goes through SQLAlchemy first (a no-op once the transaction has begun).
    """
    connection = await session.connection()
    await connection.exec_driver_sql("SELECT 1")
    raw = await connection.get_raw_connection()
    return raw.driver_connection


async def in_transaction(
    sessions: async_sessionmaker[AsyncSession],
    work: Callable[[AsyncSession], Awaitable[T]],
) -> T:
    """Run *work* in one transaction of a new session and return its result; a database
    outage (:func:`shared.db.errors.is_transient_db_error`) is raised as ``TransientError``
    (retried by ``shared.retry.until_done``), anything else as the database raised it."""
    try:
        async with sessions() as session, session.begin():
            return await work(session)
    except TransientError:
        raise
    except Exception as exc:
        if is_transient_db_error(exc):
            # shared.retry.until_done retries TransientError with backoff
            raise TransientError(f"database unavailable: {exc}", kind=db_error_kind(exc)) from exc
        raise
