"""Re-drive of unfinished work and retention, on a real PostgreSQL (no broker: a recording
sink stands in for the producer, so the test sees exactly what would be sent where)."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.cli.ops.recover import REDRIVE_HEADER, redrive
from services.cli.ops.retention import apply_retention
from services.cli.ops.sink import Headers
from shared.messages import Link, StoredArticle
from shared.settings import Settings

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
FEED = "https://news.example.com/feed.xml"


class RecordingSink:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes, Headers]] = []
        self.queued = 0
        self.flushes = 0

    async def send(self, topic: str, *, key: bytes | None, value: bytes, headers: Headers) -> None:
        self.sent.append((topic, key, value, headers))
        self.queued += 1

    async def flush(self) -> int:
        n, self.queued = self.queued, 0
        self.flushes += 1
        return n


async def _sql(sessions: async_sessionmaker[AsyncSession], sql: str, **params: object) -> None:
    async with sessions() as session, session.begin():
        await session.execute(text(sql), params)


async def _seen(
    sessions: async_sessionmaker[AsyncSession], url: str, age: timedelta, outcome: str | None
) -> None:
    await _sql(
        sessions,
        "INSERT INTO seen_links (url, feed_id, first_seen_at, outcome, done_at)"
        " VALUES (:url, 1, :t, CAST(:o AS varchar), CASE WHEN CAST(:o AS varchar) IS NULL"
        " THEN NULL ELSE CAST(:t AS timestamptz) END)",
        url=url,
        t=NOW - age,
        o=outcome,
    )


async def _page(
    sessions: async_sessionmaker[AsyncSession], url: str, age: timedelta, record: bytes
) -> None:
    await _sql(
        sessions,
        "INSERT INTO pages (url, final_url, host, payload_gz, fetched_at)"
        " VALUES (:url, :url, 'news.example.com', :gz, :t)",
        url=url,
        gz=gzip.compress(record),
        t=NOW - age,
    )


async def test_redrive_sends_each_unfinished_link_once_from_its_page_or_as_a_link(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _sql(sessions, "INSERT INTO feeds (id, url) VALUES (1, :u)", u=FEED)
    base = "https://news.example.com/a/"
    await _seen(sessions, base + "stored", timedelta(hours=3), "stored")
    await _seen(sessions, base + "dead", timedelta(hours=3), "dead_letter")
    await _seen(sessions, base + "fetched", timedelta(hours=2), None)  # page archived
    await _page(sessions, base + "fetched", timedelta(hours=2), b'{"page": "fetched"}')
    await _page(sessions, base + "stored", timedelta(hours=3), b'{"page": "stored"}')
    for n in range(5):  # never fetched (or the page never reached the archive)
        await _seen(sessions, f"{base}new{n}", timedelta(hours=1, minutes=n), None)
    await _seen(sessions, base + "after", timedelta(seconds=-5), None)  # after the cut-off

    dry = await redrive(sessions, RecordingSink(), before=NOW, dry_run=True)
    assert (dry.links, dry.pages, dry.oldest) == (5, 1, NOW - timedelta(hours=2))

    sink = RecordingSink()
    done = await redrive(sessions, sink, before=NOW, prefix="p.", chunk=2)
    assert (done.links, done.pages) == (5, 1)
    assert sink.flushes >= 3  # chunk of 2: confirmed chunk by chunk
    topics = [t for t, _k, _v, _h in sink.sent]
    assert topics.count("p.news.pages.v1") == 1 and topics.count("p.news.links.v1") == 5
    page = next(s for s in sink.sent if s[0] == "p.news.pages.v1")
    assert page[2] == b'{"page": "fetched"}' and page[1] == b"news.example.com"
    assert page[3] == [(REDRIVE_HEADER, b"pages")]
    links = [Link.from_bytes(v) for t, _k, v, _h in sink.sent if t == "p.news.links.v1"]
    assert sorted(link.url for link in links) == [f"{base}new{n}" for n in range(5)]
    assert all(link.host == "news.example.com" and link.feed_url == FEED for link in links)
    assert all(link.feed_id == 1 and link.attempt == 1 for link in links)
    # oldest first, so the longest-waiting work goes first
    assert [link.url for link in links] == [f"{base}new{n}" for n in (4, 3, 2, 1, 0)]


async def _article(
    sessions: async_sessionmaker[AsyncSession],
    n: int,
    age: timedelta,
    scanned: str | None,
    storied: bool = True,
) -> None:
    """Article *n*, enriched at NOW - age; its alert scan: None, "current" or "stale"; in a
    story (the storyteller's membership) unless *storied* is false."""
    t = NOW - age
    if storied:
        await _sql(
            sessions,
            "INSERT INTO stories (id, first_seen, last_updated) VALUES (:n, :t, :t)",
            n=n,
            t=t,
        )
        await _sql(
            sessions,
            "INSERT INTO story_articles (article_id, story_id, canonical_url, url, source,"
            " title, published_at, role, vector) VALUES (:n, :n, :u, :u, 's', 't', :t,"
            " 'first_report', ''::bytea)",
            n=n,
            u=f"https://news.example.com/s/{n}",
            t=t,
        )
    await _sql(
        sessions,
        "INSERT INTO articles (id, url, canonical_url, body_text, content_hash, enriched_at,"
        " stored_at, updated_at) VALUES (:n, :u, :u, 'body', 'h', :t, :t, :t)",
        n=n,
        u=f"https://news.example.com/s/{n}",
        t=t,
    )
    if scanned:
        seen = t if scanned == "current" else t - timedelta(minutes=1)
        await _sql(
            sessions,
            "INSERT INTO alert_scans (article_id, enriched_at) VALUES (:n, :t)",
            n=n,
            t=seen,
        )


async def test_redrive_confirms_again_stored_articles_the_alerter_never_matched(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # a broker loss between the writer's news.stored.v1 record and the alerter's scan: the
    # link is done, so only the missing scan shows the lost confirmation ('run --once' used
    # to wait for it until its timeout)
    await _article(sessions, 1, timedelta(hours=1), None)
    await _article(sessions, 2, timedelta(hours=1), "current")
    await _article(sessions, 3, timedelta(hours=1), "stale")  # re-enriched since its scan
    await _article(sessions, 4, timedelta(seconds=-5), None)  # after the cut-off
    await _article(sessions, 5, timedelta(hours=2), None)
    # older than news.stored.v1 keeps records (e.g. stored before the alerter existed)
    await _article(sessions, 6, timedelta(days=15), None)
    # matched by the alerter, but the storyteller never got it: `run --once` waits for both
    await _article(sessions, 7, timedelta(hours=1), "current", storied=False)

    dry = await redrive(sessions, RecordingSink(), before=NOW, dry_run=True)
    assert (dry.links, dry.pages, dry.articles, dry.total) == (0, 0, 4, 4)

    sink = RecordingSink()
    done = await redrive(sessions, sink, before=NOW, prefix="p.", chunk=2)
    assert done.articles == 4 and done.to_json()["articles"] == 4
    assert {t for t, _k, _v, _h in sink.sent} == {"p.news.stored.v1"}
    records = [StoredArticle.from_bytes(v) for _t, _k, v, _h in sink.sent]
    assert [r.article_id for r in records] == [1, 3, 5, 7]
    assert all(r.action == "unchanged" for r in records)
    assert sink.sent[0][1] == b"https://news.example.com/s/1"
    assert sink.sent[0][3] == [(REDRIVE_HEADER, b"stored")]


async def _count(sessions: async_sessionmaker[AsyncSession], sql: str) -> list[str]:
    async with sessions() as session:
        return [r[0] for r in (await session.execute(text(sql))).all()]


async def test_retention_prunes_old_rows_and_keeps_unfinished_work(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    day = timedelta(days=1)
    for name, age in (("old", 20 * day), ("new", 2 * day)):
        await _page(sessions, f"https://x.example/{name}", age, b"{}")
    await _seen(sessions, "https://x.example/done-old", 100 * day, "stored")
    await _seen(sessions, "https://x.example/open-old", 100 * day, None)  # unfinished: kept
    await _seen(sessions, "https://x.example/done-new", 10 * day, "stored")
    for url, age, replayed in (
        ("replayed-old", 40 * day, True),
        ("replayed-new", 5 * day, True),
        ("pending-40", 40 * day, False),  # pending letters get longer
        ("pending-100", 100 * day, False),
    ):
        await _sql(
            sessions,
            "INSERT INTO dead_letters (fingerprint, stage, error_kind, detail, url, failed_at,"
            " replayed_at) VALUES (:f, 'fetch', 'http_404', 'x', :u, :t,"
            " CASE WHEN :r THEN CAST(:t AS timestamptz) END)",
            f=url,
            u=url,
            t=NOW - age,
            r=replayed,
        )
    settings = Settings(_env_file=None)  # defaults: 14 / 90 / 30 / 90 days
    pruned = await apply_retention(sessions, settings, now=NOW)
    assert (pruned.pages, pruned.seen_links, pruned.dead_letters) == (1, 1, 2)
    assert await _count(sessions, "SELECT url FROM pages") == ["https://x.example/new"]
    assert sorted(await _count(sessions, "SELECT url FROM seen_links")) == [
        "https://x.example/done-new",
        "https://x.example/open-old",
    ]
    assert sorted(await _count(sessions, "SELECT url FROM dead_letters")) == [
        "pending-40",
        "replayed-new",
    ]
    again = await apply_retention(sessions, settings, now=NOW)
    assert (again.pages, again.seen_links, again.dead_letters) == (0, 0, 0)
    keep = Settings(
        _env_file=None,
        retention_pages_days=0,
        retention_seen_links_days=0,
        retention_dead_letters_days=0,
        retention_pending_dead_letters_days=0,
    )
    assert (await apply_retention(sessions, keep, now=NOW + 1000 * day)).to_json()["pages"] == 0
