"""The writer's poison isolation (services/writer/poison.py), without a database or broker."""

from __future__ import annotations

import asyncpg
import pytest

from services.writer.articles import StoreReport
from services.writer.poison import isolate_poison
from shared.errors import TransientError
from shared.messages import EnrichedArticle
from shared.stage import Decoded, StageInput
from tests.support.factories import article, enriched

TOPIC = "news.enriched.v1"
SOURCE = StageInput(
    "store",
    TOPIC,
    "writer",
    url_of=lambda e: e.article.url,
    key_of=lambda e: e.article.canonical_url,
)


def records(*urls: str) -> list[Decoded[EnrichedArticle]]:
    items = [enriched(article(url=url)) for url in urls]
    return [Decoded(item.to_bytes(), item, attempt=2) for item in items]


class FakeDb:
    """Stores articles unless their URL is poisoned; can be away for a few calls."""

    def __init__(self, poison: set[str], *, away: int = 0) -> None:
        self.poison = poison
        self.away = away
        self.calls: list[list[str]] = []

    async def write(self, items: list[EnrichedArticle]) -> StoreReport:
        urls = [item.article.url for item in items]
        self.calls.append(urls)
        if self.away:
            self.away -= 1
            raise TransientError("database unavailable", kind="db_57P01")
        if self.poison & set(urls):
            raise asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence")
        return StoreReport(
            articles=len(items),
            article_ids={item.article.canonical_url: i for i, item in enumerate(items)},
        )


async def run(db: FakeDb, batch: list[Decoded[EnrichedArticle]]) -> tuple[StoreReport, list]:
    return await isolate_poison(batch, SOURCE, write_all=db.write, write_one=db.write)


async def test_a_clean_batch_is_one_write_and_no_letters() -> None:
    db = FakeDb(set())
    report, letters = await run(db, records("https://a.example/1", "https://a.example/2"))
    assert report.articles == 2 and letters == []
    assert len(db.calls) == 1


async def test_one_poison_record_costs_itself_only() -> None:
    bad = "https://a.example/bad"
    db = FakeDb({bad})
    batch = records("https://a.example/1", bad, "https://a.example/3")
    report, letters = await run(db, batch)
    assert report.articles == 2
    assert [(letter.url, letter.stage, letter.error_kind) for letter in letters] == [
        (bad, "store", "db_22021")
    ]
    assert letters[0].attempt == 2 and letters[0].source_topic == TOPIC
    assert letters[0].payload == batch[1].raw.decode()
    assert db.calls[0] == [r.item.article.url for r in batch]  # whole batch first
    assert len(db.calls) == 1 + 3  # then one write per record


async def test_a_single_rejected_record_is_not_written_twice() -> None:
    db = FakeDb({"https://a.example/bad"})
    report, letters = await run(db, records("https://a.example/bad"))
    assert report.articles == 0 and len(letters) == 1 and len(db.calls) == 1


async def test_an_outage_is_retried_not_dead_lettered(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_wait(_seconds: float) -> None:
        return None

    monkeypatch.setattr("shared.retry.asyncio.sleep", no_wait)
    db = FakeDb(set(), away=2)
    report, letters = await run(db, records("https://a.example/1", "https://a.example/2"))
    assert report.articles == 2 and letters == []
    assert len(db.calls) == 3
