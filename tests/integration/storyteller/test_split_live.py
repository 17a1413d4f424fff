"""Splits while the storyteller runs: two ``newsflow worker storyteller`` processes on the
real broker assign the evaluation set as its confirmations keep arriving, and an analyst
splits stories with ``newsflow stories split`` in the middle of it.

At the end every split is intact (the moved articles share one story, which none of the
articles kept in the split story is in), no article is in two stories (in PostgreSQL and on
a board rebuilt from ``news.stories.v1``), every story's row agrees with its members, and
later articles joined the split stories.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import TopicPartition
from sqlalchemy import text

from services.storyteller.evaluate import load_set
from services.writer.articles import write_batch
from shared import kafka
from shared.messages import StoredArticle, StoryUpdate
from shared.topology import STORED, group_id
from tests.integration.storyteller.test_correct import _check_consistent, _story_of
from tests.integration.storyteller.test_service import _story_records
from tests.integration.writer.cli_helpers import cli_env, newsflow
from tests.support.processes import logs, service_env, workers
from tests.support.stories import enriched_from_eval

WAIT_S = 240.0
PARTITIONS = 2
#: confirmations sent before the first split, then per chunk while splitting
HEAD = 20
CHUNK = 4
CHUNK_PAUSE_S = 0.4
#: incidents (of the evaluation set) split in two halves once half their reports are in:
#: their later reports resemble both halves, so without pins they would merge them again
INCIDENTS = ("drone-sinjar-2", "isis-kirkuk", "clash-tal-rifaat")


async def _produce(producer, prefix: str, confirmations, ends: dict[int, int]) -> None:
    for c in confirmations:
        meta = await producer.send_and_wait(
            STORED.full_name(prefix), c.to_bytes(), key=c.canonical_url.encode()
        )
        ends[meta.partition] = max(ends.get(meta.partition, 0), meta.offset + 1)


async def _split_when_half_told(sessions, env, told: list[int], log_dir: Path) -> dict:
    """Once the first half of an incident's reports (*told*, in publication order) have
    their story, split every other member of that story (not the first report) off, while
    the incident's later reports are still on their way. A story merged or grown meanwhile
    is looked at again (the refusal names the reason)."""
    half = told[: len(told) // 2]

    async def half_told() -> bool:
        story_of = await _story_of(sessions)
        return all(a in story_of for a in half)

    await _wait(half_told, f"articles {half}", log_dir)
    for _ in range(5):
        async with sessions() as session:
            story = await session.scalar(
                text("SELECT story_id FROM story_articles WHERE article_id = :a"), {"a": told[0]}
            )
            members = list(
                (
                    await session.execute(
                        text(
                            "SELECT article_id FROM story_articles WHERE story_id = :id"
                            " ORDER BY published_at, article_id"
                        ),
                        {"id": story},
                    )
                ).scalars()
            )
        moved = members[1::2]
        result = await asyncio.to_thread(
            newsflow, env, "stories", "split", str(story), *map(str, moved), "--json"
        )
        if result.returncode == 0:
            return {
                "story": story,
                "new": json.loads(result.stdout)["other_id"],
                "moved": set(moved),
                "kept": set(members) - set(moved),
                "at": datetime.now(UTC),
            }
        assert result.returncode == 2 and "story" in result.stderr, result.stderr
    raise AssertionError(f"no split of {told} succeeded in five tries")


async def _wait(condition, what: str, log_dir: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if await condition():
            return
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}\n{logs(log_dir)}")


async def test_splits_while_articles_keep_arriving_stay_intact(
    kafka_bootstrap: str, database_url: str, sessions, tmp_path: Path
) -> None:
    prefix = f"l{uuid.uuid4().hex[:8]}."
    await kafka.create_topics(kafka_bootstrap, partitions=PARTITIONS, prefix=prefix)
    data = load_set()
    await write_batch(sessions, [enriched_from_eval(a) for a in data["articles"]])
    async with sessions() as session:
        rows = (
            await session.execute(
                text("SELECT id, canonical_url FROM articles ORDER BY published_at, id")
            )
        ).all()
    gold = {a["canonical_url"]: a["story"] for a in data["articles"]}
    incidents = {name: [r.id for r in rows if gold[r.canonical_url] == name] for name in INCIDENTS}
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
    cli = cli_env(
        database_url=database_url, home=tmp_path / "c", bootstrap=kafka_bootstrap, prefix=prefix
    )
    log_dir = tmp_path / "logs"
    ends: dict[int, int] = {}

    async def assigned() -> int:
        async with sessions() as session:
            return int(await session.scalar(text("SELECT count(*) FROM story_articles")))

    producer = kafka.make_producer(kafka_bootstrap)
    await producer.start()
    try:
        with workers(["storyteller", "storyteller"], env, log_dir):
            await _produce(producer, prefix, confirmations[:HEAD], ends)

            async def head_done() -> bool:
                return await assigned() >= HEAD

            await _wait(head_done, f"the first {HEAD} stories", log_dir)

            # each target incident's later reports are held back until its split is made
            # (everything else keeps flowing meanwhile), then sent: they arrive after the split
            later = {a: name for name, ids in incidents.items() for a in ids[len(ids) // 2 :]}
            released = {name: asyncio.Event() for name in INCIDENTS}
            held: dict[str, list[StoredArticle]] = {name: [] for name in INCIDENTS}

            async def keep_sending() -> None:
                flowing = confirmations[HEAD:]
                while flowing or any(held.values()):
                    chunk = []
                    for name in INCIDENTS:
                        if released[name].is_set():
                            chunk += held[name]
                            held[name] = []
                    while flowing and len(chunk) < CHUNK:
                        c = flowing.pop(0)
                        name = later.get(c.article_id)
                        if name is not None and not released[name].is_set():
                            held[name].append(c)
                        else:
                            chunk.append(c)
                    await _produce(producer, prefix, chunk, ends)
                    await asyncio.sleep(CHUNK_PAUSE_S)

            async def split(name: str) -> dict:
                try:
                    return await _split_when_half_told(sessions, cli, incidents[name], log_dir)
                finally:
                    released[name].set()

            sender = asyncio.create_task(keep_sending())
            midway = await assigned()
            splits = list(await asyncio.gather(*(split(name) for name in INCIDENTS)))
            await sender

            async def all_done() -> bool:
                return await assigned() >= total

            await _wait(all_done, "every article's story", log_dir)

            group = group_id("storyteller", prefix=prefix)
            partitions = [TopicPartition(STORED.full_name(prefix), p) for p in ends]

            async def all_acked() -> bool:
                committed = await kafka.committed_offsets(kafka_bootstrap, group, partitions)
                return all(committed.get(tp, 0) >= ends[tp.partition] for tp in partitions)

            await _wait(all_acked, "the storytellers' offsets", log_dir)
    finally:
        await producer.stop()

    assert midway < total
    story_of = await _story_of(sessions)
    assert len(story_of) == total
    for split in splits:
        moved_to = {story_of[a] for a in split["moved"]}
        assert len(moved_to) == 1, f"the moved articles were scattered: {split}"
        kept_in = {story_of[a] for a in split["kept"]}
        assert not moved_to & kept_in, f"the split was undone: {split}"
    await _check_consistent(sessions)

    # later articles still joined the split stories (they are not frozen)
    async with sessions() as session:
        joined = await session.scalar(
            text(
                "SELECT count(*) FROM story_articles m JOIN stories s ON s.id = m.story_id"
                " WHERE s.pin IS NOT NULL AND m.pinned_at IS NULL"
                " AND m.assigned_at > :first_split"
            ),
            {"first_split": min(s["at"] for s in splits)},
        )
    assert joined > 0

    # a consumer of news.stories.v1 keeping the newest record per story: no article in two
    # stories, and the database's partition
    records: list[StoryUpdate] = await _story_records(kafka_bootstrap, prefix)
    latest: dict[int, StoryUpdate] = {}
    for record in records:
        if record.story_id not in latest or record.version > latest[record.story_id].version:
            latest[record.story_id] = record
    board: dict[int, int] = {}
    for record in latest.values():
        if record.kind != "story":
            continue
        for article in record.articles:
            assert article.article_id not in board, f"article {article.article_id} twice"
            board[article.article_id] = record.story_id
    assert board == story_of
    assert any(r.kind == "split" for r in records)
    assert {s["story"] for s in splits} <= {r.story_id for r in records if r.kind == "split"}
