"""``replay_from`` pages through stored rows in chunks without skipping or repeating any."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.cli.ops.replay import replay_from
from services.writer.articles import write_batch
from shared.messages import Article
from shared.topology import ARTICLES
from tests.integration.writer.cli_helpers import ListSink, db_rows
from tests.support.factories import T0, article, enriched


async def test_articles_replay_in_chunks_with_ties_on_stored_at(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    urls = [f"https://news.example.com/{n}" for n in range(7)]
    await write_batch(sessions, [enriched(article(u)) for u in urls])
    # one batch: all rows share stored_at except two moved out of the window and later
    await db_rows(
        database_url,
        "UPDATE articles SET stored_at = $1 WHERE canonical_url = ANY($2::text[])",
        T0 - timedelta(days=1),
        urls[:1],
    )
    await db_rows(
        database_url,
        "UPDATE articles SET stored_at = $1 WHERE canonical_url = ANY($2::text[])",
        T0 + timedelta(days=1),
        urls[6:],
    )
    await db_rows(
        database_url,
        "UPDATE articles SET stored_at = $1 WHERE canonical_url <> ALL($2::text[])",
        T0,
        [urls[0], urls[6]],
    )
    sink = ListSink()
    count = await replay_from(sessions, sink, source="articles", since=T0, prefix="x.", chunk=2)
    sent = [Article.from_bytes(value).canonical_url for _t, _k, value, _h in sink.sent]
    assert sent == urls[1:]  # oldest first, ties broken by id, none twice, none missed
    assert count.sent == 6 and count.topic == "x." + ARTICLES.name
    assert (count.first, count.last) == (T0, T0 + timedelta(days=1))
    assert all(h == [("newsflow-replay", b"articles")] for _t, _k, _v, h in sink.sent)
    limited = ListSink()
    window = await replay_from(
        sessions, limited, source="articles", since=T0, until=T0 + timedelta(hours=1), limit=3
    )
    assert window.sent == 3 and len(limited.sent) == 3
