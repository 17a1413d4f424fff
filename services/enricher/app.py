"""Enricher service: news.articles.v1 -> news.enriched.v1 (faust wiring only)."""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from services.enricher.overrides import OverridesRefresher, load_overrides
from services.enricher.pipeline import Enricher
from shared.db.session import open_sessions
from shared.faust_app import create_app, send_all, send_dead_letters, stage_topics
from shared.retry import until_done
from shared.runtime import resolve_database_url
from shared.settings import Settings
from shared.stage import StageInput, decode_events, run_batch
from shared.topology import ARTICLES, DLQ, ENRICHED

SERVICE = "enricher"
BATCH_SIZE = 16
BATCH_SECONDS = 0.2


def build(settings: Settings, *, bootstrap: str) -> faust.App:
    app = create_app(SERVICE, settings, bootstrap=bootstrap)
    topics = stage_topics(app, SERVICE, settings)
    articles, enriched, dlq = topics[ARTICLES], topics[ENRICHED], topics[DLQ]
    source = StageInput.of(
        SERVICE, settings.topic_prefix, url_of=lambda a: a.url, key_of=lambda a: a.canonical_url
    )

    @app.agent(articles)
    async def enrich_articles(stream: Any) -> None:  # faust.Stream; StreamT lacks take_events
        async with open_sessions(resolve_database_url(settings), pool_size=1) as sessions:

            async def overrides() -> Any:
                async with sessions() as session:
                    return await load_overrides(session)

            enricher = Enricher(
                model=settings.spacy_model,
                max_chars=settings.max_enrich_chars,
                overrides=await until_done(overrides, what="load entity overrides"),
            )
            # the model load is ~1 s of CPU: keep the loop (and group heartbeats) responsive
            await asyncio.get_running_loop().run_in_executor(None, enricher.load)
            refresher = OverridesRefresher(sessions, enricher)  # curation without a restart
            async for events in stream.take_events(BATCH_SIZE, within=BATCH_SECONDS):
                await refresher.maybe_refresh()
                decoded, letters = decode_events(events, ARTICLES.model, source)
                done, failed = run_batch(decoded, enricher.enrich_many, enricher.enrich, source)
                await send_all(
                    app, enriched, ((e.article.canonical_url, e.to_bytes()) for e in done)
                )
                await send_dead_letters(app, dlq, letters + failed)

    return app
