"""Enricher service: news.articles.v1 -> news.enriched.v1 (faust wiring only)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust

from shared.db.session import create_engine, session_factory
from shared.faust_app import create_app, dlq_topic, send_all, send_dead_letters
from shared.retry import until_done
from shared.runtime import resolve_database_url
from shared.settings import Settings
from shared.stage import decode_events, run_batch
from shared.topology import ARTICLES, ENRICHED

logger = logging.getLogger(__name__)

SERVICE = "enricher"
BATCH_SIZE = 16
BATCH_SECONDS = 0.2


def build(settings: Settings, *, bootstrap: str) -> faust.App:
    from services.enricher.admin import (
        DEFAULT_OVERRIDES_REFRESH_S,
        Overrides,
        load_overrides,
        refresh_overrides,
    )
    from services.enricher.pipeline import Enricher

    app = create_app(SERVICE, settings, bootstrap=bootstrap)
    articles_name = settings.topic_prefix + ARTICLES.name
    articles = app.topic(articles_name, key_type=bytes, value_type=bytes)
    enriched = app.topic(settings.topic_prefix + ENRICHED.name, key_type=bytes, value_type=bytes)
    dlq = dlq_topic(app, settings)

    @app.agent(articles)
    async def enrich_articles(stream: Any) -> None:  # faust.Stream; StreamT lacks take_events
        engine = create_engine(resolve_database_url(settings), pool_size=1)
        sessions = session_factory(engine)

        async def overrides() -> Overrides:
            async with sessions() as session:
                return await load_overrides(session)

        async def refresh() -> bool:
            async with sessions() as session:
                return await refresh_overrides(session, enricher)

        try:
            loaded = await until_done(overrides, what="load entity overrides")
            enricher = Enricher(
                model=settings.spacy_model, max_chars=settings.max_enrich_chars, overrides=loaded
            )
            # the model load is ~1 s of CPU: keep the loop (and group heartbeats) responsive
            await asyncio.get_running_loop().run_in_executor(None, enricher.load)
            refreshed_at = time.monotonic()
            async for events in stream.take_events(BATCH_SIZE, within=BATCH_SECONDS):
                if time.monotonic() - refreshed_at > DEFAULT_OVERRIDES_REFRESH_S:
                    # user curation (entities alias add / merge / split) without a restart
                    refreshed_at = time.monotonic()
                    try:
                        if await refresh():
                            logger.info("entity overrides changed; reloaded")
                    except Exception as exc:  # stale overrides beat a stalled stream
                        logger.warning("could not refresh entity overrides: %s", exc)
                decoded, letters = decode_events(
                    events,
                    ARTICLES.model,
                    stage="enrich",
                    source_topic=articles_name,
                    service=SERVICE,
                )
                done, failed = run_batch(
                    decoded,
                    enricher.enrich_many,
                    enricher.enrich,
                    stage="enrich",
                    source_topic=articles_name,
                    service=SERVICE,
                    url_of=lambda a: a.url,
                    key_of=lambda a: a.canonical_url,
                )
                letters += failed
                await send_all(
                    app, enriched, ((e.article.canonical_url, e.to_bytes()) for e in done)
                )
                await send_dead_letters(app, dlq, letters)
        finally:
            await engine.dispose()

    return app
