"""Re-drive unfinished work from PostgreSQL after the broker lost records (``newsflow recover``).

PostgreSQL is the source of truth; the topics only carry work in flight. What "unfinished"
means, stage by stage:

* **feed polls**: a poll's links and the feed's new state commit in one transaction, after
  the links were confirmed by the broker. A poll that never committed leaves its feed due
  (its lease expires): the next poll finds the same items again. Nothing to re-drive.
* **links** (``seen_links``): a row is inserted when a link is first sent, and the writer sets
  ``outcome``/``done_at`` in the transaction that stores the article (or its duplicate mark,
  or its dead letter). A link without ``done_at`` is therefore *unfinished*: somewhere between
  ``news.links.v1`` and the writer's commit. Because ``seen_links`` remembers its URL, no poll
  will ever send it again: it must be re-driven.
* **pages**: the writer archives every fetched page (``pages``, keyed by the link URL) as soon
  as it is fetched. An unfinished link whose page is archived is re-driven from the page onto
  ``news.pages.v1`` (parse, enrich, store; no refetch, which spares the site); otherwise the
  link itself goes back onto ``news.links.v1``.
* **articles and entities** are written only by the writer, together with the link's outcome,
  so there is no "stored but not finished" state to repair.
* **alerts**: the writer confirms a stored article on ``news.stored.v1`` after its commit, and
  the alerter records a scan (``alert_scans``) when it has matched it. A stored article whose
  current enrichment has no scan lost its confirmation with the broker's records (its link is
  done, so the rules above never see it): it is confirmed again (``action="unchanged"``).
  Alerts are idempotent on ``(watch_id, article_id)``, so a second match creates nothing.
  The same holds for a stored article the storyteller has put in no story
  (``story_articles``): its assignment is idempotent on the article id.

Nothing is stored twice: the writer upserts on ``articles.canonical_url`` and the parser's
duplicate detection resolves a redelivered article exactly as the first time (an original
never becomes a duplicate of itself). Re-driving a link that is still in flight only costs a
second pass through the stages. ``seen_links.entry`` keeps what the parser takes from the
feed entry (title, published date, authors, guid; not the summary) until the link's outcome,
so a re-sent link carries it again (links recorded before migration ``0006`` carry an empty
entry: the parser then relies on the page's own metadata). The partial index
``ix_seen_links_unfinished`` holds exactly the links without an outcome, in the order read.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.cli.ops.replay import page_record
from services.cli.ops.sink import Headers, Sink
from shared.messages import FeedEntry, Link, StoredArticle
from shared.topology import LINKS, PAGES, STORED

logger = logging.getLogger(__name__)

#: Unfinished links read and confirmed per round trip (a page is up to ~1 MB gzipped).
CHUNK = 200
REDRIVE_HEADER = "newsflow-redrive"

_UNFINISHED = text(
    "SELECT s.url, s.feed_id, s.first_seen_at, s.entry, f.url AS feed_url, p.host AS page_host,"
    " p.payload_gz"
    " FROM seen_links s"
    " LEFT JOIN feeds f ON f.id = s.feed_id"
    " LEFT JOIN pages p ON p.url = s.url"
    " WHERE s.done_at IS NULL AND s.first_seen_at < :before"
    " AND (s.first_seen_at, s.url) > (:after_t, :after_url)"
    " ORDER BY s.first_seen_at, s.url LIMIT :n"
)
_COUNT = text(
    "SELECT count(*) AS links, count(p.url) AS pages, min(s.first_seen_at) AS oldest"
    " FROM seen_links s LEFT JOIN pages p ON p.url = s.url"
    " WHERE s.done_at IS NULL AND s.first_seen_at < :before"
)
#: stored articles the alerter has not matched in their current enrichment (see
#: ``services.alerter.store.unscanned_count``), oldest first, keyset-paged on the id; only
#: those news.stored.v1 would still hold (its retention), so a database that predates the
#: alerter does not turn its whole history into alerts at the first recovery
#: ... or that the storyteller has not put in a story: both read news.stored.v1, and
#: `run --once` waits for both
_UNSCANNED_WHERE = (
    " FROM articles a LEFT JOIN alert_scans s ON s.article_id = a.id"
    " WHERE a.updated_at < :before AND a.updated_at >= :since AND (s.article_id IS NULL OR"
    " (a.enriched_at IS NOT NULL AND (s.enriched_at IS NULL OR s.enriched_at < a.enriched_at))"
    " OR NOT EXISTS (SELECT 1 FROM story_articles sa WHERE sa.article_id = a.id))"
)
_UNSCANNED = text(
    "SELECT a.id, a.canonical_url, a.enriched_at, a.stored_at, a.updated_at"
    + _UNSCANNED_WHERE
    + " AND a.id > :after ORDER BY a.id LIMIT :n"
)
_COUNT_UNSCANNED = text("SELECT count(*)" + _UNSCANNED_WHERE)
_EPOCH = datetime.fromisoformat("1970-01-01T00:00:00+00:00")


@dataclass(frozen=True, slots=True)
class Redrive:
    """What a re-drive sent (or, with ``dry_run``, would send)."""

    links: int  # re-sent to news.links.v1 (fetched again)
    pages: int  # re-sent from the page archive to news.pages.v1 (parsed again)
    oldest: datetime | None  # first_seen_at of the oldest unfinished link
    dry_run: bool = False
    articles: int = 0  # stored but never matched by the alerter: confirmed again on news.stored.v1

    @property
    def total(self) -> int:
        return self.links + self.pages + self.articles

    def to_json(self) -> dict[str, Any]:
        oldest = self.oldest.isoformat() if self.oldest else None
        return {**asdict(self), "oldest": oldest, "total": self.total}


def _link(row: Any) -> Link:
    from services.fetcher.urls import host_of

    return Link(
        url=row.url,
        host=host_of(row.url),
        feed_id=row.feed_id,
        feed_url=row.feed_url,
        entry=FeedEntry.model_validate(row.entry or {}),
        discovered_at=row.first_seen_at,
    )


async def redrive(
    sessions: async_sessionmaker[AsyncSession],
    sink: Sink,
    *,
    before: datetime,
    prefix: str = "",
    dry_run: bool = False,
    chunk: int = CHUNK,
) -> Redrive:
    """Send every link first seen before *before* that has no outcome yet, oldest first.

    Links with an archived page go to ``prefix + news.pages.v1`` (the archived record, byte
    for byte), the others to ``prefix + news.links.v1``. Each chunk is confirmed by the broker
    before the next is read. Raises what the broker or the database raised; what was
    confirmed before stays sent, and running it again is harmless.
    """
    if dry_run:
        async with sessions() as session:
            row = (await session.execute(_COUNT, {"before": before})).one()
            articles = (
                await session.execute(_COUNT_UNSCANNED, _unscanned_window(before))
            ).scalar_one()
        return Redrive(
            row.links - row.pages, row.pages, row.oldest, dry_run=True, articles=int(articles)
        )
    links = pages = 0
    oldest: datetime | None = None
    cursor: tuple[datetime, str] = (_EPOCH, "")
    headers: dict[str, Headers] = {
        "links": [(REDRIVE_HEADER, b"links")],
        "pages": [(REDRIVE_HEADER, b"pages")],
    }
    while True:
        async with sessions() as session:
            rows = (
                await session.execute(
                    _UNFINISHED,
                    {"before": before, "after_t": cursor[0], "after_url": cursor[1], "n": chunk},
                )
            ).all()
        if not rows:
            break
        for row in rows:
            oldest = oldest or row.first_seen_at
            if row.payload_gz is not None:
                await sink.send(
                    prefix + PAGES.name,
                    key=row.page_host.encode(),
                    value=page_record(row.payload_gz),
                    headers=headers["pages"],
                )
                pages += 1
            else:
                link = _link(row)
                await sink.send(
                    prefix + LINKS.name,
                    key=link.host.encode(),
                    value=link.to_bytes(),
                    headers=headers["links"],
                )
                links += 1
        await sink.flush()
        cursor = (rows[-1].first_seen_at, rows[-1].url)
        if len(rows) < chunk:
            break
    articles = await _reconfirm_unscanned(sessions, sink, before=before, prefix=prefix, chunk=chunk)
    if links or pages or articles:
        logger.info(
            "re-drove unfinished work: links=%s pages=%s articles=%s oldest=%s",
            links,
            pages,
            articles,
            oldest,
        )
    return Redrive(links, pages, oldest, articles=articles)


def _unscanned_window(before: datetime) -> dict[str, datetime]:
    return {"before": before, "since": before - timedelta(milliseconds=STORED.retention_ms)}


async def _reconfirm_unscanned(
    sessions: async_sessionmaker[AsyncSession],
    sink: Sink,
    *,
    before: datetime,
    prefix: str,
    chunk: int,
) -> int:
    """Confirm again on ``news.stored.v1`` every article updated before *before* that the
    alerter has not matched; how many. Each chunk is confirmed by the broker."""
    sent = 0
    after = 0
    headers: Headers = [(REDRIVE_HEADER, b"stored")]
    while True:
        async with sessions() as session:
            rows = (
                await session.execute(
                    _UNSCANNED, {**_unscanned_window(before), "after": after, "n": chunk}
                )
            ).all()
        for row in rows:
            record = StoredArticle(
                article_id=row.id,
                canonical_url=row.canonical_url,
                action="unchanged",
                enriched_at=row.enriched_at or row.stored_at,
                stored_at=row.stored_at,
            )
            await sink.send(
                prefix + STORED.name,
                key=row.canonical_url.encode(),
                value=record.to_bytes(),
                headers=headers,
            )
            sent += 1
        await sink.flush()
        if len(rows) < chunk:
            return sent
        after = rows[-1].id
