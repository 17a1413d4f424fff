"""``newsflow dlq prune``: old replayed letters go, pending ones stay unless asked (real
PostgreSQL, through the CLI as an operator runs it)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.cli.ops import dlq
from services.writer.dead_letters import write_dead_letters
from shared.messages import DeadLetter
from tests.integration.writer.cli_helpers import cli_env, db_rows, newsflow_json
from tests.support.factories import T0


def _letter(n: int, *, stage: str, kind: str, days_old: int) -> DeadLetter:
    return DeadLetter.model_validate(
        {
            "stage": stage,
            "error_kind": kind,
            "detail": f"failure {n}",
            "url": f"https://news.example.com/{n}",
            "payload": "{}",
            "failed_at": T0 - timedelta(days=days_old),
        }
    )


async def test_prune_keeps_pending_and_recent_letters(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    letters = [
        _letter(1, stage="fetch", kind="http_404", days_old=40),  # old, replayed -> pruned
        _letter(2, stage="fetch", kind="http_404", days_old=35),  # old, replayed -> pruned
        _letter(3, stage="parse", kind="empty", days_old=40),  # old, pending -> kept
        _letter(4, stage="fetch", kind="http_404", days_old=2),  # recent, replayed -> kept
    ]
    await write_dead_letters(sessions, letters)
    await db_rows(
        database_url,
        "UPDATE dead_letters SET replayed_at = now() WHERE url = ANY($1::text[])",
        [letters[i].url for i in (0, 1, 3)],
    )
    env = cli_env(database_url=database_url, home=tmp_path)
    cutoff = (T0 - timedelta(days=30)).isoformat()

    dry = newsflow_json(env, "dlq", "prune", "--before", cutoff, "--dry-run")
    assert dry == [{"stage": "fetch", "error_kind": "http_404", "count": 2, "pending": 0}]
    assert len(await db_rows(database_url, "SELECT id FROM dead_letters")) == 4

    pruned = newsflow_json(env, "dlq", "prune", "--before", cutoff)
    assert pruned == dry
    remaining = await db_rows(database_url, "SELECT url FROM dead_letters ORDER BY url")
    assert [r["url"] for r in remaining] == [letters[2].url, letters[3].url]

    given_up = newsflow_json(env, "dlq", "prune", "--before", cutoff, "--include-pending")
    assert given_up == [{"stage": "parse", "error_kind": "empty", "count": 1, "pending": 1}]
    remaining = await db_rows(database_url, "SELECT url FROM dead_letters")
    assert [r["url"] for r in remaining] == [letters[3].url]


async def test_prune_works_through_more_than_one_chunk(
    sessions: async_sessionmaker[AsyncSession], database_url: str, monkeypatch
) -> None:
    monkeypatch.setattr(dlq, "PRUNE_CHUNK", 3)
    await write_dead_letters(
        sessions, [_letter(n, stage="store", kind="db_22021", days_old=60) for n in range(8)]
    )
    groups = await dlq.prune_dead_letters(sessions, before=T0, stage="store", include_pending=True)
    assert [(g.stage, g.error_kind, g.count, g.pending) for g in groups] == [
        ("store", "db_22021", 8, 8)
    ]
    assert await db_rows(database_url, "SELECT id FROM dead_letters") == []
