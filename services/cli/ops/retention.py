"""Retention: what a monitor running for weeks deletes so its tables stop growing.

* ``pages``: archived pages (up to 5 MB each before gzip) older than
  ``retention_pages_days`` by ``fetched_at``.
* ``seen_links``: *finished* links first seen before ``retention_seen_links_days``. A link
  without an outcome is never pruned: it is unfinished work (:mod:`services.cli.ops.recover`).
* ``dead_letters``: replayed ones after ``retention_dead_letters_days``, never-replayed ones
  after ``retention_pending_dead_letters_days`` (:func:`services.cli.ops.dlq.prune_dead_letters`).

Deletes go in short chunks, oldest first, each its own transaction, so the writer's inserts
keep flowing. A setting of 0 keeps that table forever.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.cli.ops.dlq import prune_dead_letters
from shared.settings import Settings

logger = logging.getLogger(__name__)

#: rows per delete transaction; pages are large, links are small
PAGES_CHUNK = 200
SEEN_LINKS_CHUNK = 5000

_PRUNE_PAGES = text(
    "DELETE FROM pages WHERE url IN (SELECT url FROM pages WHERE fetched_at < :before"
    " ORDER BY fetched_at LIMIT :n FOR UPDATE SKIP LOCKED)"
)
_PRUNE_SEEN_LINKS = text(
    "DELETE FROM seen_links WHERE url IN (SELECT url FROM seen_links"
    " WHERE first_seen_at < :before AND done_at IS NOT NULL"
    " ORDER BY first_seen_at LIMIT :n FOR UPDATE SKIP LOCKED)"
)


@dataclass(frozen=True, slots=True)
class Pruned:
    """Rows deleted by one retention pass, per table, and how long it took."""

    pages: int = 0
    seen_links: int = 0
    dead_letters: int = 0
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def _chunked(
    sessions: async_sessionmaker[AsyncSession], statement: Any, before: datetime, chunk: int
) -> int:
    total = 0
    while True:
        async with sessions() as session, session.begin():
            result: Any = await session.execute(statement, {"before": before, "n": chunk})
            deleted = int(result.rowcount)
        total += deleted
        if deleted < chunk:
            return total


async def prune_pages(
    sessions: async_sessionmaker[AsyncSession], *, before: datetime, chunk: int = PAGES_CHUNK
) -> int:
    """Delete archived pages fetched before *before*; returns how many."""
    return await _chunked(sessions, _PRUNE_PAGES, before, chunk)


async def prune_seen_links(
    sessions: async_sessionmaker[AsyncSession],
    *,
    before: datetime,
    chunk: int = SEEN_LINKS_CHUNK,
) -> int:
    """Delete finished links first seen before *before* (unfinished ones stay); how many."""
    return await _chunked(sessions, _PRUNE_SEEN_LINKS, before, chunk)


def _cutoff(now: datetime, days: float) -> datetime | None:
    return now - timedelta(days=days) if days > 0 else None


async def apply_retention(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, *, now: datetime
) -> Pruned:
    """One retention pass with the ``retention_*`` settings, relative to *now*."""
    started = time.monotonic()
    pages = seen = letters = 0
    if (cut := _cutoff(now, settings.retention_pages_days)) is not None:
        pages = await prune_pages(sessions, before=cut)
    if (cut := _cutoff(now, settings.retention_seen_links_days)) is not None:
        seen = await prune_seen_links(sessions, before=cut)
    if (cut := _cutoff(now, settings.retention_dead_letters_days)) is not None:
        letters += sum(g.count for g in await prune_dead_letters(sessions, before=cut))
    if (cut := _cutoff(now, settings.retention_pending_dead_letters_days)) is not None:
        groups = await prune_dead_letters(sessions, before=cut, include_pending=True)
        letters += sum(g.count for g in groups)
    result = Pruned(pages, seen, letters, round(time.monotonic() - started, 3))
    if pages or seen or letters:
        logger.info(
            "retention: deleted pages=%s seen_links=%s dead_letters=%s in %.2fs",
            pages,
            seen,
            letters,
            result.seconds,
        )
    return result
