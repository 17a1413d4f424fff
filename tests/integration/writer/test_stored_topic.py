"""news.stored.v1: the writer confirms each stored article after its transaction commits
(real broker + PostgreSQL, one writer worker)."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.kafka import make_producer
from shared.messages import StoredArticle
from shared.topology import ENRICHED, STORED
from tests.support.factories import T0, article, enriched, entity
from tests.support.processes import logs, service_env, workers

WAIT_S = 60
PARTITIONS = 4  # what the topic_prefix fixture creates


async def _article_id(database_url: str, canonical_url: str) -> int:
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        return int(
            await conn.fetchval("SELECT id FROM articles WHERE canonical_url = $1", canonical_url)
        )
    finally:
        await conn.close()


async def _read_until(
    consumer: AIOKafkaConsumer, got: list[StoredArticle], count: int, log_dir: Path
) -> None:
    deadline = time.monotonic() + WAIT_S
    while len(got) < count:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out with {got}\n{logs(log_dir)}")
        for records in (await consumer.getmany(timeout_ms=300)).values():
            got.extend(StoredArticle.from_bytes(record.value) for record in records)


async def test_a_stored_article_is_confirmed_once_per_delivery_and_duplicates_are_not(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, tmp_path: Path
) -> None:
    env = service_env(
        bootstrap=kafka_bootstrap, database_url=database_url, prefix=topic_prefix, home=tmp_path
    )
    log_dir = tmp_path / "logs"
    first = enriched()
    url = first.article.canonical_url
    duplicate = enriched(
        article(
            "https://mirror.example.com/strikes",
            status="duplicate",
            duplicate_of=url,
        )
    )
    newer = enriched(
        first.article,
        entities=[entity("ORG:pkk", "ORG", "PKK", "PKK", mentions=3)],
        enriched_at=T0 + timedelta(hours=1),
    )
    topic = STORED.full_name(topic_prefix)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    producer = make_producer(kafka_bootstrap)
    await consumer.start()
    await producer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        got: list[StoredArticle] = []

        async def send(item: object) -> None:
            await producer.send_and_wait(
                ENRICHED.full_name(topic_prefix),
                item.to_bytes(),  # type: ignore[attr-defined]
                key=item.article.canonical_url.encode(),  # type: ignore[attr-defined]
            )

        with workers(["writer"], env, log_dir):
            await send(first)
            await _read_until(consumer, got, 1, log_dir)
            await send(duplicate)  # an exact duplicate stores no row: no confirmation
            await send(first)  # a redelivery: confirmed again, unchanged
            await _read_until(consumer, got, 2, log_dir)
            await send(newer)
            await _read_until(consumer, got, 3, log_dir)
            await asyncio.sleep(2)  # nothing else may arrive
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got.extend(StoredArticle.from_bytes(record.value) for record in records)
        article_id = await _article_id(database_url, url)
        assert [(s.canonical_url, s.article_id, s.action) for s in got] == [
            (url, article_id, "inserted"),
            (url, article_id, "unchanged"),
            (url, article_id, "updated"),
        ]
        assert [s.enriched_at for s in got] == [
            first.enrichment.enriched_at,
            first.enrichment.enriched_at,
            newer.enrichment.enriched_at,
        ]
        assert got[0].enrichment_model == first.enrichment.model
        assert got[2].rules_version == newer.enrichment.rules_version
        assert all(s.schema_version == 1 for s in got)
    finally:
        await producer.stop()
        await consumer.stop()
