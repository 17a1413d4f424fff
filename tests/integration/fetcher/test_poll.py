"""DB-backed feed polling against a real PostgreSQL and a loopback HTTP server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.fetcher import admin
from services.fetcher.service import Fetcher
from shared.db.models import Feed, HostState, SeenLink
from shared.db.session import create_engine, session_factory
from shared.messages import Link
from tests.unit.fetcher.conftest import LoopbackServer, make_settings

pytestmark = pytest.mark.integration

LATER = timedelta(days=3)  # beyond any interval + jitter: every feed is due again


def rss(*links: str, title: str = "Wire") -> str:
    items = "".join(
        f"<item><title>Story {i}</title><link>{u}</link>"
        f"<pubDate>Sun, 22 Nov 2026 0{i % 10}:00:00 GMT</pubDate></item>"
        for i, u in enumerate(links)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>{items}</channel></rss>'


class Sink:
    def __init__(self) -> None:
        self.links: list[Link] = []

    async def __call__(self, batch: list[Link]) -> None:
        self.links.extend(batch)


async def start_fetcher(sessions: async_sessionmaker[AsyncSession], **overrides: object) -> Fetcher:
    fetcher = Fetcher(make_settings(**overrides), session_factory=sessions)
    await fetcher.start()
    return fetcher


async def feed_row(sessions: async_sessionmaker[AsyncSession], url: str) -> Feed:
    async with sessions() as session:
        return (await session.execute(select(Feed).where(Feed.url == url))).scalar_one()


async def test_conditional_get_304_and_identical_200(server: LoopbackServer, sessions) -> None:
    body = rss(server.url("/a1"), server.url("/a2"))

    async def with_etag(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") == '"v1"':
            return web.Response(status=304, headers={"ETag": '"v1"'})
        return web.Response(text=body, content_type="application/rss+xml", headers={"ETag": '"v1"'})

    server.route("/etag.xml", with_etag)
    server.static("/same.xml", rss(server.url("/b1")), content_type="application/rss+xml")
    await admin.add_feeds(sessions, [server.url("/etag.xml"), server.url("/same.xml")])
    fetcher = await start_fetcher(sessions)
    sink = Sink()
    t0 = datetime.now(UTC)
    try:
        first = await fetcher.poll_due_feeds(send_links=sink, now=t0)
        assert (first.feeds, first.new_links) == (2, 3)
        second = await fetcher.poll_due_feeds(send_links=sink, now=t0 + LATER)
    finally:
        await fetcher.stop()
    assert (second.not_modified, second.unchanged, second.new_links) == (1, 1, 0)
    assert server.hits_for("/etag.xml")[1].headers.get("If-None-Match") == '"v1"'
    etag_feed = await feed_row(sessions, server.url("/etag.xml"))
    same_feed = await feed_row(sessions, server.url("/same.xml"))
    assert (etag_feed.last_status, etag_feed.last_outcome, etag_feed.etag) == (
        304,
        "not_modified",
        '"v1"',
    )
    assert (same_feed.last_status, same_feed.last_outcome) == (200, "unchanged")
    assert etag_feed.items_new == 2 and same_feed.items_new == 1
    assert etag_feed.next_poll_at > t0 + LATER


async def test_dedup_across_feeds_and_restart(server: LoopbackServer, database_url: str) -> None:
    article = server.url("/2026/11/22/strike")
    server.static("/f1.xml", rss(article + "?utm_source=f1", server.url("/only-1")))
    server.static("/f2.xml", rss(article + "?fbclid=XYZ#top", server.url("/only-2")))
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    await admin.add_feeds(sessions, [server.url("/f1.xml"), server.url("/f2.xml")])
    sink = Sink()
    t0 = datetime.now(UTC)
    fetcher = await start_fetcher(sessions)
    try:
        await fetcher.poll_due_feeds(send_links=sink, now=t0)
    finally:
        await fetcher.stop()
        await engine.dispose()
    urls = sorted(link.url for link in sink.links)
    assert urls == sorted([article, server.url("/only-1"), server.url("/only-2")])
    assert all(link.feed_id is not None and link.entry.title for link in sink.links)

    # "Restart": a new engine and Fetcher. feed 2 now lists one more article.
    server.static(
        "/f2.xml", rss(article + "?fbclid=XYZ", server.url("/only-2"), server.url("/fresh"))
    )
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    sink2 = Sink()
    fetcher = await start_fetcher(sessions)
    try:
        report = await fetcher.poll_due_feeds(send_links=sink2, now=t0 + LATER)
        async with sessions() as session:
            seen = (await session.execute(select(SeenLink.url))).scalars().all()
    finally:
        await fetcher.stop()
        await engine.dispose()
    assert [link.url for link in sink2.links] == [server.url("/fresh")]
    assert report.new_links == 1
    assert len(seen) == 4


async def test_failures_back_off_record_why_and_recover(server: LoopbackServer, sessions) -> None:
    calls = 0

    async def flaky(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls <= 2:
            return web.Response(status=500, text="boom")
        return web.Response(text=rss(server.url("/ok")), content_type="application/rss+xml")

    server.route("/flaky.xml", flaky)
    server.static("/home.html", "<!doctype html><html><body>Home</body></html>")
    await admin.add_feeds(sessions, [server.url("/flaky.xml"), server.url("/home.html")])
    fetcher = await start_fetcher(sessions, poll_min_interval_s=300.0, poll_backoff_max_s=3600.0)
    sink = Sink()
    t0 = datetime.now(UTC)
    delays = []
    try:
        for n in range(3):
            now = t0 + LATER * n
            await fetcher.poll_due_feeds(send_links=sink, now=now)
            row = await feed_row(sessions, server.url("/flaky.xml"))
            delays.append((row.next_poll_at - now).total_seconds())
            if n < 2:
                assert row.consecutive_failures == n + 1
                assert row.last_status == 500 and (row.last_error or "").startswith("http_500")
                assert row.last_outcome == "error:http_500"
    finally:
        await fetcher.stop()
    assert 270 <= delays[0] <= 300 and 540 <= delays[1] <= 600  # exponential backoff
    assert (row.consecutive_failures, row.last_error, row.last_outcome) == (0, None, "new")
    assert [link.url for link in sink.links] == [server.url("/ok")]
    html = await feed_row(sessions, server.url("/home.html"))
    # never disabled: still scheduled, and the reason is in plain words
    assert html.consecutive_failures == 3 and html.next_poll_at is not None
    error = html.last_error or ""
    assert error.startswith("not_a_feed: expected a feed") and "HTML page" in error


async def test_retry_after_slows_only_that_host(server: LoopbackServer, sessions) -> None:
    server.route("/limited.xml", lambda r: _resp(429, {"Retry-After": "7200"}))
    server.static("/other.xml", rss(server.url("/x")), content_type="application/rss+xml")
    server.static("/fine.xml", rss(server.url("/y")), content_type="application/rss+xml")
    limited = server.url("/limited.xml").replace("127.0.0.1", "localhost")
    same_host = server.url("/other.xml").replace("127.0.0.1", "localhost")
    await admin.add_feeds(sessions, [limited])
    fetcher = await start_fetcher(sessions)
    sink = Sink()
    t0 = datetime.now(UTC)
    try:
        await fetcher.poll_due_feeds(send_links=sink, now=t0)
        await admin.add_feeds(sessions, [same_host, server.url("/fine.xml")])
        later = await fetcher.poll_due_feeds(send_links=sink, now=t0 + timedelta(seconds=1))
    finally:
        await fetcher.stop()
    row = await feed_row(sessions, limited)
    assert row.next_poll_at - t0 >= timedelta(seconds=7200 * 0.9)
    assert row.last_status == 429
    assert later.host_blocked == 1 and later.ok == 1  # localhost waits; 127.0.0.1 does not
    assert len(server.hits_for("/other.xml")) == 0
    assert [link.url for link in sink.links] == [server.url("/y")]
    async with sessions() as session:
        state = (await session.execute(select(HostState))).scalars().all()
    assert [s.host for s in state] == [limited.split("/")[2]]


async def _resp(status: int, headers: dict[str, str]) -> web.Response:
    return web.Response(status=status, headers=headers)


async def test_two_workers_split_due_feeds(server: LoopbackServer, sessions) -> None:
    async def slow_feed(request: web.Request) -> web.Response:
        await asyncio.sleep(0.05)
        n = request.path.strip("/").split(".")[0]
        return web.Response(text=rss(server.url(f"/art-{n}")), content_type="application/rss+xml")

    urls = []
    for i in range(20):
        server.route(f"/{i}.xml", slow_feed)
        urls.append(server.url(f"/{i}.xml"))
    await admin.add_feeds(sessions, urls)
    a = await start_fetcher(sessions, poll_batch_size=3, poll_concurrency=3)
    b = await start_fetcher(sessions, poll_batch_size=3, poll_concurrency=3)
    sink = Sink()
    try:
        ra, rb = await asyncio.gather(
            a.poll_due_feeds(send_links=sink), b.poll_due_feeds(send_links=sink)
        )
    finally:
        await a.stop()
        await b.stop()
    assert ra.feeds + rb.feeds == 20 and ra.feeds > 0 and rb.feeds > 0
    assert all(len(server.hits_for(f"/{i}.xml")) == 1 for i in range(20))
    assert len(sink.links) == len({link.url for link in sink.links}) == 20


async def test_admin_import_list_remove_and_discovery(
    server: LoopbackServer, sessions, tmp_path
) -> None:
    opml = tmp_path / "feeds.opml"
    opml.write_text(
        '<?xml version="1.0"?><opml version="2.0"><body><outline text="g">'
        f'<outline type="rss" xmlUrl="{server.url("/o1.xml")}"/>'
        f'<outline type="rss" xmlUrl="{server.url("/o2.xml")}"/></outline></body></opml>'
    )
    report = await admin.import_feeds_file(sessions, opml)
    assert (report.added, report.existing) == (2, 0)
    again = await admin.import_feeds_file(sessions, opml)
    assert (again.added, again.existing) == (2 - 2, 2)

    server.static(
        "/",
        '<html><head><link rel="alternate" type="application/rss+xml" href="/news.rss"></head></html>',
    )
    server.static("/news.rss", rss(server.url("/n1")), content_type="application/rss+xml")
    fetcher = await start_fetcher(sessions)
    try:
        results = await admin.add_with_discovery(sessions, fetcher, [server.url("/")])
    finally:
        await fetcher.stop()
    assert results[0].added == (server.url("/news.rss"),)

    listed = await admin.list_feeds(sessions)
    assert [f.url for f in listed] == [
        server.url("/o1.xml"),
        server.url("/o2.xml"),
        server.url("/news.rss"),
    ]
    status = listed[0].to_json()
    for key in (
        "last_polled_at",
        "next_poll_at",
        "last_status",
        "consecutive_failures",
        "last_error",
        "items_seen",
    ):
        assert key in status
    removed = await admin.remove_feeds(sessions, [str(listed[0].id), server.url("/o2.xml")])
    assert sorted(removed) == sorted([server.url("/o1.xml"), server.url("/o2.xml")])
    assert [f.url for f in await admin.list_feeds(sessions)] == [server.url("/news.rss")]


async def test_workers_sharing_urls_dedup_without_deadlock(
    server: LoopbackServer, sessions
) -> None:
    shared = [server.url(f"/shared-{k}") for k in range(30)]

    async def feed(request: web.Request) -> web.Response:
        n = int(request.path.strip("/").split(".")[0])
        # Every feed lists the shared articles, half of them in reverse order (inserts are
        # sorted so overlapping workers lock keys in one order and cannot deadlock).
        links = shared if n % 2 else list(reversed(shared))
        body = rss(*links, server.url(f"/own-{n}"))
        return web.Response(text=body, content_type="application/rss+xml")

    urls = []
    for i in range(16):
        server.route(f"/{i}.xml", feed)
        urls.append(server.url(f"/{i}.xml"))
    await admin.add_feeds(sessions, urls)
    workers = [
        await start_fetcher(sessions, poll_batch_size=2, poll_concurrency=2) for _ in range(2)
    ]
    sink = Sink()
    try:
        reports = await asyncio.gather(*(w.poll_due_feeds(send_links=sink) for w in workers))
    finally:
        for w in workers:
            await w.stop()
    assert sum(r.feeds for r in reports) == 16
    sent = [link.url for link in sink.links]
    assert len(sent) == len(set(sent)) == 30 + 16


async def test_permanent_redirect_renames_the_feed(server: LoopbackServer, sessions) -> None:
    server.route("/old.xml", lambda r: _resp(301, {"Location": "/new.xml"}))
    server.route("/temp.xml", lambda r: _resp(302, {"Location": "/new.xml"}))
    server.route("/dup.xml", lambda r: _resp(308, {"Location": "/new.xml"}))
    server.static("/new.xml", rss(server.url("/m1")), content_type="application/rss+xml")
    await admin.add_feeds(sessions, [server.url("/old.xml"), server.url("/temp.xml")])
    fetcher = await start_fetcher(sessions)
    t0 = datetime.now(UTC)
    try:
        await fetcher.poll_due_feeds(send_links=Sink(), now=t0)
        await admin.add_feeds(sessions, [server.url("/dup.xml")])
        await fetcher.poll_due_feeds(send_links=Sink(), now=t0 + LATER)
    finally:
        await fetcher.stop()
    urls = {f.url for f in await admin.list_feeds(sessions)}
    # 301 -> renamed; 302 -> kept (temporary); 308 to a URL that is already a feed -> kept
    assert urls == {server.url("/new.xml"), server.url("/temp.xml"), server.url("/dup.xml")}


async def test_refused_item_links_are_reported_in_the_feed_status(
    server: LoopbackServer, sessions
) -> None:
    # a hostile feed: local files and other schemes are never fetched, and the status says so
    body = rss("file:///etc/passwd", "ftp://127.0.0.1/secret", server.url("/good"))
    server.static("/mixed.xml", body, content_type="application/rss+xml")
    await admin.add_feeds(sessions, [server.url("/mixed.xml")])
    fetcher = await start_fetcher(sessions)
    sink = Sink()
    try:
        await fetcher.poll_due_feeds(send_links=sink, now=datetime.now(UTC))
    finally:
        await fetcher.stop()
    assert [link.url for link in sink.links] == [server.url("/good")]
    row = await feed_row(sessions, server.url("/mixed.xml"))
    assert (row.last_outcome, row.consecutive_failures, row.items_seen) == ("new", 0, 1)
    assert (row.last_error or "").startswith("refused 2 item links (never fetched): ")
    assert "etc/passwd" in (row.last_error or "")  # feedparser resolves it to file://etc/passwd
