"""Run ``newsflow`` commands as a user would (a child process) and read their JSON."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from services.cli.ops.sink import Headers
from tests.support import processes

CLI_TIMEOUT_S = 90


def newsflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return processes.newsflow(*args, env=env, timeout=CLI_TIMEOUT_S)


def newsflow_json(env: dict[str, str], *args: str) -> Any:
    result = newsflow(env, *args, "--json")
    assert result.returncode == 0, f"newsflow {' '.join(args)} failed:\n{result.stderr}"
    return json.loads(result.stdout)


def cli_env(*, database_url: str, home: Path, **extra: str) -> dict[str, str]:
    """Environment for a CLI call against a test database (and broker when given)."""
    from tests.support.processes import service_env

    return service_env(
        bootstrap=extra.pop("bootstrap", "127.0.0.1:1"),
        database_url=database_url,
        prefix=extra.pop("prefix", ""),
        home=home,
        **extra,
    )


async def db_rows(database_url: str, query: str, *args: object) -> list[dict[str, Any]]:
    import asyncpg

    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        return [dict(r) for r in await conn.fetch(query, *args)]
    finally:
        await conn.close()


async def wait_rows(
    database_url: str,
    query: str,
    predicate: Any,
    *,
    log_dir: Path | None = None,
    timeout_s: float = 60.0,
) -> list[dict[str, Any]]:
    """Poll *query* until *predicate(rows)*; on timeout fail with the rows and worker logs."""
    import asyncio
    import time

    from tests.support.processes import logs

    deadline = time.monotonic() + timeout_s
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = await db_rows(database_url, query)
        if predicate(rows):
            return rows
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out; last rows={rows}\n{logs(log_dir) if log_dir else ''}")


class ListSink:
    """Collects what replay would produce (the broker boundary) for assertions."""

    def __init__(self) -> None:
        self.queued: list[tuple[str, bytes | None, bytes, Headers]] = []
        self.sent: list[tuple[str, bytes | None, bytes, Headers]] = []

    async def send(self, topic: str, *, key: bytes | None, value: bytes, headers: Headers) -> None:
        self.queued.append((topic, key, value, headers))

    async def flush(self) -> int:
        n = len(self.queued)
        self.sent += self.queued
        self.queued = []
        return n
