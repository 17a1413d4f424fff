"""The writer under redelivery, with two workers in one consumer group (real broker + DB)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg

from shared.kafka import make_producer
from shared.topology import ENRICHED
from tests.support.factories import T0, article, enriched, entity
from tests.support.processes import logs, service_env, workers

WAIT_S = 60


async def _fetch(url: str, query: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def _wait_for(url: str, query: str, predicate: Any, *, log_dir: Path) -> list[asyncpg.Record]:
    deadline = time.monotonic() + WAIT_S
    rows: list[asyncpg.Record] = []
    while time.monotonic() < deadline:
        rows = await _fetch(url, query)
        if predicate(rows):
            return rows
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out; last rows={rows}\n{logs(log_dir)}")


async def test_same_message_three_times_two_workers_one_row_and_reenrichment_replaces_links(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, tmp_path: Path
) -> None:
    env = service_env(
        bootstrap=kafka_bootstrap, database_url=database_url, prefix=topic_prefix, home=tmp_path
    )
    first = enriched()
    second_url = "https://news.example.com/2026/11/20/other"
    other = enriched(article(second_url), entities=[entity("GPE:iraq", "GPE", "Iraq", "Iraq")])
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    try:
        with workers(["writer", "writer"], env, tmp_path / "logs"):
            # the same record three times, on different partitions so both workers see copies
            for partition in (0, 1, 2):
                await producer.send_and_wait(
                    topic_prefix + ENRICHED.name,
                    first.to_bytes(),
                    key=first.article.canonical_url.encode(),
                    partition=partition,
                )
            await producer.send_and_wait(
                topic_prefix + ENRICHED.name, other.to_bytes(), key=b"other"
            )
            rows = await _wait_for(
                database_url,
                "SELECT canonical_url FROM articles ORDER BY canonical_url",
                lambda r: len(r) == 2,
                log_dir=tmp_path / "logs",
            )
            assert [r["canonical_url"] for r in rows] == sorted(
                [first.article.canonical_url, second_url]
            )
            await asyncio.sleep(2)  # let the duplicates land too
            links = await _fetch(
                database_url,
                "SELECT e.key, ae.mentions FROM article_entities ae JOIN entities e ON e.id = ae.entity_id "
                "JOIN articles a ON a.id = ae.article_id WHERE a.canonical_url = $1 ORDER BY e.key",
                first.article.canonical_url,
            )
            assert [(r["key"], r["mentions"]) for r in links] == [
                ("GPE:iraq", 2),
                ("GPE:turkiye", 2),
                ("ORG:pkk", 1),
                ("PERSON:mohammed shia al sudani", 1),
            ]
            entities = await _fetch(database_url, "SELECT key FROM entities ORDER BY key")
            assert len(entities) == 4  # Iraq is shared by both articles: one entity
            aliases = await _fetch(
                database_url,
                "SELECT a.alias FROM entity_aliases a JOIN entities e ON e.id = a.entity_id "
                "WHERE e.key = 'GPE:iraq' ORDER BY a.alias",
            )
            assert [r["alias"] for r in aliases] == ["Iraq", "Iraqi"]

            # re-enrichment (newer) replaces the links atomically; a stale copy cannot undo it
            newer = enriched(
                first.article,
                entities=[entity("ORG:pkk", "ORG", "PKK", "PKK", mentions=3)],
                enriched_at=T0 + timedelta(hours=1),
            )
            await producer.send_and_wait(
                topic_prefix + ENRICHED.name, newer.to_bytes(), key=b"k", partition=0
            )
            await producer.send_and_wait(
                topic_prefix + ENRICHED.name, first.to_bytes(), key=b"k", partition=0
            )
            await _wait_for(
                database_url,
                "SELECT e.key, ae.mentions FROM article_entities ae JOIN entities e ON e.id = ae.entity_id "
                "JOIN articles a ON a.id = ae.article_id WHERE a.url = 'https://news.example.com/2026/11/20/strikes'",
                lambda r: [(x["key"], x["mentions"]) for x in r] == [("ORG:pkk", 3)],
                log_dir=tmp_path / "logs",
            )
            await asyncio.sleep(2)
            final = await _fetch(
                database_url,
                "SELECT e.key FROM article_entities ae JOIN entities e ON e.id = ae.entity_id "
                "JOIN articles a ON a.id = ae.article_id WHERE a.canonical_url = $1",
                first.article.canonical_url,
            )
            assert [r["key"] for r in final] == ["ORG:pkk"]
            count = await _fetch(database_url, "SELECT count(*) AS n FROM articles")
            assert count[0]["n"] == 2
    finally:
        await producer.stop()
