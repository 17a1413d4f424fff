"""Retry a unit of work through transient outages (DB restarts, broker hiccups)."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from shared.db.errors import is_transient_db_error
from shared.errors import TransientError

logger = logging.getLogger(__name__)

T = TypeVar("T")

INITIAL_DELAY_S = 0.5
MAX_DELAY_S = 30.0


def is_transient(exc: BaseException) -> bool:
    """True when retrying can help: a ``TransientError`` (mapped at a boundary), or a database
    or network outage as classified by :mod:`shared.db.errors` (the one classifier)."""
    return isinstance(exc, TransientError) or is_transient_db_error(exc)


async def until_done(
    work: Callable[[], Awaitable[T]], *, what: str, max_delay: float = MAX_DELAY_S
) -> T:
    """Run *work* until it succeeds or raises a non-transient error.

    Transient failures back off exponentially (capped, with jitter) forever: a stage whose
    database is down waits for it instead of dropping or dead-lettering good messages.
    """
    delay = INITIAL_DELAY_S
    attempt = 1
    while True:
        try:
            return await work()
        except Exception as exc:
            if not is_transient(exc):
                raise
            logger.warning(
                "%s failed (attempt %s, %s: %s); retrying in %.1fs",
                what,
                attempt,
                type(exc).__name__,
                exc,
                delay,
            )
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, max_delay)
            attempt += 1


R = TypeVar("R")


async def isolate_batch(
    items: list[T],
    work: Callable[[list[T]], Awaitable[R]],
    *,
    what: str,
) -> tuple[list[R], list[tuple[T, Exception]]]:
    """``work(items)`` through outages (:func:`until_done`); if it fails for a reason that is
    not an outage (a value the database refuses, a constraint), ``work([item])`` per item, so
    one bad item costs itself only. Returns the results (one per successful call) and
    ``(item, error)`` per item that failed alone: the caller records it against that item
    (a dead letter, a status) and never against its batch neighbours."""
    try:
        return [await until_done(partial(work, items), what=what)], []
    except Exception as exc:
        if len(items) <= 1:
            return [], [(item, exc) for item in items]
        logger.warning(
            "%s: batch of %s failed (%s: %s); retrying item by item",
            what,
            len(items),
            type(exc).__name__,
            exc,
        )
    results: list[R] = []
    failed: list[tuple[T, Exception]] = []
    for item in items:
        try:
            results.append(await until_done(partial(work, [item]), what=what))
        except Exception as exc:
            failed.append((item, exc))
    return results, failed


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date, RFC 9110 10.2.3);
    None if absent or unreadable. Used by page/feed fetching and webhook delivery."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
