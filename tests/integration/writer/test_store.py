"""store.py against a real PostgreSQL: idempotence, stale guard, merges, concurrency."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.writer.articles import write_batch, write_parallel
from services.writer.dead_letters import write_dead_letters
from shared.messages import DeadLetter, EnrichedArticle
from tests.integration.writer.cli_helpers import db_rows
from tests.support.factories import T0, article, enriched, entity

LINKS_SQL = (
    "SELECT a.canonical_url, e.key, x.mentions FROM article_entities x "
    "JOIN articles a ON a.id = x.article_id JOIN entities e ON e.id = x.entity_id "
    "ORDER BY a.canonical_url, e.key"
)


async def test_redelivery_is_a_no_op_and_stale_never_wins(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    first = enriched()
    report = await write_batch(sessions, [first])
    assert (report.articles, report.links, report.skipped_stale) == (1, 4, 0)
    again = await write_batch(sessions, [first, first])
    assert (again.articles, again.skipped_stale) == (0, 1)
    newer = enriched(
        first.article,
        entities=[entity("ORG:pkk", "ORG", "PKK", "PKK", mentions=5)],
        enriched_at=T0 + timedelta(hours=1),
    )
    # newer and older copies in one batch, and an older one later: the newer one stays
    await write_batch(sessions, [newer, first])
    await write_batch(sessions, [first])
    links = await db_rows(database_url, LINKS_SQL)
    assert [(r["key"], r["mentions"]) for r in links] == [("ORG:pkk", 5)]
    rows = await db_rows(database_url, "SELECT enriched_at FROM articles")
    assert rows == [{"enriched_at": T0 + timedelta(hours=1)}]


async def test_links_follow_merge_chains_and_add_up(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    seed = enriched(
        article("https://news.example.com/a"),
        entities=[
            entity("ORG:pkk", "ORG", "PKK"),
            entity("ORG:kurdistan workers party", "ORG", "Kurdistan Workers' Party"),
            entity("ORG:pkk kck", "ORG", "PKK/KCK"),
        ],
    )
    await write_batch(sessions, [seed])
    # a curator merged: kurdistan workers party -> pkk kck -> pkk
    await db_rows(
        database_url,
        "UPDATE entities SET merged_into = (SELECT id FROM entities WHERE key = 'ORG:pkk') "
        "WHERE key = 'ORG:pkk kck'",
    )
    await db_rows(
        database_url,
        "UPDATE entities SET merged_into = (SELECT id FROM entities WHERE key = 'ORG:pkk kck') "
        "WHERE key = 'ORG:kurdistan workers party'",
    )
    later = enriched(
        article("https://news.example.com/b"),
        entities=[
            entity("ORG:pkk", "ORG", "PKK", "PKK", mentions=2, salience=0.3),
            entity(
                "ORG:kurdistan workers party",
                "ORG",
                "Kurdistan Workers' Party",
                "Kurdistan Workers' Party",
                mentions=3,
                salience=0.9,
            ),
        ],
    )
    report = await write_batch(sessions, [later])
    assert report.links == 1
    links = await db_rows(
        database_url,
        "SELECT e.key, x.mentions, x.salience FROM article_entities x "
        "JOIN articles a ON a.id = x.article_id JOIN entities e ON e.id = x.entity_id "
        "WHERE a.canonical_url = 'https://news.example.com/b'",
    )
    assert links == [{"key": "ORG:pkk", "mentions": 5, "salience": 0.9}]
    aliases = await db_rows(
        database_url,
        "SELECT al.alias FROM entity_aliases al JOIN entities e ON e.id = al.entity_id "
        "WHERE e.key = 'ORG:pkk' ORDER BY al.alias",
    )
    assert [r["alias"] for r in aliases] == ["Kurdistan Workers' Party", "PKK"]


async def test_concurrent_writers_with_overlapping_batches_agree(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    shared_entities = [
        entity(f"GPE:place {n}", "GPE", f"Place {n}", f"Place {n}", mentions=1 + n % 3)
        for n in range(30)
    ]
    items = [
        enriched(article(f"https://news.example.com/{n:03d}"), entities=shared_entities)
        for n in range(120)
    ]
    # four writers, each with an overlapping, differently ordered slice; new entities race
    slices = [items[0:80], items[40:120][::-1], items[::2], items[1::2][::-1]]
    batches = [[s[i : i + 20] for i in range(0, len(s), 20)] for s in slices]

    async def writer(chunks: list[list[EnrichedArticle]]) -> None:
        for chunk in chunks:  # each batch itself split into concurrent transactions
            await write_parallel(sessions, chunk, parts=2)

    await asyncio.wait_for(asyncio.gather(*(writer(b) for b in batches)), timeout=60)
    counts = await db_rows(
        database_url,
        "SELECT (SELECT count(*) FROM articles) AS articles, "
        "(SELECT count(*) FROM entities) AS entities, "
        "(SELECT count(*) FROM article_entities) AS links, "
        "(SELECT count(*) FROM entity_aliases) AS aliases",
    )
    assert counts == [{"articles": 120, "entities": 30, "links": 3600, "aliases": 30}]


async def test_stored_outcome_replaces_dead_letter_on_the_link(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    item = enriched()
    await db_rows(database_url, f"INSERT INTO seen_links (url) VALUES ('{item.article.url}')")
    letter = DeadLetter(
        stage="store",
        error_kind="db_P0001",
        detail="x",
        url=item.article.url,
        payload=item.to_bytes().decode(),
        failed_at=T0,
    )
    assert await write_dead_letters(sessions, [letter, letter]) == 1
    assert await db_rows(database_url, "SELECT outcome FROM seen_links") == [
        {"outcome": "dead_letter"}
    ]
    await write_batch(sessions, [item])
    assert await db_rows(database_url, "SELECT outcome FROM seen_links") == [{"outcome": "stored"}]


async def test_duplicates_are_not_stored_but_close_their_link(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    copy = enriched(
        article(
            "https://mirror.example.com/copy",
            status="duplicate",
            duplicate_of="https://news.example.com/2026/11/20/strikes",
        )
    )
    await db_rows(
        database_url, "INSERT INTO seen_links (url) VALUES ('https://mirror.example.com/copy')"
    )
    report = await write_batch(sessions, [copy])
    assert (report.articles, report.duplicates) == (0, 1)
    assert await db_rows(database_url, "SELECT count(*) AS n FROM articles") == [{"n": 0}]
    assert await db_rows(database_url, "SELECT outcome FROM seen_links") == [
        {"outcome": "duplicate"}
    ]


async def test_parallel_parts_write_like_one_batch(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    items = [enriched(article(f"https://news.example.com/p{n}")) for n in range(12)]
    newer = enriched(
        items[0].article,
        entities=[entity("ORG:pkk", "ORG", "PKK", "PKK", mentions=7)],
        enriched_at=T0 + timedelta(hours=1),
    )
    # two copies of one article in the batch: the same part gets both, the newer wins
    report = await write_parallel(sessions, [*items, newer], parts=3)
    assert (report.articles, report.links, report.skipped_stale) == (12, 45, 0)
    assert len(report.article_ids or {}) == 12
    links = await db_rows(database_url, LINKS_SQL)
    assert [(r["key"], r["mentions"]) for r in links if r["canonical_url"].endswith("/p0")] == [
        ("ORG:pkk", 7)
    ]
    again = await write_parallel(sessions, items, parts=3)
    assert (again.articles, again.skipped_stale) == (0, 12)
