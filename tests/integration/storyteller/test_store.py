"""Stories in PostgreSQL: the evaluation set stored by the real writer, then assigned in
batches through the database (advisory locks, candidate index, redelivery, two workers)."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict

import pytest
from sqlalchemy import text

from services.storyteller.assign import Storyboard
from services.storyteller.evaluate import bcubed, items_of, load_set
from services.storyteller.store import assign_articles, load_items
from services.storyteller.text import E5Encoder
from services.writer.articles import write_batch
from tests.support.stories import enriched_from_eval

BATCH = 25


@pytest.fixture(scope="module")
def e5() -> E5Encoder:
    return E5Encoder()


async def _store(sessions, data) -> dict[int, str]:
    """Store the set with the writer; returns article id -> gold story."""
    records = [enriched_from_eval(a) for a in data["articles"]]
    await write_batch(sessions, records)
    gold_by_url = {a["canonical_url"]: a["story"] for a in data["articles"]}
    async with sessions() as session:
        rows = await session.execute(text("SELECT id, canonical_url FROM articles"))
        return {r.id: gold_by_url[r.canonical_url] for r in rows}


async def _ids_in_order(sessions) -> list[int]:
    async with sessions() as session:
        rows = await session.execute(text("SELECT id FROM articles ORDER BY published_at, id"))
        return [r.id for r in rows]


async def _partition(sessions) -> dict[int, int]:
    async with sessions() as session:
        rows = await session.execute(text("SELECT article_id, story_id FROM story_articles"))
        return {r.article_id: r.story_id for r in rows}


def _traps_merged(data, predicted, gold) -> list[str]:
    incidents = defaultdict(set)
    for article, story in predicted.items():
        incidents[story].add(gold[article])
    return [
        t["name"]
        for t in data["traps"]
        if any(len(set(t["incidents"]) & found) > 1 for found in incidents.values())
    ]


async def test_batches_through_the_database_meet_the_gate_and_redelivery_changes_nothing(
    sessions, e5
) -> None:
    data = load_set()
    gold = await _store(sessions, data)
    ids = await _ids_in_order(sessions)
    for start in range(0, len(ids), BATCH):
        await assign_articles(sessions, ids[start : start + BATCH], e5)
    predicted = await _partition(sessions)
    assert set(predicted) == set(ids)  # every stored article has its story
    _, _, f1 = bcubed(predicted, gold)
    assert f1 >= 0.88
    assert _traps_merged(data, predicted, gold) == []
    async with sessions() as session:
        before = (await session.execute(text("SELECT id, version FROM stories"))).all()
        live = await session.scalar(text("SELECT count(*) FROM stories WHERE merged_into IS NULL"))
        keyed = await session.scalar(
            text(
                "SELECT count(DISTINCT story_id) FROM story_keys k JOIN stories s ON s.id = k.story_id WHERE s.merged_into IS NOT NULL"
            )
        )
    assert keyed == 0  # merged stories leave the index
    assert live == len(set(predicted.values()))
    # redelivery, twice, in other batch shapes: nothing changes
    for size in (7, 50):
        for start in range(0, len(ids), size):
            result = await assign_articles(sessions, ids[start : start + size], e5)
            assert result.decisions == []
    assert await _partition(sessions) == predicted
    async with sessions() as session:
        assert (await session.execute(text("SELECT id, version FROM stories"))).all() == before


async def test_story_rows_carry_the_summary(sessions, e5) -> None:
    data = load_set()
    await _store(sessions, data)
    ids = await _ids_in_order(sessions)
    for start in range(0, len(ids), BATCH):
        await assign_articles(sessions, ids[start : start + BATCH], e5)
    async with sessions() as session:
        row = (
            await session.execute(
                text(
                    "SELECT s.* FROM stories s WHERE merged_into IS NULL"
                    " ORDER BY article_count DESC, id LIMIT 1"
                )
            )
        ).one()
        roles = (
            await session.execute(
                text("SELECT role, count(*) FROM story_articles WHERE story_id = :s GROUP BY role"),
                {"s": row.id},
            )
        ).all()
    assert row.article_count >= 8
    assert len(row.sources) >= 4 and set(row.languages) >= {"en"}
    assert row.headline and row.first_report_source
    assert row.top_entities and row.top_entities[0]["count"] >= 2
    counts = dict(roles)
    assert counts["first_report"] == 1
    assert sum(counts.values()) == row.article_count


async def test_two_workers_never_open_two_stories_for_one_incident(sessions, e5) -> None:
    """Pairs of reports of one incident, each sent to its own worker at the same moment.
    Without the advisory locks both workers find no story and both open one."""
    data = load_set()
    gold = await _store(sessions, data)
    ids = await _ids_in_order(sessions)
    async with sessions() as session:
        items = {i.article_id: i for i in await load_items(session, ids, e5)}
    by_incident: dict[str, list[int]] = defaultdict(list)
    for article_id in ids:
        item = items[article_id]
        if len(by_incident[gold[article_id]]) < 2 and item.entities and not item.duplicate_of:
            by_incident[gold[article_id]].append(article_id)
    pairs = []
    for members in by_incident.values():
        if len(members) < 2:
            continue
        board = Storyboard(
            new_id=itertools.count(1).__next__, text_floor=e5.floor, encode=e5.encode
        )
        first, second = (board.assign(items[a]) for a in members)
        if first.story_id == second.story_id:  # one story when run one after the other
            pairs.append(members)
    assert len(pairs) >= 20
    for a, b in pairs:
        await asyncio.gather(assign_articles(sessions, [a], e5), assign_articles(sessions, [b], e5))
    predicted = await _partition(sessions)
    split = [(a, b) for a, b in pairs if predicted[a] != predicted[b]]
    assert split == []


class CountingEncoder:
    """The encoder, recording every text it is asked for."""

    def __init__(self, inner: E5Encoder) -> None:
        self.inner, self.name, self.floor, self.dim = inner, inner.name, inner.floor, inner.dim
        self.texts: list[str] = []

    def encode(self, texts):  # type: ignore[no-untyped-def]
        self.texts += list(texts)
        return self.inner.encode(texts)


async def test_text_is_encoded_once_when_needed_and_kept_across_batches(sessions, e5) -> None:
    """Each batch is a fresh board loaded from PostgreSQL (as after a restart): the stories
    and the texts encoded are exactly those of one in-memory pass, so vectors are kept and a
    decision never depends on how the stream was cut; redelivery encodes nothing."""
    data = load_set()
    await _store(sessions, data)
    ids = await _ids_in_order(sessions)
    counting = CountingEncoder(e5)
    for start in range(0, len(ids), BATCH):
        await assign_articles(sessions, ids[start : start + BATCH], counting)
    memory = CountingEncoder(e5)
    board = Storyboard(
        new_id=itertools.count(1).__next__, text_floor=e5.floor, encode=memory.encode
    )
    for it in items_of(data, memory):
        board.assign(it)
    assert sorted(counting.texts) == sorted(memory.texts)
    assert 0 < len(counting.texts) < len(ids) / 2
    async with sessions() as session:
        rows = await session.execute(
            text(
                "SELECT sa.story_id, a.canonical_url, sa.vector IS NOT NULL AS encoded"
                " FROM story_articles sa JOIN articles a ON a.id = sa.article_id"
            )
        )
        stored = rows.all()
        pending = await session.scalar(
            text("SELECT count(*) FROM stories WHERE pending_article_id IS NOT NULL")
        )
    url_of = {it.article_id: it.canonical_url for it in items_of(data, memory)}
    in_memory: dict[int, set[str]] = defaultdict(set)
    for article_id, story_id in board.story_of_article.items():
        in_memory[board.resolve(story_id)].add(url_of[article_id])
    in_db: dict[int, set[str]] = defaultdict(set)
    for row in stored:
        in_db[row.story_id].add(row.canonical_url)
    assert sorted(map(sorted, in_db.values())) == sorted(map(sorted, in_memory.values()))
    assert sum(row.encoded for row in stored) == len(counting.texts)  # every vector kept
    assert pending == sum(1 for s in board.live() if s.pending is not None) > 0
    for start in range(0, len(ids), 50):
        await assign_articles(sessions, ids[start : start + 50], counting)
    assert len(counting.texts) == len(memory.texts)
