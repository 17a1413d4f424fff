"""`newsflow run`'s status refresh reads only the run's rows (migration 0007): at 50,000
articles each refresh used to scan the whole articles table several times (110 ms of
PostgreSQL time, every second, growing with the table)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.cli import supervisor as sup
from shared.settings import Settings

pytestmark = pytest.mark.integration

#: articles stored before the run: enough that a scan costs more than the indexes
OLD_ARTICLES = 20_000


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    out, todo = [], [plan]
    while todo:
        node = todo.pop()
        out.append(node)
        todo.extend(node.get("Plans", []))
    return out


async def test_a_status_refresh_does_not_scan_the_articles_table(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    start = datetime.now(UTC)
    async with sessions() as session, session.begin():
        await session.execute(
            text(
                "INSERT INTO articles (url, canonical_url, body_text, content_hash, stored_at,"
                " updated_at, enriched_at)"
                " SELECT 'https://n.example/' || g, 'https://n.example/' || g, 'text ' || g,"
                " md5(g::text), t, t, t FROM generate_series(1, :n) g,"
                " LATERAL (SELECT CAST(:start AS timestamptz) - g * interval '1 minute') AS x(t)"
            ),
            {"n": OLD_ARTICLES, "start": start},
        )
        await session.execute(text("ANALYZE articles"))
    engine = sessions.kw["bind"]
    statements: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_a: Any) -> None:
        statements.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    s = sup.Supervisor(Settings(), once=True)
    try:
        await s._refresh_db(sessions, start - timedelta(minutes=5))  # a run of a few minutes
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert s.progress.stored == 5 and s.progress.unstoried == 5 and not s._db_unreachable
    on_articles = 0
    async with engine.connect() as conn:
        for statement, parameters in statements:
            if "articles" not in statement:
                continue
            plan = (
                await conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement, parameters)
            ).scalar_one()
            plan = json.loads(plan) if isinstance(plan, str) else plan
            for node in _nodes(plan[0]["Plan"]):
                if node.get("Relation Name") == "articles":
                    on_articles += 1
                    assert node["Node Type"] != "Seq Scan", (statement, node)
    assert on_articles >= 4  # stored, updated, without a story, without an alert scan
