"""``dlq replay`` for letters whose payload was too large to inline (only ``payload_ref``),
letters that cannot be replayed, dry runs, and attempts (real PostgreSQL; records are
collected at the sink, the boundary where they would be produced)."""

from __future__ import annotations

import gzip
from datetime import timedelta

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.cli.ops.dlq import replay_dead_letters
from services.writer.articles import write_batch
from services.writer.dead_letters import write_dead_letters
from shared.messages import Article, DeadLetter, Link
from shared.topology import ARTICLES, LINKS, PAGES
from tests.integration.writer.cli_helpers import ListSink, db_rows
from tests.support.factories import T0, article, enriched

PREFIX = "p1."
PAGE_URL = "https://news.example.com/big-page"


def _letter(**fields: object) -> DeadLetter:
    data: dict[str, object] = {"detail": "boom", "failed_at": T0}
    data.update(fields)
    return DeadLetter.model_validate(data)


async def test_replay_rebuilds_refs_counts_attempts_and_explains_skips(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    page_json = b'{"url": "%s", "html": "<p>big</p>"}' % PAGE_URL.encode()
    await db_rows(
        database_url,
        "INSERT INTO pages (url, final_url, host, payload_gz, fetched_at) "
        "VALUES ($1, $1, 'news.example.com', $2, $3)",
        PAGE_URL,
        gzip.compress(page_json),
        T0,
    )
    stored = enriched(article("https://news.example.com/stored"))
    await write_batch(sessions, [stored])
    link = Link(url="https://news.example.com/x", host="news.example.com", discovered_at=T0)
    letters = [
        # 1: a parse failure of a huge page: rebuilt from the page archive
        _letter(
            stage="parse",
            error_kind="too_many_nodes",
            source_topic="t9." + PAGES.name,
            url=PAGE_URL,
            payload_ref=PAGE_URL,
            key="news.example.com",
        ),
        # 2: an enrich failure of a huge article that the writer stored earlier
        _letter(
            stage="enrich",
            error_kind="bug_MemoryError",
            source_topic=ARTICLES.name,
            url=stored.article.url,
            key=stored.article.canonical_url,
            payload_ref=stored.article.url,
            failed_at=T0 + timedelta(seconds=1),
        ),
        # 3: a fetch failure with the Link inline, third attempt
        _letter(
            stage="fetch",
            error_kind="http_503",
            source_topic=LINKS.name,
            url=link.url,
            payload=link.to_bytes().decode(),
            attempt=3,
            failed_at=T0 + timedelta(seconds=2),
        ),
        # 4: a huge page that was never archived: cannot be rebuilt
        _letter(
            stage="parse",
            error_kind="too_large",
            source_topic=PAGES.name,
            url="https://news.example.com/gone",
            payload_ref="https://news.example.com/gone",
            failed_at=T0 + timedelta(seconds=3),
        ),
        # 5: a feed failure: no source topic, nothing to re-send
        _letter(stage="feed", error_kind="http_404", failed_at=T0 + timedelta(seconds=4)),
    ]
    assert await write_dead_letters(sessions, letters) == 5

    dry = await replay_dead_letters(sessions, None, prefix=PREFIX)
    assert [r.status for r in dry] == ["would_replay"] * 3 + ["skipped"] * 2
    assert await db_rows(
        database_url, "SELECT count(*) AS n FROM dead_letters WHERE replayed_at IS NOT NULL"
    ) == [{"n": 0}]

    sink = ListSink()
    results = await replay_dead_letters(sessions, sink, prefix=PREFIX)
    assert [(r.stage, r.status) for r in results] == [
        ("parse", "replayed"),
        ("enrich", "replayed"),
        ("fetch", "replayed"),
        ("parse", "skipped"),
        ("feed", "skipped"),
    ]
    assert "not in the page archive" in (results[3].reason or "")
    assert "no known source topic" in (results[4].reason or "")
    topics = [topic for topic, _k, _v, _h in sink.sent]
    assert topics == [PREFIX + PAGES.name, PREFIX + ARTICLES.name, PREFIX + LINKS.name]
    page_value, article_value, link_value = (v for _t, _k, v, _h in sink.sent)
    assert page_value == page_json  # the archived record, byte for byte
    rebuilt = Article.from_bytes(article_value)
    assert rebuilt.body_text == stored.article.body_text
    assert rebuilt.published_source == "jsonld" and rebuilt.title == stored.article.title
    assert orjson.loads(link_value)["attempt"] == 4  # the Link contract carries attempts
    assert dict(sink.sent[2][3])["newsflow-attempt"] == b"4"
    assert sink.sent[1][1] == stored.article.canonical_url.encode()

    pending = await db_rows(
        database_url, "SELECT stage FROM dead_letters WHERE replayed_at IS NULL ORDER BY failed_at"
    )
    assert [r["stage"] for r in pending] == ["parse", "feed"]
    # a second run only revisits what is still pending
    again = await replay_dead_letters(sessions, ListSink(), prefix=PREFIX, stage="fetch")
    assert again == []
