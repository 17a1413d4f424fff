"""Issue 12 through the real fetcher service and PostgreSQL, on a loopback server: feed dates
stored in UTC, a poisoned feed harming no other feed, lying encodings, sitemaps in robots.txt."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.fetcher import admin, feeds, poll
from services.fetcher.service import Fetcher
from shared.db.models import Feed, SeenLink
from shared.messages import Link
from tests.unit.fetcher.conftest import LoopbackServer, make_settings

pytestmark = pytest.mark.integration


def due() -> datetime:
    """A poll time at which feeds added just now are due."""
    return datetime.now(UTC) + timedelta(minutes=1)


class Sink:
    def __init__(self) -> None:
        self.links: list[Link] = []

    async def __call__(self, batch: list[Link]) -> None:
        self.links.extend(batch)


async def poll_once(sessions: async_sessionmaker[AsyncSession], now: datetime) -> Sink:
    fetcher = Fetcher(make_settings(), session_factory=sessions)
    await fetcher.start()
    sink = Sink()
    try:
        await fetcher.poll_due_feeds(send_links=sink, now=now)
    finally:
        await fetcher.stop()
    return sink


async def feed_rows(sessions: async_sessionmaker[AsyncSession]) -> dict[str, Feed]:
    async with sessions() as session:
        return {f.url: f for f in (await session.execute(select(Feed))).scalars()}


def rss(*items: tuple[str, str], title: str = "Wire") -> str:
    body = "".join(
        f"<item><title>Story {n}</title><link>{url}</link><pubDate>{date}</pubDate></item>"
        for n, (url, date) in enumerate(items)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>{body}</channel></rss>'


async def test_colon_offset_pubdate_is_stored_in_utc(server: LoopbackServer, sessions) -> None:
    now = due()
    server.static(
        "/tz.xml",
        rss((server.url("/a"), "Mon, 30 Nov 2026 10:00:00 +03:00")),
        content_type="application/rss+xml",
    )
    await admin.add_feeds(sessions, [server.url("/tz.xml")])
    sink = await poll_once(sessions, now)
    assert [link.entry.published_at for link in sink.links] == [
        datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    ]
    row = (await feed_rows(sessions))[server.url("/tz.xml")]
    assert row.publish_times == [datetime(2026, 11, 30, 7, 0, tzinfo=UTC)]


POISON = (
    b'{"version": "https://jsonfeed.org/version/1.1", "title": "Alerts\\u0000",'
    b' "items": [{"id": "1\\u0000", "url": "URL", "title": "Alarm\\u0000\\ud800",'
    b' "summary": "x\\u0001y", "authors": [{"name": "Desk\\u0000"}]}]}'
)


def serve_batch(server: LoopbackServer) -> list[str]:
    """A poisoned JSON Feed between two good feeds (all claimed in one poll batch)."""
    now = "Mon, 30 Nov 2026 09:00:00 GMT"
    server.static(
        "/good1.xml", rss((server.url("/g1"), now), title="One"), content_type="application/rss+xml"
    )
    server.static(
        "/poison.json",
        POISON.replace(b"URL", server.url("/p1").encode()),
        content_type="application/feed+json",
    )
    server.static(
        "/good2.xml", rss((server.url("/g2"), now), title="Two"), content_type="application/rss+xml"
    )
    return [server.url("/good1.xml"), server.url("/poison.json"), server.url("/good2.xml")]


async def test_poisoned_feed_is_cleaned_and_recorded_and_harms_no_other_feed(
    server: LoopbackServer, sessions
) -> None:
    urls = serve_batch(server)
    await admin.add_feeds(sessions, urls)
    now = due()
    sink = await poll_once(sessions, now)
    assert sorted(link.url for link in sink.links) == sorted(
        server.url(p) for p in ("/g1", "/p1", "/g2")
    )
    poisoned = next(link for link in sink.links if link.url.endswith("/p1"))
    assert poisoned.entry.title == "Alarm\ufffd" and poisoned.entry.authors == ["Desk"]
    assert poisoned.entry.summary == "xy" and poisoned.entry.guid == "1"
    rows = await feed_rows(sessions)
    for url in urls:
        row = rows[url]
        assert (row.last_outcome, row.consecutive_failures, row.items_new) == ("new", 0, 1), url
        assert row.next_poll_at > now + timedelta(seconds=60)  # scheduled, not left on lease
    assert rows[urls[1]].title == "Alerts"
    assert "cleaned text: feed title: 1 NUL" in (rows[urls[1]].last_error or "")
    assert (rows[urls[0]].title, rows[urls[2]].title) == ("One", "Two")


async def test_a_row_the_database_refuses_is_isolated_to_its_feed(
    server: LoopbackServer, sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Take the cleaning away, so the NUL reaches PostgreSQL: the batch must still commit,
    # with the refusal recorded against the poisoned feed alone.
    monkeypatch.setattr(feeds, "clean_text", lambda value: (value, None))
    monkeypatch.setattr(poll, "clean_optional", lambda value: value)
    urls = serve_batch(server)
    await admin.add_feeds(sessions, urls)
    now = due()
    sink = await poll_once(sessions, now)
    assert len(sink.links) == 3  # links are still sent (the Link contract cleans its text)
    rows = await feed_rows(sessions)
    for url in (urls[0], urls[2]):
        assert (rows[url].last_outcome, rows[url].items_new) == ("new", 1)
    bad = rows[urls[1]]
    assert bad.last_outcome == "error:status_refused"
    assert bad.consecutive_failures == 1 and bad.next_poll_at > now
    assert "could not be stored" in (bad.last_error or "")
    async with sessions() as session:
        seen = set((await session.execute(select(SeenLink.url))).scalars())
    assert seen == {server.url(p) for p in ("/g1", "/p1", "/g2")}


async def test_feeds_whose_headers_lie_about_encoding_are_read(
    server: LoopbackServer, sessions
) -> None:
    date = "Mon, 30 Nov 2026 09:00:00 GMT"
    plain = rss((server.url("/e1"), date)).encode()
    server.static(
        "/fake-gzip.xml",
        plain,
        content_type="application/rss+xml",
        headers={"Content-Encoding": "gzip"},
    )
    sitemap = (
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{server.url('/e2')}</loc><lastmod>2026-11-30T10:00:00+03:00</lastmod></url>"
        "</urlset>"
    ).encode()
    server.static("/sitemap.xml.gz", gzip.compress(sitemap), content_type="application/x-gzip")
    index = (
        '<?xml version="1.0"?><sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{server.url('/child.xml.gz')}</loc></sitemap></sitemapindex>"
    ).encode()
    child = sitemap.replace(b"/e2", b"/e3")
    server.static("/index.xml", index, content_type="application/xml")
    server.static("/child.xml.gz", gzip.compress(child), content_type="application/octet-stream")
    urls = [server.url(p) for p in ("/fake-gzip.xml", "/sitemap.xml.gz", "/index.xml")]
    await admin.add_feeds(sessions, urls)
    sink = await poll_once(sessions, due())
    assert sorted(link.url for link in sink.links) == [server.url(p) for p in ("/e1", "/e2", "/e3")]
    e2 = next(link for link in sink.links if link.url.endswith("/e2"))
    assert e2.entry.published_at == datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
    rows = await feed_rows(sessions)
    for url in urls:
        assert rows[url].last_outcome == "new", (url, rows[url].last_error)


async def test_discovery_reads_sitemap_lines_in_robots_txt(
    server: LoopbackServer, sessions
) -> None:
    server.static(
        "/", "<!doctype html><html><head><title>Home</title></head><body>Hi</body></html>"
    )
    server.static(
        "/robots.txt",
        "User-agent: *\nDisallow: /private\n"
        f"Sitemap: {server.url('/sitemaps/all.xml')}\nSitemap: /sitemaps/news.xml.gz\n",
        content_type="text/plain",
    )
    news = (
        '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
        'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9">'
        f"<url><loc>{server.url('/n1')}</loc><news:news><news:title>T</news:title>"
        "<news:publication_date>2026-11-30T10:00:00+03:00</news:publication_date>"
        "</news:news></url></urlset>"
    ).encode()
    server.static("/sitemaps/news.xml.gz", gzip.compress(news), content_type="application/x-gzip")
    server.static("/sitemaps/all.xml", b"not a sitemap", content_type="text/plain")
    fetcher = Fetcher(make_settings(), session_factory=sessions)
    await fetcher.start()
    try:
        results = await admin.add_with_discovery(sessions, fetcher, [server.url("/")])
    finally:
        await fetcher.stop()
    assert results[0].added == (server.url("/sitemaps/news.xml.gz"),)


async def test_feed_url_answering_a_redirect_stub_is_followed(
    server: LoopbackServer, sessions
) -> None:
    server.static(
        "/old-feed",
        f'<html><head><meta http-equiv="refresh" content="0; url={server.url("/new/feed.xml")}">'
        "</head><body></body></html>",
    )
    server.static(
        "/new/feed.xml",
        rss(("story-1", "Mon, 30 Nov 2026 09:00:00 GMT")),  # relative to the final URL
        content_type="application/rss+xml",
    )
    await admin.add_feeds(sessions, [server.url("/old-feed")])
    sink = await poll_once(sessions, due())
    assert [link.url for link in sink.links] == [server.url("/new/story-1")]
    row = (await feed_rows(sessions))[server.url("/old-feed")]
    assert (row.last_outcome, row.url) == ("new", server.url("/old-feed"))  # not renamed


async def test_discovery_follows_a_home_page_redirect_stub(
    server: LoopbackServer, sessions
) -> None:
    server.static("/", '<html><head><script>location.replace("/en/")</script></head></html>')
    server.static(
        "/en/",
        '<html><head><link rel="alternate" type="application/rss+xml" href="feed.xml">'
        "</head><body>Home</body></html>",
    )
    server.static(
        "/en/feed.xml",
        rss((server.url("/en/a"), "Mon, 30 Nov 2026 09:00:00 GMT")),
        content_type="application/rss+xml",
    )
    fetcher = Fetcher(make_settings(), session_factory=sessions)
    await fetcher.start()
    try:
        results = await admin.add_with_discovery(sessions, fetcher, [server.url("/")])
    finally:
        await fetcher.stop()
    assert results[0].added == (server.url("/en/feed.xml"),)
