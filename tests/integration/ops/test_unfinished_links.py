"""Unfinished links (migration 0006): the re-drive finds them through a partial index, and a
re-sent link carries its feed entry again, on a real PostgreSQL (the fetcher polls a real
loopback feed; a recording sink stands in for the producer)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.cli.ops.recover import _COUNT, _UNFINISHED, redrive
from services.fetcher import admin
from services.fetcher.poll import seen_entry
from services.fetcher.service import Fetcher
from services.writer.articles import mark_links
from shared.messages import FeedEntry, Link
from tests.integration.ops.test_recover_retention import RecordingSink
from tests.unit.fetcher.conftest import LoopbackServer, make_settings
from tests.unit.fetcher.conftest import server as server  # the fixture

pytestmark = pytest.mark.integration

#: finished links in the table when the plans are read: enough that a scan would cost
FINISHED = 20_000


async def test_a_redriven_link_carries_its_feed_entry_until_the_link_is_finished(
    server: LoopbackServer, sessions: async_sessionmaker[AsyncSession]
) -> None:
    a, b = server.url("/2026/11/30/raid"), server.url("/2026/11/30/brief")
    c = server.url("/2026/11/30/bare")
    server.static(
        "/feed.xml",
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Wire</title>'
        f"<item><title>Raid near Zakho</title><link>{a}</link>"
        "<pubDate>Mon, 30 Nov 2026 06:15:00 GMT</pubDate><author>desk@wire.example (Desk)"
        '</author><guid isPermaLink="false">wire-1</guid><description>A long summary, not kept.</description></item>'
        f"<item><title>Brief</title><link>{b}</link></item><item><link>{c}</link></item>"
        "</channel></rss>",
        content_type="application/rss+xml",
    )
    await admin.add_feeds(sessions, [server.url("/feed.xml")])
    fetcher = Fetcher(make_settings(), session_factory=sessions)
    await fetcher.start()
    sent: list[Link] = []

    async def send(links: list[Link]) -> None:
        sent.extend(links)

    try:
        await fetcher.poll_due_feeds(send_links=send, now=datetime.now(UTC))
    finally:
        await fetcher.stop()
    original = next(link for link in sent if link.url == a)
    assert original.entry.title == "Raid near Zakho" and original.entry.summary

    # the broker lost both links before any page was fetched: the re-drive re-sends them
    # with what the parser takes from the entry (not the summary)
    sink = RecordingSink()
    done = await redrive(sessions, sink, before=datetime.now(UTC) + timedelta(seconds=1))
    assert (done.links, done.pages) == (3, 0)
    again = {link.url: link for link in (Link.from_bytes(v) for _t, _k, v, _h in sink.sent)}
    assert again[a].entry == original.entry.model_copy(update={"summary": None})
    assert again[a].entry.published_at == datetime(2026, 11, 30, 6, 15, tzinfo=UTC)
    assert again[a].entry.guid == "wire-1" and again[a].entry.authors
    assert again[b].entry == FeedEntry(title="Brief")
    assert again[c].entry == FeedEntry()  # the feed said nothing about it: nothing kept

    # the outcome clears it: a finished link keeps no entry
    async with sessions() as session, session.begin():
        await mark_links(session, [a], outcome="stored", now=datetime.now(UTC))
    async with sessions() as session:
        rows = dict(
            (await session.execute(text("SELECT url, entry FROM seen_links ORDER BY url"))).all()
        )
    assert rows[a] is None and rows[b] == {"title": "Brief"} and rows[c] is None


def test_the_kept_entry_is_small_and_none_when_the_feed_said_nothing() -> None:
    entry = FeedEntry(
        title="T",
        published_at=datetime(2026, 11, 30, tzinfo=UTC),
        summary="x" * 5000,
        authors=["A"],
        guid="g",
    )
    kept = seen_entry(entry)
    assert kept == {
        "title": "T",
        "published_at": "2026-11-30T00:00:00Z",
        "authors": ["A"],
        "guid": "g",
    }
    assert FeedEntry.model_validate(kept) == entry.model_copy(update={"summary": None})
    assert seen_entry(FeedEntry(summary="only a summary")) is None


async def _scans(
    sessions: async_sessionmaker[AsyncSession], sql: str, **params: Any
) -> list[tuple[str, str | None, str | None]]:
    """(node type, relation, index) of every node of the plan of *sql*."""
    async with sessions() as session:
        plan = (await session.execute(text("EXPLAIN (FORMAT JSON) " + sql), params)).scalar_one()
    if isinstance(plan, str):
        plan = json.loads(plan)
    out = []
    stack = [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        out.append((node["Node Type"], node.get("Relation Name"), node.get("Index Name")))
        stack.extend(node.get("Plans", []))
    return out


async def test_the_redrive_reads_unfinished_links_through_the_partial_index(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime.now(UTC)
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO seen_links (url, feed_id, first_seen_at, outcome, done_at)"
                " SELECT 'https://n.example/' || g, 1, CAST(:t AS timestamptz) - g * interval '1 second',"
                " 'stored', CAST(:t AS timestamptz) FROM generate_series(1, :n) g"
            ),
            {"t": now, "n": FINISHED},
        )
        await session.execute(
            text(
                "INSERT INTO seen_links (url, feed_id, first_seen_at)"
                " SELECT 'https://n.example/open/' || g, 1, :t FROM generate_series(1, 5) g"
            ),
            {"t": now},
        )
        await session.execute(text("ANALYZE seen_links"))
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    page = await _scans(sessions, _UNFINISHED.text, before=now, after_t=epoch, after_url="", n=200)
    count = await _scans(sessions, _COUNT.text, before=now + timedelta(seconds=1))
    for plan in (page, count):
        on_links = [(kind, index) for kind, rel, index in plan if rel == "seen_links"]
        # one index scan of the partial index, never a scan of the finished rows
        assert len(on_links) == 1 and on_links[0][1] == "ix_seen_links_unfinished", plan
        assert "Seq Scan" not in on_links[0][0], plan
    sink = RecordingSink()
    done = await redrive(sessions, sink, before=now + timedelta(seconds=1))
    assert done.links == 5
