"""DB-backed feed polling: claim due feeds, fetch them, dedup new links, record status.

Three phases per batch, so no database transaction is open while we wait on the network:

1. ``claim_due_feeds``: ``SELECT … FOR UPDATE SKIP LOCKED`` then push ``next_poll_at`` out by
   a lease, in one short transaction. Several fetcher workers split the due feeds; a worker
   that dies mid-poll only delays its feeds by the lease.
2. ``fetch_feed``: conditional GET + content hash + parse (no DB).
3. ``record_poll``: one transaction per batch: ``INSERT INTO seen_links … ON CONFLICT DO
   NOTHING RETURNING url`` (dedup across feeds, polls and restarts), send the new links, then
   update every feed's status columns. Links are sent before the commit: a crash in between
   re-sends them on the next poll (at-least-once) instead of losing them.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.fetcher import schedule
from services.fetcher.feeds import MAX_CHILD_SITEMAPS, FeedItem, ParsedFeed, parse_feed
from services.fetcher.fetch import HttpResult
from services.fetcher.urls import host_of, normalize_url
from shared.db.errors import is_transient_db_error
from shared.db.models import Feed, HostState, SeenLink
from shared.errors import NewsflowError, PermanentError, TransientError
from shared.messages import FeedEntry, Link, clean_optional
from shared.settings import Settings

logger = logging.getLogger(__name__)

#: Items taken from one document per poll; a first poll of a 50k-URL sitemap must not
#: flood the links topic in one transaction.
MAX_ITEMS_PER_FEED = 5000
#: Rows per multi-row INSERT (asyncpg allows 32767 bind parameters; 3 per row).
INSERT_CHUNK = 5000
MAX_ERROR_CHARS = 1000
#: Feed documents at least this big are parsed off the event loop (see parse_off_loop).
PARSE_OFFLOAD_BYTES = 128 * 1024
#: Distinct reasons quoted in a feed's status when item links are refused.
REFUSED_SHOWN = 3
FEED_ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)

#: ``(url, headers) -> HttpResult``: one guarded, polite GET (the Fetcher provides it).
Getter = Callable[[str, dict[str, str]], Awaitable[HttpResult]]
SendLinks = Callable[[list[Link]], Awaitable[None]]


@dataclass(slots=True)
class FeedState:
    """What a poll needs to know about a feed (a snapshot of its row)."""

    id: int
    url: str
    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None
    poll_interval_s: float = 900.0
    consecutive_failures: int = 0
    publish_times: list[datetime] = field(default_factory=list)
    kind: str | None = None
    title: str | None = None
    site_url: str | None = None
    items_new: int = 0
    added_at: datetime | None = None


@dataclass(slots=True)
class FeedResult:
    feed: FeedState
    outcome: str  # new | no_new | not_modified | unchanged | error | host_blocked
    status: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None
    parsed: ParsedFeed | None = None
    error: NewsflowError | None = None
    retry_after_s: float | None = None
    cache_s: float | None = None
    new_links: int = 0
    moved_to: str | None = None  # the feed answered a permanent redirect to this URL


@dataclass(slots=True)
class PollReport:
    """Totals of one ``poll_due_feeds`` call."""

    feeds: int = 0
    ok: int = 0
    failed: int = 0
    not_modified: int = 0
    unchanged: int = 0
    host_blocked: int = 0
    items_seen: int = 0
    new_links: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    def add(self, results: Sequence[FeedResult]) -> None:
        for r in results:
            self.feeds += 1
            if r.outcome == "error":
                self.failed += 1
                self.errors[r.error.kind if r.error else "error"] += 1
            elif r.outcome == "host_blocked":
                self.host_blocked += 1
            else:
                self.ok += 1
            self.not_modified += r.outcome == "not_modified"
            self.unchanged += r.outcome == "unchanged"
            self.items_seen += len(r.parsed.items) if r.parsed else 0
            self.new_links += r.new_links


async def claim_due_feeds(
    session_factory: async_sessionmaker[AsyncSession],
    *,
    now: datetime,
    limit: int,
    lease_s: float,
    only_ids: Sequence[int] = (),
) -> list[FeedState]:
    """Lock up to ``limit`` due feeds (skipping ones other workers hold) and lease them.

    ``only_ids``: claim only these feeds (``NEWSFLOW_POLL_ONLY_FEEDS``); empty: any feed."""
    async with session_factory() as session, session.begin():
        rows = (
            await session.execute(
                select(
                    Feed.id,
                    Feed.url,
                    Feed.etag,
                    Feed.last_modified,
                    Feed.content_hash,
                    Feed.poll_interval_s,
                    Feed.consecutive_failures,
                    Feed.publish_times,
                    Feed.kind,
                    Feed.title,
                    Feed.site_url,
                    Feed.items_new,
                    Feed.added_at,
                )
                .where(Feed.next_poll_at <= now)
                .where(Feed.id.in_(list(only_ids)) if only_ids else true())
                .order_by(Feed.next_poll_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not rows:
            return []
        await session.execute(
            update(Feed)
            .where(Feed.id.in_([r.id for r in rows]))
            .values(next_poll_at=now + timedelta(seconds=lease_s))
        )
    return [
        FeedState(
            id=r.id,
            url=r.url,
            etag=r.etag,
            last_modified=r.last_modified,
            content_hash=r.content_hash,
            poll_interval_s=r.poll_interval_s,
            consecutive_failures=r.consecutive_failures,
            publish_times=list(r.publish_times or []),
            kind=r.kind,
            title=r.title,
            site_url=r.site_url,
            items_new=r.items_new,
            added_at=r.added_at,
        )
        for r in rows
    ]


def _status_of(exc: NewsflowError) -> int | None:
    kind = exc.kind
    return int(kind[5:]) if kind.startswith("http_") and kind[5:].isdigit() else None


async def parse_off_loop(
    body: bytes,
    *,
    url: str,
    content_type: str | None,
    now: datetime,
    executor: Executor | None = None,
) -> ParsedFeed:
    """:func:`parse_feed`, on *executor* for big documents: feedparser takes ~0.2 ms CPU per
    item (1.9 s for 10,000 items), which must not freeze the fetcher's event loop (page
    fetches, politeness timers, broker heartbeats). Small feeds parse inline (no thread hop)."""
    if executor is None or len(body) < PARSE_OFFLOAD_BYTES:
        return parse_feed(body, url=url, content_type=content_type, now=now)
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        executor, functools.partial(parse_feed, body, url=url, content_type=content_type, now=now)
    )


async def fetch_feed(
    get: Getter, feed: FeedState, *, now: datetime, executor: Executor | None = None
) -> FeedResult:
    """Conditional GET and parse of one feed. Never raises for the feed's own failures."""
    headers = {"Accept": FEED_ACCEPT}
    if feed.etag:
        headers["If-None-Match"] = feed.etag
    if feed.last_modified:
        headers["If-Modified-Since"] = feed.last_modified
    try:
        result = await get(feed.url, headers)
        moved_to = _moved_to(result, feed)
        cache_s = schedule.cache_lifetime(result.headers, now=now)
        etag = result.headers.get("etag") or feed.etag
        last_modified = result.headers.get("last-modified") or feed.last_modified
        if result.status_code == 304:
            return FeedResult(
                feed,
                "not_modified",
                304,
                etag,
                last_modified,
                feed.content_hash,
                cache_s=cache_s,
                moved_to=moved_to,
            )
        digest = hashlib.sha256(result.body).hexdigest()
        if digest == feed.content_hash:
            # 200 with the same bytes: servers without validators do this on every poll.
            return FeedResult(
                feed,
                "unchanged",
                result.status_code,
                etag,
                last_modified,
                digest,
                cache_s=cache_s,
                moved_to=moved_to,
            )
        parsed = await parse_off_loop(
            result.body,
            url=result.final_url,
            content_type=result.headers.get("content-type"),
            now=now,
            executor=executor,
        )
        if parsed.kind == "sitemapindex":
            parsed = await _expand_sitemap_index(get, parsed, now=now, executor=executor)
        return FeedResult(
            feed,
            "no_new",
            result.status_code,
            etag,
            last_modified,
            digest,
            parsed=parsed,
            cache_s=cache_s,
            moved_to=moved_to,
        )
    except NewsflowError as exc:
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        return FeedResult(feed, "error", _status_of(exc), error=exc, retry_after_s=retry_after)
    except Exception as exc:  # a parser bug must not stop the other feeds; recorded in status
        logger.exception("feed poll crashed feed_id=%s url=%s", feed.id, feed.url)
        err = PermanentError(f"internal error: {type(exc).__name__}: {exc}", kind="internal")
        return FeedResult(feed, "error", error=err)


def _moved_to(result: HttpResult, feed: FeedState) -> str | None:
    if not result.moved_permanently:
        return None
    try:
        target = normalize_url(result.final_url)
    except ValueError:
        return None
    return target if target != feed.url else None


async def _expand_sitemap_index(
    get: Getter, index: ParsedFeed, *, now: datetime, executor: Executor | None = None
) -> ParsedFeed:
    items: list[FeedItem] = []
    problems: list[str] = []
    for child in index.sitemaps[:MAX_CHILD_SITEMAPS]:
        try:
            result = await get(child, {"Accept": FEED_ACCEPT})
            sub = await parse_off_loop(
                result.body, url=result.final_url, content_type=None, now=now, executor=executor
            )
        except NewsflowError as exc:
            problems.append(f"{child}: {exc.kind}")
            continue
        items.extend(sub.items)
    if not items and problems:
        raise TransientError(
            "no child sitemap could be read: " + "; ".join(problems), kind="sitemap_children"
        )
    return ParsedFeed(
        kind="sitemapindex",
        items=items,
        sitemaps=index.sitemaps,
        recovered_error="; ".join(problems) or None,
    )


def _newest(items: list[FeedItem], limit: int) -> list[FeedItem]:
    """At most ``limit`` items, newest first when cutting (undated items last): a big
    sitemap's order is arbitrary, and the newest articles are the ones worth fetching."""
    if len(items) <= limit:
        return items
    floor = datetime.min.replace(tzinfo=UTC)
    return sorted(items, key=lambda i: i.published_at or floor, reverse=True)[:limit]


def _entry(item: FeedItem) -> FeedEntry:
    return FeedEntry(
        title=item.title,
        published_at=item.published_at,
        summary=item.summary,
        authors=list(item.authors),
        guid=item.guid,
    )


#: what ``seen_links.entry`` keeps of a feed entry until the link's outcome, for a re-drive:
#: what the parser falls back on, not the summary (it uses none, and summaries can be long)
SEEN_ENTRY_FIELDS = {"title", "published_at", "authors", "guid"}


def seen_entry(entry: FeedEntry) -> dict[str, Any] | None:
    """The JSON ``seen_links.entry`` keeps for *entry* (None when it says nothing)."""
    kept = entry.model_dump(mode="json", include=SEEN_ENTRY_FIELDS, exclude_defaults=True)
    return kept or None


def _link(item: FeedItem, feed: FeedState, now: datetime) -> Link:
    return Link(
        url=item.url,
        host=host_of(item.url),
        feed_id=feed.id,
        feed_url=feed.url,
        entry=_entry(item),
        discovered_at=now,
    )


async def record_poll(
    session_factory: async_sessionmaker[AsyncSession],
    results: Sequence[FeedResult],
    *,
    send_links: SendLinks,
    settings: Settings,
    now: datetime,
    host_blocks: dict[str, tuple[datetime, str]] | None = None,
    rng: random.Random | None = None,
) -> None:
    """Dedup new items, send their links, and write every feed's status, atomically."""
    candidates: dict[str, tuple[FeedItem, FeedResult]] = {}
    for r in results:
        if r.parsed is None:
            continue
        for item in _newest(r.parsed.items, MAX_ITEMS_PER_FEED):
            candidates.setdefault(item.url, (item, r))
    async with session_factory() as session, session.begin():
        new_urls: set[str] = set()
        # Sorted: concurrent workers inserting overlapping URLs then lock them in the same
        # order, so they wait for each other instead of deadlocking.
        rows = [
            {
                "url": u,
                "feed_id": candidates[u][1].feed.id,
                "first_seen_at": now,
                "entry": seen_entry(_entry(candidates[u][0])),
            }
            for u in sorted(candidates)
        ]
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            try:
                new_urls.update(await _insert_seen(session, chunk))
            except DBAPIError as exc:
                if is_transient_db_error(exc):
                    raise  # an outage: the whole batch is polled again after its lease
                # One bad URL must not cost its neighbours: retry one by one, and record the
                # failure against that item's feed alone.
                for row in chunk:
                    try:
                        new_urls.update(await _insert_seen(session, [row]))
                    except DBAPIError as exc:
                        if is_transient_db_error(exc):
                            raise
                        item, r = candidates[str(row["url"])]
                        _refuse(r, item, exc)
        links: list[Link] = []
        new_times: dict[int, list[datetime]] = {}
        for url in new_urls:
            item, r = candidates[url]
            r.new_links += 1
            links.append(_link(item, r.feed, now))
            new_times.setdefault(r.feed.id, []).append(item.published_at or now)
        if links:
            await send_links(links)
        updates = [
            _feed_update(
                r, settings=settings, now=now, new_times=new_times.get(r.feed.id, []), rng=rng
            )
            for r in results
        ]
        if updates:
            await _update_feeds(session, results, updates, settings=settings, now=now, rng=rng)
        for r in results:
            if r.moved_to:
                await _move_feed(session, r.feed, r.moved_to)
        if host_blocks:
            await _save_host_blocks(session, host_blocks)


async def _save_host_blocks(
    session: AsyncSession, host_blocks: dict[str, tuple[datetime, str]]
) -> None:
    """Upsert Retry-After blocks (a hint for other workers: a failure is logged, not raised)."""
    try:
        async with session.begin_nested():
            stmt2 = pg_insert(HostState).values(
                [
                    {"host": h, "blocked_until": until, "last_reason": why}
                    for h, (until, why) in sorted(host_blocks.items())
                ]
            )
            await session.execute(
                stmt2.on_conflict_do_update(
                    index_elements=[HostState.host],
                    set_={
                        "blocked_until": stmt2.excluded.blocked_until,
                        "last_reason": stmt2.excluded.last_reason,
                    },
                )
            )
    except DBAPIError as exc:
        if is_transient_db_error(exc):
            raise
        logger.warning("host blocks not saved hosts=%s error=%s", len(host_blocks), exc)


async def _insert_seen(session: AsyncSession, rows: list[dict[str, Any]]) -> list[str]:
    """Insert seen links in a savepoint; the new ones' URLs (conflicts are not new)."""
    async with session.begin_nested():
        stmt = (
            pg_insert(SeenLink)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[SeenLink.url])
            .returning(SeenLink.url)
        )
        return list((await session.execute(stmt)).scalars())


def _refuse(r: FeedResult, item: FeedItem, exc: DBAPIError) -> None:
    reason = clean_optional(f"not stored ({type(exc.orig).__name__}): {item.url}")
    logger.warning("seen link refused feed_id=%s url=%r error=%s", r.feed.id, item.url, exc.orig)
    if r.parsed is not None:
        r.parsed.refused.append(reason or "not stored")


async def _update_feeds(
    session: AsyncSession,
    results: Sequence[FeedResult],
    updates: list[dict[str, Any]],
    *,
    settings: Settings,
    now: datetime,
    rng: random.Random | None,
) -> None:
    """Write every feed's status; a row the database refuses is retried alone, then replaced
    by an error status for that feed only (its neighbours keep theirs)."""
    try:
        async with session.begin_nested():
            await session.execute(update(Feed), updates)
        return
    except DBAPIError as exc:
        if is_transient_db_error(exc):
            raise
    for r, row in zip(results, updates, strict=True):
        try:
            async with session.begin_nested():
                await session.execute(update(Feed), [row])
        except DBAPIError as exc:
            if is_transient_db_error(exc):
                raise
            logger.warning("feed status refused feed_id=%s error=%s", r.feed.id, exc.orig)
            err = PermanentError(
                f"the feed's status could not be stored: {type(exc.orig).__name__}: {exc.orig}",
                kind="status_refused",
            )
            fallback = _feed_update(
                FeedResult(r.feed, "error", r.status, error=err),
                settings=settings,
                now=now,
                new_times=[],
                rng=rng,
            )
            fallback["last_error"] = clean_optional(fallback["last_error"])
            async with session.begin_nested():
                await session.execute(update(Feed), [fallback])


async def _move_feed(session: AsyncSession, feed: FeedState, target: str) -> None:
    """Follow a permanent redirect by renaming the feed, unless the target is already a
    feed of its own (then the old one stays; its status shows the redirect each poll)."""
    try:
        async with session.begin_nested():  # a unique clash must not undo the whole batch
            moved = await session.execute(
                update(Feed)
                .where(Feed.id == feed.id, ~select(Feed.id).where(Feed.url == target).exists())
                .values(url=target)
            )
    except DBAPIError as exc:  # IntegrityError (target is a feed) or a URL it refuses
        if is_transient_db_error(exc):
            raise
        logger.info("feed move skipped feed_id=%s target=%s (already a feed)", feed.id, target)
        return
    if moved.rowcount:  # type: ignore[attr-defined]
        logger.info("feed moved permanently feed_id=%s from=%s to=%s", feed.id, feed.url, target)


#: Status columns holding text from outside (documents, headers, error messages).
_TEXT_COLUMNS = ("last_error", "title", "site_url", "etag", "last_modified")


def _feed_update(
    r: FeedResult,
    *,
    settings: Settings,
    now: datetime,
    new_times: list[datetime],
    rng: random.Random | None,
) -> dict[str, Any]:
    """The feed's status row, its text cleaned of what PostgreSQL cannot store."""
    row = _status_row(r, settings=settings, now=now, new_times=new_times, rng=rng)
    for column in _TEXT_COLUMNS:
        if isinstance(row.get(column), str):
            row[column] = clean_optional(row[column])
    return row


def _status_row(
    r: FeedResult,
    *,
    settings: Settings,
    now: datetime,
    new_times: list[datetime],
    rng: random.Random | None,
) -> dict[str, Any]:
    feed = r.feed
    row: dict[str, Any] = {
        "id": feed.id,
        "last_polled_at": now,
        "last_outcome": r.outcome,
        "last_status": r.status if r.status is not None else None,
        "etag": feed.etag,
        "last_modified": feed.last_modified,
        "content_hash": feed.content_hash,
        "poll_interval_s": feed.poll_interval_s,
        "consecutive_failures": feed.consecutive_failures,
        "last_error": None,
        "publish_times": feed.publish_times or None,
        "kind": feed.kind,
        "title": feed.title,
        "site_url": feed.site_url,
    }
    if r.outcome == "host_blocked":
        # Not the feed's fault: keep its counters, just come back when the host allows.
        row["next_poll_at"] = now + timedelta(
            seconds=r.retry_after_s or settings.poll_min_interval_s
        )
        row["last_error"] = (
            f"host_blocked: waiting {r.retry_after_s or 0:.0f}s for the host's Retry-After"
        )
        row["last_status"] = None
        return row
    if r.outcome == "error":
        failures = feed.consecutive_failures + 1
        assert r.error is not None
        row["consecutive_failures"] = failures
        row["last_error"] = f"{r.error.kind}: {r.error.detail}"[:MAX_ERROR_CHARS]
        row["last_outcome"] = f"error:{r.error.kind}"[:32]
        row["next_poll_at"] = schedule.plan_failure(
            now=now,
            failures=failures,
            min_s=settings.poll_min_interval_s,
            backoff_max_s=min(settings.poll_backoff_max_s, settings.poll_max_interval_s),
            retry_after_s=r.retry_after_s,
            rng=rng,
        )
        return row
    outcome = "new" if r.new_links else r.outcome
    publish_times = schedule.merge_publish_times(feed.publish_times, new_times)
    next_at, interval = schedule.plan_success(
        now=now,
        current_s=feed.poll_interval_s,
        publish_times=publish_times,
        new_items=r.new_links,
        min_s=settings.poll_min_interval_s,
        max_s=settings.poll_max_interval_s,
        hint_s=r.parsed.min_interval_hint_s if r.parsed else None,
        cache_s=r.cache_s,
        retry_after_s=r.retry_after_s,
        learning=schedule.is_learning(feed.added_at, now=now),
        rng=rng,
    )
    row.update(
        next_poll_at=next_at,
        poll_interval_s=interval,
        consecutive_failures=0,
        last_outcome=outcome,
        etag=r.etag,
        last_modified=r.last_modified,
        content_hash=r.content_hash,
        publish_times=publish_times or None,
        last_success_at=now,
    )
    if r.parsed is not None:
        row["kind"] = r.parsed.kind[:16]
        row["title"] = r.parsed.title or feed.title
        row["site_url"] = r.parsed.site_url or feed.site_url
        row["items_seen"] = len(r.parsed.items)
        notes = []
        if r.parsed.recovered_error:
            notes.append(f"recovered: {r.parsed.recovered_error}")
        if r.parsed.refused:
            notes.append(refused_note(r.parsed.refused))
        if r.parsed.cleaned:
            notes.append("cleaned text: " + "; ".join(r.parsed.cleaned[:REFUSED_SHOWN]))
        if notes:
            row["last_error"] = "; ".join(notes)[:MAX_ERROR_CHARS]
    if r.new_links:
        # Cumulative links this feed contributed; the row is leased by us, so no race.
        row["items_new"] = feed.items_new + r.new_links
        row["last_new_item_at"] = now
    return row


def refused_note(reasons: Sequence[str]) -> str:
    """``refused 3 item links (never fetched): not an http(s) URL: 'file:///…'; …``."""
    distinct = list(dict.fromkeys(reasons))
    shown = "; ".join(distinct[:REFUSED_SHOWN])
    more = len(distinct) - REFUSED_SHOWN
    return (
        f"refused {len(reasons)} item link{'s' if len(reasons) != 1 else ''} (never fetched): "
        + shown
        + (f"; and {more} more" if more > 0 else "")
    )


async def load_host_blocks(
    session_factory: async_sessionmaker[AsyncSession], *, now: datetime
) -> dict[str, datetime]:
    """Hosts another worker saw a Retry-After from, still blocked at ``now``."""
    async with session_factory() as session:
        rows = (
            await session.execute(
                select(HostState.host, HostState.blocked_until).where(HostState.blocked_until > now)
            )
        ).all()
    return {r.host: r.blocked_until for r in rows}


async def gather_bounded(
    funcs: Sequence[Callable[[], Awaitable[FeedResult]]], *, limit: int
) -> list[FeedResult]:
    sem = asyncio.Semaphore(limit)

    async def run(fn: Callable[[], Awaitable[FeedResult]]) -> FeedResult:
        async with sem:
            return await fn()

    return list(await asyncio.gather(*(run(fn) for fn in funcs)))


def utcnow() -> datetime:
    return datetime.now(UTC)
