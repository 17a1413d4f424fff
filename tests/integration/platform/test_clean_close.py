"""A worker stopping cancels its agents (faust does it more than once); closing the database
pool must still finish without an ERROR, and the cancellation must still propagate."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import text

from shared.db.session import open_sessions


async def test_pool_closes_cleanly_when_the_agent_is_cancelled_twice(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    opened = asyncio.Event()

    async def agent() -> None:
        async with open_sessions(database_url, pool_size=3) as sessions:
            async with sessions() as s1, sessions() as s2:  # two pooled connections
                await s1.execute(text("SELECT 1"))
                await s2.execute(text("SELECT 1"))
            opened.set()
            await asyncio.sleep(60)

    caplog.set_level(logging.WARNING)
    task = asyncio.create_task(agent())
    await opened.wait()
    task.cancel()
    for _ in range(20):  # keep cancelling while the pool says goodbye to the server
        await asyncio.sleep(0)
        task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not problems, [r.getMessage() for r in problems]
