"""Parser service: news.pages.v1 -> news.articles.v1 (faust wiring only)."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import faust

from shared.db.session import create_engine, session_factory
from shared.faust_app import create_app, dlq_topic, send_all, send_dead_letters
from shared.messages import Article, Page
from shared.retry import until_done
from shared.runtime import resolve_database_url
from shared.settings import Settings
from shared.stage import decode_events, run_each
from shared.topology import ARTICLES, PAGES

logger = logging.getLogger(__name__)

SERVICE = "parser"
BATCH_SIZE = 32
BATCH_SECONDS = 0.2


def build(settings: Settings, *, bootstrap: str) -> faust.App:
    from services.parser.dedup import DedupIndex
    from services.parser.pipeline import parse_page, warm_up

    app = create_app(SERVICE, settings, bootstrap=bootstrap)
    pages_name = settings.topic_prefix + PAGES.name
    pages = app.topic(pages_name, key_type=bytes, value_type=bytes)
    articles = app.topic(settings.topic_prefix + ARTICLES.name, key_type=bytes, value_type=bytes)
    dlq = dlq_topic(app, settings)

    def parse(page: Page) -> Article:
        return parse_page(page, settings=settings)

    @app.agent(pages)
    async def parse_pages(stream: Any) -> None:  # faust.Stream; StreamT lacks take_events/noack
        # The agent lives as long as the worker: its resources open here and close on stop.
        engine = create_engine(resolve_database_url(settings))
        dedup = DedupIndex(session_factory(engine), threshold=settings.near_duplicate_threshold)
        # load the language model and trafilatura once, outside the first page's time limit
        warm_up()
        try:
            async for events in stream.take_events(BATCH_SIZE, within=BATCH_SECONDS):
                decoded, letters = decode_events(
                    events, PAGES.model, stage="parse", source_topic=pages_name, service=SERVICE
                )
                parsed, failed = run_each(
                    decoded,
                    parse,
                    stage="parse",
                    source_topic=pages_name,
                    service=SERVICE,
                    url_of=lambda p: p.url,
                    key_of=lambda p: p.host,
                )
                letters += failed
                if parsed:
                    parsed = await until_done(partial(dedup.resolve, parsed), what="parser dedup")
                await send_all(app, articles, ((a.canonical_url, a.to_bytes()) for a in parsed))
                await send_dead_letters(app, dlq, letters)
        finally:
            await engine.dispose()

    return app
