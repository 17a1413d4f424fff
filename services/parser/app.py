"""Parser service: news.pages.v1 -> news.articles.v1 (faust wiring only)."""

from __future__ import annotations

from typing import Any

import faust

from services.parser.dedup import DedupIndex, resolve_isolated
from services.parser.pipeline import parse_page, warm_up
from shared.db.session import open_sessions
from shared.faust_app import create_app, send_all, send_dead_letters, stage_topics
from shared.messages import Article, Page
from shared.runtime import resolve_database_url
from shared.settings import Settings
from shared.stage import StageInput, decode_events, run_each
from shared.topology import ARTICLES, DLQ, PAGES

SERVICE = "parser"
BATCH_SIZE = 32
BATCH_SECONDS = 0.2


def build(settings: Settings, *, bootstrap: str) -> faust.App:
    app = create_app(SERVICE, settings, bootstrap=bootstrap)
    topics = stage_topics(app, SERVICE, settings)
    pages, articles, dlq = topics[PAGES], topics[ARTICLES], topics[DLQ]
    source = StageInput.of(
        SERVICE, settings.topic_prefix, url_of=lambda p: p.url, key_of=lambda p: p.host
    )

    def parse(page: Page) -> Article:
        return parse_page(page, settings=settings)

    @app.agent(pages)
    async def parse_pages(stream: Any) -> None:  # faust.Stream; StreamT lacks take_events
        async with open_sessions(resolve_database_url(settings)) as sessions:
            dedup = DedupIndex(sessions, threshold=settings.near_duplicate_threshold)
            warm_up()  # the language model and trafilatura, outside the first page's time limit
            async for events in stream.take_events(BATCH_SIZE, within=BATCH_SECONDS):
                decoded, letters = decode_events(events, PAGES.model, source)
                parsed, failed = run_each(decoded, parse, source)
                if parsed:
                    parsed, refused = await resolve_isolated(dedup, parsed, decoded, source)
                    failed += refused
                await send_all(app, articles, ((a.canonical_url, a.to_bytes()) for a in parsed))
                await send_dead_letters(app, dlq, letters + failed)

    return app
