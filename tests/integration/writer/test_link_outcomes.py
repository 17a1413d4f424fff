"""A link can reach the writer before the fetcher's seen_links row commits: its outcome
must still be recorded, or `newsflow run --once` waits for it forever."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy import text

from services.writer.articles import mark_links, store_enriched
from shared.db.session import create_engine, session_factory
from tests.support.factories import article, enriched

URL = "https://news.example.com/2026/11/21/fast-link"


async def test_outcome_recorded_when_the_fetchers_row_is_not_committed_yet(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as fetcher:
            # the fetcher's poll: row inserted, links sent, commit still to come
            await fetcher.execute(
                text("INSERT INTO seen_links (url) VALUES (:u) ON CONFLICT DO NOTHING"), {"u": URL}
            )

            async def writer() -> None:
                async with sessions() as session, session.begin():
                    await mark_links(session, [URL], outcome="stored", now=datetime.now(UTC))

            marking = asyncio.create_task(writer())
            await asyncio.sleep(0.3)
            assert not marking.done()  # it waits on the fetcher's uncommitted row...
            await fetcher.commit()
            await asyncio.wait_for(marking, timeout=10)  # ...then records the outcome
        async with sessions() as session:
            row = (
                await session.execute(
                    text("SELECT outcome, done_at IS NOT NULL FROM seen_links WHERE url = :u"),
                    {"u": URL},
                )
            ).one()
        assert tuple(row) == ("stored", True)

        # first outcome sticks, except stored replaces dead_letter
        async with sessions() as session, session.begin():
            await mark_links(session, [URL], outcome="dead_letter", now=datetime.now(UTC))
        async with sessions() as session:
            outcome = (
                await session.execute(
                    text("SELECT outcome FROM seen_links WHERE url = :u"), {"u": URL}
                )
            ).scalar_one()
        assert outcome == "stored"
    finally:
        await engine.dispose()


async def test_outcome_for_a_link_the_fetcher_never_recorded(database_url: str) -> None:
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session, session.begin():
            await mark_links(session, [URL], outcome="dead_letter", now=datetime.now(UTC))
        async with sessions() as session, session.begin():
            await mark_links(session, [URL], outcome="stored", now=datetime.now(UTC))
        async with sessions() as session:
            outcome = (
                await session.execute(
                    text("SELECT outcome FROM seen_links WHERE url = :u"), {"u": URL}
                )
            ).scalar_one()
        assert outcome == "stored"  # a replayed dead letter that got stored
    finally:
        await engine.dispose()


async def test_every_link_to_one_canonical_url_is_done(database_url: str) -> None:
    # /s/http302 -> /s/stub (a refresh stub) -> /a/page: two links, one article; both links
    # must be done in one batch, or `newsflow run --once` waits for one until its timeout
    canonical = "https://news.example.com/2026/11/30/page"
    links = [
        "https://news.example.com/s/http302",
        "https://news.example.com/s/stub",
    ]
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        async with sessions() as session, session.begin():
            await session.execute(
                text("INSERT INTO seen_links (url) SELECT unnest(CAST(:u AS text[]))"),
                {"u": links},
            )
        items = [
            enriched(article(link, final_url=canonical, canonical_url=canonical)) for link in links
        ]
        async with sessions() as session, session.begin():
            report = await store_enriched(session, items)
        assert report.articles == 1
        async with sessions() as session:
            rows = (
                await session.execute(
                    text(
                        "SELECT url, outcome, done_at IS NOT NULL FROM seen_links "
                        "WHERE url = ANY(CAST(:u AS text[])) ORDER BY url"
                    ),
                    {"u": links},
                )
            ).all()
        assert [tuple(r) for r in rows] == [(link, "stored", True) for link in links]
    finally:
        await engine.dispose()
