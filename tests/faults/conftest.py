"""A private embedded stack for the fault tests (they stop its PostgreSQL and kill workers,
so they must not share the integration session's stack), a fresh migrated database and a
unique topic prefix per test, and a corpus served on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from shared.db.migrate import upgrade
from tests.bench import harness

TEMPLATE_DB = "faults_template"


def _with_db(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(harness.plain_dsn(_with_db(url, "postgres")))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def fault_stack() -> Iterator[harness.Endpoints]:
    home = Path(tempfile.mkdtemp(prefix="newsflow-faults-"))
    try:
        with harness.embedded_stack(home) as ep:
            asyncio.run(
                _admin(
                    ep.database_url,
                    f"DROP DATABASE IF EXISTS {TEMPLATE_DB}",
                    f"CREATE DATABASE {TEMPLATE_DB}",
                )
            )
            upgrade(_with_db(ep.database_url, TEMPLATE_DB))
            yield ep
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def fault_env(fault_stack: harness.Endpoints) -> Iterator[harness.Endpoints]:
    """Endpoints with a fresh database (cloned from the migrated template) and fresh topics."""
    name = f"f_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(fault_stack.database_url, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}"))
    ep = harness.Endpoints(
        fault_stack.bootstrap, _with_db(fault_stack.database_url, name), fault_stack.home
    )
    try:
        yield ep
    finally:
        # best effort: the PostgreSQL test may leave the server briefly restarting
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            asyncio.run(
                _admin(fault_stack.database_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            )
