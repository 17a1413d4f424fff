"""The parser's dedup write is batched: an article PostgreSQL refuses is dead-lettered alone,
its batch neighbours are resolved and stored (issue 12, 2b), against a real PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.parser.dedup import DedupIndex, resolve_isolated
from shared.messages import Page
from shared.stage import Decoded, StageInput
from tests.support.factories import article

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
#: Too long for a B-tree index row even compressed (PostgreSQL 54000).
HUGE = "https://n.example/" + "".join(
    hashlib.sha256(str(n).encode()).hexdigest() for n in range(250)
)


def page(url: str) -> Page:
    return Page(
        url=url,
        final_url=url,
        host="n.example",
        status_code=200,
        html="<html></html>",
        discovered_at=NOW,
        fetched_at=NOW,
    )


async def test_an_article_the_index_refuses_is_dead_lettered_alone(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    urls = ["https://n.example/one", HUGE, "https://n.example/two"]
    bodies = [f"Story {n}: " + " ".join(f"word{n}x{i}" for i in range(80)) for n in range(3)]
    parsed = [article(u, body=b) for u, b in zip(urls, bodies, strict=True)]
    decoded = [Decoded(page(u).to_bytes(), page(u), 1) for u in urls]
    source = StageInput("parse", "news.pages.v1", "parser", url_of=lambda p: p.url)
    resolved, letters = await resolve_isolated(DedupIndex(sessions), parsed, decoded, source)
    assert sorted(a.canonical_url for a in resolved) == [
        "https://n.example/one",
        "https://n.example/two",
    ]
    assert [(x.url, x.error_kind) for x in letters] == [(HUGE, "db_54000")]
    assert letters[0].payload is not None and HUGE in letters[0].payload
