"""article_entities has no foreign keys (migration 0002): what keeps links consistent instead.

Deletes cascade through statement-level triggers, a writer locks the entities it links so a
concurrent delete waits for it, a rejected batch leaves nothing behind, and remembered
aliases are skipped only once their transaction committed.
"""

from __future__ import annotations

import asyncio
from functools import partial

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.writer.articles import AliasMemory, store_enriched, write_batch
from shared.messages import EnrichedArticle
from shared.retry import until_done
from tests.integration.writer.cli_helpers import db_rows
from tests.support.factories import article, enriched, entity

A = "https://news.example.com/2026/11/20/a"
B = "https://news.example.com/2026/11/20/b"


async def _links(database_url: str) -> list[tuple[str, str]]:
    rows = await db_rows(
        database_url,
        "SELECT a.canonical_url, e.key FROM article_entities x "
        "JOIN articles a ON a.id = x.article_id JOIN entities e ON e.id = x.entity_id "
        "ORDER BY 1, 2",
    )
    return [(r["canonical_url"], r["key"]) for r in rows]


async def _orphans(database_url: str) -> int:
    rows = await db_rows(
        database_url,
        "SELECT count(*) AS n FROM article_entities x "
        "WHERE NOT EXISTS (SELECT 1 FROM articles a WHERE a.id = x.article_id) "
        "OR NOT EXISTS (SELECT 1 FROM entities e WHERE e.id = x.entity_id)",
    )
    return int(rows[0]["n"])


async def test_deleting_articles_or_entities_deletes_their_links(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    await write_batch(sessions, [enriched(article(A)), enriched(article(B))])
    assert len(await _links(database_url)) == 8

    await db_rows(database_url, f"DELETE FROM articles WHERE canonical_url = '{A}'")
    assert {url for url, _key in await _links(database_url)} == {B}

    await db_rows(database_url, "DELETE FROM entities WHERE key IN ('ORG:pkk', 'GPE:iraq')")
    assert [key for _url, key in await _links(database_url)] == [
        "GPE:turkiye",
        "PERSON:mohammed shia al sudani",
    ]
    assert await _orphans(database_url) == 0


async def test_truncating_articles_empties_the_links_alone_or_together(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    await write_batch(sessions, [enriched(article(A))])
    # CASCADE: alerts (and later tables) reference articles by foreign key; article_entities
    # has none, so only the statement trigger can empty it
    await db_rows(database_url, "TRUNCATE articles CASCADE")
    assert await db_rows(database_url, "SELECT * FROM article_entities") == []

    await write_batch(sessions, [enriched(article(B))])
    # listing both must not trip over the trigger's own statement
    await db_rows(database_url, "TRUNCATE articles, article_entities CASCADE")
    assert await db_rows(database_url, "SELECT * FROM article_entities") == []


async def test_a_delete_of_a_linked_entity_waits_for_the_writer(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    await write_batch(sessions, [enriched(article(A))])
    deleter = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        await deleter.execute("SET lock_timeout = '300ms'")
        async with sessions() as session, session.begin():
            await store_enriched(session, [enriched(article(B))])
            # the writer's transaction holds FOR KEY SHARE on the entities it linked: a
            # delete cannot slip in between the lookup and the commit
            with pytest.raises(asyncpg.exceptions.LockNotAvailableError):
                await deleter.execute("DELETE FROM entities WHERE key = 'ORG:pkk'")
        # committed: the delete goes through and takes the new links with it
        await deleter.execute("DELETE FROM entities WHERE key = 'ORG:pkk'")
    finally:
        await deleter.close()
    assert ("https://news.example.com/2026/11/20/b", "ORG:pkk") not in await _links(database_url)
    assert len(await _links(database_url)) == 6
    assert await _orphans(database_url) == 0


async def test_a_rejected_batch_leaves_nothing_behind(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    # The hot statements bypass SQLAlchemy; they must still run inside its transaction.
    await db_rows(database_url, f"INSERT INTO seen_links (url) VALUES ('{A}')")
    await db_rows(
        database_url,
        "CREATE FUNCTION reject_all() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "RAISE EXCEPTION 'rejected'; END $$",
    )
    await db_rows(
        database_url,
        "CREATE TRIGGER reject_all BEFORE INSERT ON article_entities "
        "FOR EACH STATEMENT EXECUTE FUNCTION reject_all()",
    )
    memory = AliasMemory()
    with pytest.raises(asyncpg.exceptions.RaiseError):
        await write_batch(sessions, [enriched(article(A))], known_aliases=memory)
    assert await db_rows(database_url, "SELECT outcome, done_at FROM seen_links") == [
        {"outcome": None, "done_at": None}
    ]
    for table in ("articles", "entities", "entity_aliases", "article_entities"):
        assert await db_rows(database_url, f"SELECT 1 FROM {table}") == [], table
    assert len(memory) == 0  # nothing committed, nothing remembered


async def test_remembered_aliases_are_skipped_and_new_ones_stored(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    memory = AliasMemory()
    first = await write_batch(sessions, [enriched(article(A))], known_aliases=memory)
    assert first.aliases == 5 and len(memory) == 5
    second = await write_batch(
        sessions,
        [
            enriched(
                article(B),
                entities=[
                    entity("GPE:turkiye", "GPE", "Türkiye", "Turkish", "Turkey"),
                    entity("ORG:pkk", "ORG", "PKK", "PKK"),
                ],
            )
        ],
        known_aliases=memory,
    )
    assert second.aliases == 1  # only "Turkey" was not stored before
    rows = await db_rows(
        database_url,
        "SELECT al.alias FROM entity_aliases al JOIN entities e ON e.id = al.entity_id "
        "WHERE e.key = 'GPE:turkiye' ORDER BY 1",
    )
    assert [r["alias"] for r in rows] == ["Turkey", "Turkish"]


async def test_concurrent_writers_leave_no_orphan_links(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    # a curator deletes entities by hand while two writers link them
    items = [
        enriched(
            article(f"https://news.example.com/{n:03d}"),
            entities=[entity(f"GPE:place {k}", "GPE", f"Place {k}") for k in range(n % 7, 20)],
        )
        for n in range(60)
    ]

    async def writer(chunk: list[EnrichedArticle]) -> None:
        for i in range(0, len(chunk), 5):
            # as the service does: an entity deleted under the batch is a transient error
            await until_done(partial(write_batch, sessions, chunk[i : i + 5]), what="batch")

    async def curator() -> None:
        for k in range(0, 20, 3):
            await asyncio.sleep(0.02)
            await db_rows(database_url, f"DELETE FROM entities WHERE key = 'GPE:place {k}'")

    await asyncio.wait_for(
        asyncio.gather(writer(items[0::2]), writer(items[1::2]), curator()), timeout=60
    )
    assert await _orphans(database_url) == 0
