"""Writer service: news.enriched.v1 (+ news.dlq.v1, news.pages.v1) -> PostgreSQL, and a
news.stored.v1 confirmation per stored article (faust wiring).

Offsets are acked only after the batch's transaction commits and its confirmations are on the
broker: ``take_events`` acks the events after the loop body returns, and faust commits acked
offsets on its interval. A record
the database rejects is isolated and dead-lettered (:mod:`services.writer.poison`).
"""

from __future__ import annotations

import time
from typing import Any

import faust

from services.writer.archive import archive_events
from services.writer.articles import AliasMemory
from services.writer.dead_letters import store_letter_events
from services.writer.metrics import record_store_batch
from services.writer.poison import store_isolating_poison
from shared.db.session import open_sessions
from shared.faust_app import create_app, send_all, send_dead_letters, stage_topics
from shared.runtime import resolve_database_url
from shared.settings import Settings
from shared.stage import StageInput, decode_events
from shared.topology import DLQ, ENRICHED, PAGES, STORED

SERVICE = "writer"


def build(settings: Settings, *, bootstrap: str) -> faust.App:
    app = create_app(SERVICE, settings, bootstrap=bootstrap)
    topics = stage_topics(app, SERVICE, settings)
    source = StageInput.of(
        SERVICE,
        settings.topic_prefix,
        url_of=lambda e: e.article.url,
        key_of=lambda e: e.article.canonical_url,
    )
    url = resolve_database_url(settings)
    batch, within = settings.writer_batch_size, settings.writer_batch_seconds

    @app.agent(topics[ENRICHED])
    async def store_articles(stream: Any) -> None:  # faust.Stream; StreamT lacks take_events
        known_aliases = AliasMemory()
        async with open_sessions(url) as sessions:
            async for events in stream.take_events(batch, within=within):
                decoded, letters = decode_events(events, ENRICHED.model, source)
                started = time.perf_counter()
                report, rejected = await store_isolating_poison(
                    sessions,
                    decoded,
                    source,
                    parts=settings.writer_parallel_transactions,
                    known_aliases=known_aliases,
                )
                record_store_batch(
                    report,
                    decoded,
                    rejected,
                    topic=ENRICHED.name,
                    records=len(events),
                    seconds=time.perf_counter() - started,
                )
                # committed: confirm before take_events acks the input (at-least-once)
                await send_all(
                    app, topics[STORED], ((s.canonical_url, s.to_bytes()) for s in report.stored)
                )
                await send_dead_letters(app, topics[DLQ], letters + rejected)

    @app.agent(topics[DLQ])
    async def store_failures(stream: Any) -> None:
        async with open_sessions(url, pool_size=2) as sessions:
            async for events in stream.take_events(batch, within=within):
                await store_letter_events(
                    sessions, events, source_topic=DLQ.full_name(settings.topic_prefix)
                )

    if PAGES in topics:  # the page archive is an optional input (settings.writer_archive_pages)

        @app.agent(topics[PAGES])
        async def archive_pages(stream: Any) -> None:
            async with open_sessions(url, pool_size=2) as sessions:
                async for events in stream.take_events(
                    settings.writer_page_batch_size, within=within
                ):
                    await archive_events(sessions, events, topic=PAGES.name)

    return app
