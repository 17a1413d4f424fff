"""The storyteller worker on the real broker and PostgreSQL: the evaluation set's stored
confirmations go through ``newsflow worker storyteller``; redelivered twice, nothing changes;
assigned again from scratch with a kill -9 in the middle, the stories come out the same.

One partition, so the confirmations arrive in publication order on every pass (with several
partitions the interleaving, and so an order-dependent streaming decision, could differ).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from services.storyteller.evaluate import bcubed, load_set
from services.writer.articles import write_batch
from shared import kafka
from shared.messages import StoredArticle, StoryUpdate
from shared.topology import STORED, STORIES, group_id
from tests.support.processes import logs, service_env, workers
from tests.support.stories import enriched_from_eval

WAIT_S = 180.0


async def _partition(sessions) -> dict[int, int]:
    async with sessions() as session:
        rows = await session.execute(text("SELECT article_id, story_id FROM story_articles"))
        return {r.article_id: r.story_id for r in rows}


def _groups(partition: dict[int, int]) -> set[frozenset[int]]:
    by_story: dict[int, set[int]] = {}
    for article, story in partition.items():
        by_story.setdefault(story, set()).add(article)
    return {frozenset(v) for v in by_story.values()}


async def _produce(bootstrap: str, prefix: str, confirmations: list[StoredArticle]) -> None:
    producer = kafka.make_producer(bootstrap)
    await producer.start()
    try:
        for c in confirmations:
            await producer.send(
                STORED.full_name(prefix), c.to_bytes(), key=c.canonical_url.encode()
            )
        await producer.flush()
    finally:
        await producer.stop()


async def _wait_for(sessions, count: int, log_dir: Path, at_least: bool = False) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        async with sessions() as session:
            n = await session.scalar(text("SELECT count(*) FROM story_articles"))
        if n >= count:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"only {n} of {count} articles have a story\n{logs(log_dir)}")


async def _wait_committed(bootstrap: str, prefix: str, offset: int, log_dir: Path) -> None:
    from aiokafka import TopicPartition

    partition = TopicPartition(STORED.full_name(prefix), 0)
    group = group_id("storyteller", prefix=prefix)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        committed = await kafka.committed_offsets(bootstrap, group, [partition])
        if committed.get(partition, 0) >= offset:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"offsets not committed up to {offset}\n{logs(log_dir)}")


async def _story_records(bootstrap: str, prefix: str) -> list[StoryUpdate]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        STORIES.full_name(prefix), bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    records = []
    try:
        batch = await consumer.getmany(timeout_ms=3000, max_records=10_000)
        while batch:
            for messages in batch.values():
                records += [StoryUpdate.from_bytes(m.value) for m in messages]
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
    finally:
        await consumer.stop()
    return records


async def test_redelivery_and_kill9_end_with_the_same_stories(
    kafka_bootstrap: str, database_url: str, sessions, tmp_path: Path
) -> None:
    prefix = f"s{uuid.uuid4().hex[:8]}."
    await kafka.create_topics(kafka_bootstrap, partitions=1, prefix=prefix)
    data = load_set()
    await write_batch(sessions, [enriched_from_eval(a) for a in data["articles"]])
    async with sessions() as session:
        rows = (
            await session.execute(
                text("SELECT id, canonical_url FROM articles ORDER BY published_at, id")
            )
        ).all()
    gold_by_url = {a["canonical_url"]: a["story"] for a in data["articles"]}
    gold = {r.id: gold_by_url[r.canonical_url] for r in rows}
    now = datetime.now(UTC)
    confirmations = [
        StoredArticle(
            article_id=r.id,
            canonical_url=r.canonical_url,
            action="inserted",
            enriched_at=now,
            stored_at=now,
        )
        for r in rows
    ]
    total = len(confirmations)
    env = service_env(
        bootstrap=kafka_bootstrap, database_url=database_url, prefix=prefix, home=tmp_path / "h"
    )
    log_dir = tmp_path / "logs"

    # 1. one uninterrupted pass: the reference stories
    with workers(["storyteller"], env, log_dir / "first"):
        await _produce(kafka_bootstrap, prefix, confirmations)
        await _wait_for(sessions, total, log_dir / "first")
        reference = await _partition(sessions)
        async with sessions() as session:
            versions = (await session.execute(text("SELECT id, version FROM stories"))).all()
        # 2. redelivery, twice: every confirmation again; nothing changes
        await _produce(kafka_bootstrap, prefix, confirmations + confirmations)
        # every redelivered record consumed and its offset committed (so the next pass starts
        # at its own first record, in publication order)
        await _wait_committed(kafka_bootstrap, prefix, 3 * total, log_dir / "first")
    assert await _partition(sessions) == reference
    async with sessions() as session:
        assert (await session.execute(text("SELECT id, version FROM stories"))).all() == versions
    _, _, f1 = bcubed(reference, gold)
    assert f1 >= 0.88
    records = await _story_records(kafka_bootstrap, prefix)
    latest: dict[int, StoryUpdate] = {}
    for record in records:
        if record.story_id not in latest or record.version >= latest[record.story_id].version:
            latest[record.story_id] = record
    board = {
        r.story_id: {a.article_id for a in r.articles} for r in latest.values() if r.kind == "story"
    }
    # a consumer keeping a live board from news.stories.v1 ends with the database's stories
    assert {frozenset(v) for v in board.values()} == _groups(reference)

    # 3. from scratch again, and kill -9 the storyteller in the middle
    async with sessions() as session, session.begin():
        await session.execute(text("TRUNCATE story_keys, story_articles, stories"))
    with workers(["storyteller"], env, log_dir / "killed") as procs:
        await _produce(kafka_bootstrap, prefix, confirmations)
        await _wait_for(sessions, total // 3, log_dir / "killed")
        procs[0].kill()
        procs[0].wait()
    assert len(await _partition(sessions)) < total, "the worker finished before the kill"
    with workers(["storyteller"], env, log_dir / "restarted"):
        await _wait_for(sessions, total, log_dir / "restarted")
    assert _groups(await _partition(sessions)) == _groups(reference)


async def test_ngram_setting_runs_in_the_worker_and_a_switch_on_filled_tables_is_refused(
    kafka_bootstrap: str, database_url: str, sessions, tmp_path: Path
) -> None:
    """NEWSFLOW_STORY_TEXT_ENCODER=ngram: the worker stores 4096-dimension n-gram vectors and
    ends with the stories the in-memory evaluation gives with the same encoder; a worker
    started with e5 on those tables refuses to assign (one encoder's vectors per database)."""
    import itertools

    from services.storyteller.assign import Storyboard
    from services.storyteller.evaluate import items_of
    from services.storyteller.text import make_encoder

    prefix = f"s{uuid.uuid4().hex[:8]}."
    await kafka.create_topics(kafka_bootstrap, partitions=1, prefix=prefix)
    data = load_set()
    await write_batch(sessions, [enriched_from_eval(a) for a in data["articles"]])
    async with sessions() as session:
        rows = (
            await session.execute(
                text("SELECT id, canonical_url FROM articles ORDER BY published_at, id")
            )
        ).all()
    id_of = {r.canonical_url: r.id for r in rows}
    now = datetime.now(UTC)
    confirmations = [
        StoredArticle(
            article_id=r.id,
            canonical_url=r.canonical_url,
            action="inserted",
            enriched_at=now,
            stored_at=now,
        )
        for r in rows
    ]
    env = service_env(
        bootstrap=kafka_bootstrap,
        database_url=database_url,
        prefix=prefix,
        home=tmp_path / "h",
        NEWSFLOW_STORY_TEXT_ENCODER="ngram",
    )
    log_dir = tmp_path / "logs"
    with workers(["storyteller"], env, log_dir / "ngram"):
        await _produce(kafka_bootstrap, prefix, confirmations)
        await _wait_for(sessions, len(confirmations), log_dir / "ngram")
    placed = await _partition(sessions)
    async with sessions() as session:
        sizes = set(
            await session.scalars(
                text("SELECT DISTINCT length(vector) FROM story_articles WHERE vector IS NOT NULL")
            )
        )
    assert sizes == {4096 * 2}  # float16

    encoder = make_encoder("ngram")
    counter = itertools.count(1)
    board = Storyboard(
        new_id=lambda: next(counter), text_floor=encoder.floor, encode=encoder.encode
    )
    items = items_of(data, encoder)
    for item in items:
        board.assign(item)
    url_of = {a["id"]: a["canonical_url"] for a in data["articles"]}
    in_memory = {
        id_of[url_of[it.article_id]]: board.resolve(board.story_of_article[it.article_id])
        for it in items
    }
    assert _groups(placed) == _groups(in_memory)

    # the same tables under E5: refused at start, nothing more placed
    env["NEWSFLOW_STORY_TEXT_ENCODER"] = "e5"
    late = StoredArticle(
        article_id=rows[0].id,
        canonical_url=rows[0].canonical_url,
        action="updated",
        enriched_at=now,
        stored_at=now,
    )
    async with sessions() as session, session.begin():
        await session.execute(
            text("DELETE FROM story_articles WHERE article_id = :id"), {"id": rows[-1].id}
        )
    with workers(["storyteller"], env, log_dir / "e5") as procs:
        await _produce(kafka_bootstrap, prefix, [late, confirmations[-1]])
        # refused before the worker starts: one line and exit 2, not an agent failing in a loop
        assert await asyncio.to_thread(procs[0].wait, 60) == 2, logs(log_dir / "e5")
    assert "NEWSFLOW_STORY_TEXT_ENCODER=e5 makes 384" in logs(log_dir / "e5"), logs(log_dir / "e5")
    assert len(await _partition(sessions)) == len(confirmations) - 1
