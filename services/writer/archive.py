"""The page archive: each ``news.pages.v1`` record gzip-compressed in the ``pages`` table, so
``newsflow replay --from pages`` can re-parse without refetching."""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.session import driver_connection, in_transaction
from shared.messages import ContractError, Page

logger = logging.getLogger(__name__)


#: gzip level for archived pages: level 6 is within ~3% of level 9 on HTML at half the CPU.
PAGE_GZIP_LEVEL = 6


async def store_pages(session: AsyncSession, pages: list[tuple[bytes, Page]]) -> int:
    """Archive fetched pages (gzip of the exact ``news.pages.v1`` record) for replay.

    *pages* are ``(raw record, decoded page)``. The newest fetch of a URL wins; a redelivery
    or an older fetch changes nothing. Returns how many rows were written.
    """
    latest: dict[str, tuple[bytes, Page]] = {}
    for raw, page in pages:
        current = latest.get(page.url)
        if current is None or page.fetched_at >= current[1].fetched_at:
            latest[page.url] = (raw, page)
    if not latest:
        return 0
    urls = sorted(latest)
    conn = await driver_connection(session)
    rows = await conn.fetch(
        "INSERT INTO pages (url, final_url, host, payload_gz, fetched_at) "
        "SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], "
        "$5::timestamptz[]) ORDER BY 1 "
        "ON CONFLICT (url) DO UPDATE SET final_url = EXCLUDED.final_url, "
        "host = EXCLUDED.host, payload_gz = EXCLUDED.payload_gz, fetched_at = EXCLUDED.fetched_at "
        "WHERE EXCLUDED.fetched_at > pages.fetched_at RETURNING url",
        urls,
        [latest[u][1].final_url for u in urls],
        [latest[u][1].host for u in urls],
        [gzip.compress(latest[u][0], compresslevel=PAGE_GZIP_LEVEL) for u in urls],
        [latest[u][1].fetched_at for u in urls],
    )
    return len(rows)


async def write_pages(
    sessions: async_sessionmaker[AsyncSession], pages: list[tuple[bytes, Page]]
) -> int:
    return await in_transaction(sessions, lambda session: store_pages(session, pages))


async def archive_events(
    sessions: async_sessionmaker[AsyncSession], events: Sequence[Any], *, topic: str
) -> int:
    """Archive a batch of ``news.pages.v1`` events (retrying outages forever). A record that
    is not a valid page is skipped: the parser dead-letters it, archiving it adds nothing."""
    from services.writer.metrics import BATCH_RECORDS, ROWS_WRITTEN
    from services.writer.poison import isolate_rows
    from shared.db.errors import db_error_kind
    from shared.metrics import MESSAGES, STAGE_SECONDS

    batch: list[tuple[bytes, Page]] = []
    for event in events:
        raw = event.value if isinstance(event.value, bytes) else b""
        try:
            batch.append((raw, Page.from_bytes(raw)))
        except ContractError:
            MESSAGES.labels("archive", "skipped", "invalid_message").inc()
    started = time.perf_counter()
    written, refused = await isolate_rows(
        batch, write_all=partial(write_pages, sessions), what="page archive"
    )
    for (_raw, page), exc in refused:
        # Only the archive copy is lost (the parser reads the page from the topic); the
        # page's fetch is recorded in its link's outcome as usual.
        kind = db_error_kind(exc)
        logger.error("page not archived url=%s kind=%s detail=%s", page.url, kind, exc)
        MESSAGES.labels("archive", "rejected", kind).inc()
    STAGE_SECONDS.labels("archive").observe(time.perf_counter() - started)
    BATCH_RECORDS.labels(topic).observe(len(events))
    MESSAGES.labels("archive", "ok", "-").inc(written)
    ROWS_WRITTEN.labels("pages").inc(written)
    return written
