"""Real infrastructure for integration tests: one Tansu broker and one PostgreSQL cluster
per test session (started with the same code as ``newsflow stack up``), a migrated template
database, a fresh database cloned from it per test, and per-test topic names.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import kafka, stack
from shared.db.migrate import upgrade
from shared.db.session import create_engine, session_factory
from tests.support.processes import pipeline_env

TEMPLATE_DB = "newsflow_template"


@pytest.fixture(scope="session")
def stack_home() -> Iterator[Path]:
    # Not pytest's tmp_path: it is mode 0700 and the postgres user must read the data dir.
    home = Path(tempfile.mkdtemp(prefix="newsflow-test-"))
    os.chmod(home, 0o755)
    yield home


@pytest.fixture(scope="session")
def embedded_stack(stack_home: Path) -> Iterator[stack.StackState]:
    result = stack.up(stack_home)
    try:
        yield result.state
    finally:
        stack.down(stack_home)


@pytest.fixture(scope="session")
def kafka_bootstrap(embedded_stack: stack.StackState) -> str:
    assert embedded_stack.kafka is not None and embedded_stack.kafka.endpoint
    return embedded_stack.kafka.endpoint


@pytest.fixture(scope="session")
def postgres_admin_url(embedded_stack: stack.StackState) -> str:
    assert embedded_stack.postgres is not None and embedded_stack.postgres.endpoint
    return embedded_stack.postgres.endpoint


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _with_db(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(_plain(_with_db(url, "postgres")))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def template_database(postgres_admin_url: str) -> str:
    asyncio.run(
        _admin(
            postgres_admin_url,
            f"DROP DATABASE IF EXISTS {TEMPLATE_DB}",
            f"CREATE DATABASE {TEMPLATE_DB}",
        )
    )
    url = _with_db(postgres_admin_url, TEMPLATE_DB)
    upgrade(url)
    return url


@pytest.fixture
def database_url(template_database: str, postgres_admin_url: str) -> Iterator[str]:
    """A freshly migrated, empty database for one test (async SQLAlchemy URL)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(postgres_admin_url, f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}"))
    try:
        yield _with_db(postgres_admin_url, name)
    finally:
        asyncio.run(_admin(postgres_admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the test's database (closed after the test)."""
    engine = create_engine(database_url, pool_size=4)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


@pytest.fixture
def topic_prefix(kafka_bootstrap: str) -> str:
    """A unique prefix; every newsflow topic exists under it (4 partitions each)."""
    prefix = f"t{uuid.uuid4().hex[:8]}."
    asyncio.run(kafka.create_topics(kafka_bootstrap, partitions=4, prefix=prefix))
    return prefix


@pytest.fixture
def loopback_run_env(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, tmp_path: Path
) -> dict[str, str]:
    """Environment for a ``newsflow run`` on the test broker and database that may fetch from
    loopback sites at full speed (the SSRF guard and per-host gap relaxed for it alone)."""
    return pipeline_env(
        bootstrap=kafka_bootstrap,
        database_url=database_url,
        prefix=topic_prefix,
        home=tmp_path / "home",
        NEWSFLOW_ALLOW_PRIVATE_NETWORKS="true",
        NEWSFLOW_HOST_INTERVAL_S="0",
    )
