"""Fetcher integration fixtures: the unit tests' loopback server plus a migrated database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db.session import create_engine, session_factory
from tests.unit.fetcher.conftest import make_fetcher, server  # noqa: F401  (re-exported fixtures)


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url, pool_size=4)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()
