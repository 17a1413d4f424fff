"""The writer's page archive and dead-letter table: one record PostgreSQL refuses costs only
itself, never its batch neighbours (issue 12, 2b), against a real PostgreSQL."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.writer.archive import archive_events
from services.writer.dead_letters import store_letter_events
from shared.messages import DeadLetter, Page
from tests.integration.writer.cli_helpers import db_rows

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
#: A URL longer than a B-tree index row may be, even compressed (PostgreSQL: 54000
#: program_limit_exceeded): hex of a hash chain does not compress below the 2704-byte limit.
HUGE = "https://n.example/" + "".join(
    hashlib.sha256(str(n).encode()).hexdigest() for n in range(250)
)


@dataclass
class Event:
    value: bytes
    headers: tuple[()] = ()


def page(url: str) -> Page:
    return Page(
        url=url,
        final_url=url,
        host="n.example",
        status_code=200,
        html="<html><body>x</body></html>",
        discovered_at=NOW,
        fetched_at=NOW,
    )


def letter(n: int, **fields: object) -> DeadLetter:
    base: dict[str, object] = {
        "stage": "parse",
        "error_kind": "empty",
        "detail": f"letter {n}",
        "url": f"https://n.example/{n}",
        "payload": "{}",
        "failed_at": NOW,
    }
    base.update(fields)
    return DeadLetter(**base)  # type: ignore[arg-type]


async def test_a_page_the_database_refuses_costs_only_itself(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    urls = ["https://n.example/1", HUGE, "https://n.example/2"]
    events = [Event(page(u).to_bytes()) for u in urls]
    written = await archive_events(sessions, events, topic="news.pages.v1")
    assert written == 2
    rows = await db_rows(database_url, "SELECT url FROM pages ORDER BY url")
    assert [r["url"] for r in rows] == ["https://n.example/1", "https://n.example/2"]


async def test_a_dead_letter_the_table_cannot_hold_is_kept_trimmed(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    letters = [letter(1), letter(2, error_kind="x" * 100), letter(3)]
    events = [Event(x.to_bytes()) for x in letters]
    stored = await store_letter_events(sessions, events, source_topic="news.dlq.v1")
    assert stored == 3
    rows = await db_rows(
        database_url, "SELECT detail, error_kind, payload, payload_ref FROM dead_letters"
    )
    by_detail = {r["detail"]: r for r in rows}
    assert set(by_detail) == {"letter 1", "letter 2", "letter 3"}
    assert by_detail["letter 1"]["payload"] == "{}"
    trimmed = by_detail["letter 2"]
    assert trimmed["error_kind"] == "x" * 64 and trimmed["payload"] is None
    assert trimmed["payload_ref"].startswith("payload refused by the database (db_22001")
