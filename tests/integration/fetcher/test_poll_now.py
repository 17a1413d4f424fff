"""`newsflow feeds poll` marks feeds due now; `run --feeds F` learns exactly F's feeds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.fetcher import admin
from shared.db.models import Feed

LATER = datetime.now(UTC) + timedelta(days=1)


async def _due(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    async with sessions() as session:
        rows = await session.execute(select(Feed.url).where(Feed.next_poll_at <= datetime.now(UTC)))
        return set(rows.scalars())


async def test_poll_now_by_id_url_or_all(sessions: async_sessionmaker[AsyncSession]) -> None:
    urls = ["https://a.example/rss", "https://b.example/rss", "https://c.example/rss"]
    await admin.add_feeds(sessions, urls)
    async with sessions() as session, session.begin():
        await session.execute(update(Feed).values(next_poll_at=LATER))
        ids = {r.url: r.id for r in await session.execute(select(Feed.url, Feed.id))}
    assert await _due(sessions) == set()

    marked = await admin.poll_now(sessions, [str(ids[urls[0]]), "b.example/rss"])
    assert [url for _id, url in marked] == urls[:2]  # the typed URL found its feed
    assert await _due(sessions) == set(urls[:2])

    assert await admin.poll_now(sessions, ["https://nowhere.example/rss"]) == []
    assert len(await admin.poll_now(sessions, every=True)) == 3
    assert await _due(sessions) == set(urls)


async def test_import_reports_the_feeds_the_file_lists(
    sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    await admin.add_feeds(sessions, ["https://old.example/rss"])
    listed = tmp_path / "feeds.txt"
    listed.write_text("example.com/rss\nhttp://169.254.169.254/latest\nhttps://old.example/rss\n")
    report = await admin.import_feeds_file(sessions, listed, allow_private=False)
    assert (report.added, report.existing) == (1, 1)
    assert set(report.urls) == {"https://example.com/rss", "https://old.example/rss"}
    [(url, why)] = report.invalid
    assert url == "http://169.254.169.254/latest" and "metadata" in why
    assert "1 refused" in str(report)
    assert len(await admin.feed_ids(sessions, report.urls)) == 2


async def test_claim_only_the_listed_feeds(sessions: async_sessionmaker[AsyncSession]) -> None:
    from services.fetcher.poll import claim_due_feeds
    from shared.settings import Settings

    await admin.add_feeds(sessions, ["https://a.example/rss", "https://b.example/rss"])
    [b_id] = await admin.feed_ids(sessions, ["https://b.example/rss"])
    only = Settings(_env_file=None, poll_only_feeds=f" {b_id} ,").poll_only_feed_ids
    assert only == (b_id,)
    now = datetime.now(UTC) + timedelta(seconds=1)
    claimed = await claim_due_feeds(sessions, now=now, limit=10, lease_s=60, only_ids=only)
    assert [f.url for f in claimed] == ["https://b.example/rss"]
    rest = await claim_due_feeds(sessions, now=now, limit=10, lease_s=60)
    assert [f.url for f in rest] == ["https://a.example/rss"]  # untouched by the filtered claim
