"""Fetcher service: feeds (PostgreSQL) -> news.links.v1 -> news.pages.v1 (faust wiring only).

One agent owns one :class:`~services.fetcher.service.Fetcher` (one httpx client, one
politeness limiter), opened when the worker starts and closed when it stops. It runs the feed
poll loop (several fetcher workers split due feeds with ``SKIP LOCKED``) beside the links
stream, whose links are fetched concurrently and acked in offset order.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import faust

from services.fetcher.parking import fetch_patiently
from services.fetcher.service import open_fetcher, poll_forever
from shared.faust_app import create_app, send_all, send_dead_letters, stage_topics
from shared.messages import Link, Page
from shared.settings import Settings
from shared.stage import StageInput, process_one, run_concurrently
from shared.topology import DLQ, LINKS, PAGES

SERVICE = "fetcher"
#: Links waiting for their host's turn hold no connection, so more may be in flight than
#: there are connections; with a 1 s host interval 8x tripled throughput across 200 hosts.
IN_FLIGHT_PER_CONNECTION = 8
SHUTDOWN_GRACE_S = 10.0


def build(settings: Settings, *, bootstrap: str) -> faust.App:
    app = create_app(SERVICE, settings, bootstrap=bootstrap)
    topics = stage_topics(app, SERVICE, settings)
    links, pages, dlq = topics[LINKS], topics[PAGES], topics[DLQ]
    source = StageInput.of(
        SERVICE, settings.topic_prefix, url_of=lambda link: link.url, key_of=lambda link: link.host
    )

    async def send_links(batch: list[Link]) -> None:
        await send_all(app, links, ((link.host, link.to_bytes()) for link in batch))

    @app.agent(links)
    async def fetch_links(stream: Any) -> None:  # faust.Stream; StreamT lacks noack
        async with open_fetcher(settings) as fetcher:

            async def fetch(link: Link) -> Page:
                return await fetch_patiently(
                    fetcher.fetch, link, should_stop=lambda: app.should_stop
                )

            async def handle(raw: bytes) -> None:
                page, letter = await process_one(
                    raw, Link, fetch, source, attempt_of=lambda link: link.attempt
                )
                if page is not None:
                    await send_all(app, pages, [(page.host, page.to_bytes())])
                if letter is not None:
                    await send_dead_letters(app, dlq, [letter])

            poll = asyncio.create_task(
                poll_forever(
                    fetcher,
                    send_links,
                    tick_s=settings.poll_tick_s,
                    should_stop=lambda: app.should_stop,
                )
            )
            try:
                await run_concurrently(
                    stream,
                    handle,
                    limit=settings.fetch_concurrency * IN_FLIGHT_PER_CONNECTION,
                    shutdown_grace_s=SHUTDOWN_GRACE_S,
                )
            finally:
                poll.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await poll

    return app
