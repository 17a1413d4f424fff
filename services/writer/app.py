"""Writer service: news.enriched.v1 (and news.dlq.v1) -> PostgreSQL (faust wiring only).

Offsets are acked only after the batch's transaction commits: ``take_events`` acks the
events after the loop body returns, and faust commits acked offsets on its interval.
"""

from __future__ import annotations

import logging
import time
from functools import partial

import faust

from services.writer.store import store_dead_letters, write_batch, write_dead_letters
from shared.db.session import create_engine, session_factory
from shared.faust_app import create_app, dlq_topic, send_dead_letters
from shared.metrics import END_TO_END_SECONDS, MESSAGES, STAGE_SECONDS
from shared.retry import until_done
from shared.runtime import resolve_database_url
from shared.settings import Settings
from shared.stage import decode_events
from shared.topics import DLQ, ENRICHED

logger = logging.getLogger(__name__)

SERVICE = "writer"

__all__ = ["build", "store_dead_letters"]


def build(settings: Settings, *, bootstrap: str) -> faust.App:
    app = create_app(SERVICE, settings, bootstrap=bootstrap)
    enriched_name = settings.topic_prefix + ENRICHED.name
    enriched = app.topic(enriched_name, key_type=bytes, value_type=bytes)
    dlq = dlq_topic(app, settings)

    @app.agent(enriched)
    async def store_articles(stream: faust.StreamT) -> None:
        engine = create_engine(resolve_database_url(settings))
        sessions = session_factory(engine)
        try:
            async for events in stream.take_events(
                settings.writer_batch_size, within=settings.writer_batch_seconds
            ):
                decoded, letters = decode_events(
                    events,
                    ENRICHED.model,
                    stage="store",
                    source_topic=enriched_name,
                    service=SERVICE,
                )
                items = [item for _raw, item in decoded]
                started = time.perf_counter()
                report = await until_done(
                    partial(write_batch, sessions, items), what="writer batch"
                )
                STAGE_SECONDS.labels("store").observe(time.perf_counter() - started)
                MESSAGES.labels("store", "ok", "-").inc(report.articles)
                MESSAGES.labels("store", "skipped", "stale").inc(report.skipped_stale)
                now = time.time()
                for item in items:
                    END_TO_END_SECONDS.observe(
                        max(0.0, now - item.article.discovered_at.timestamp())
                    )
                logger.debug(
                    "stored batch articles=%s links=%s entities=%s stale=%s",
                    report.articles,
                    report.links,
                    report.entities,
                    report.skipped_stale,
                )
                await send_dead_letters(app, dlq, letters)
        finally:
            await engine.dispose()

    @app.agent(dlq)
    async def store_failures(stream: faust.StreamT) -> None:
        engine = create_engine(resolve_database_url(settings), pool_size=2)
        sessions = session_factory(engine)
        try:
            async for events in stream.take_events(
                settings.writer_batch_size, within=settings.writer_batch_seconds
            ):
                decoded, undecodable = decode_events(
                    events, DLQ.model, stage="store", source_topic=DLQ.name, service=SERVICE
                )
                for letter in undecodable:  # a DLQ record we cannot read is kept verbatim
                    logger.error(
                        "undecodable dead letter dropped into the table as-is: %s", letter.detail
                    )
                letters = [letter for _raw, letter in decoded] + undecodable
                await until_done(
                    partial(write_dead_letters, sessions, letters), what="dead letters"
                )
        finally:
            await engine.dispose()

    return app
