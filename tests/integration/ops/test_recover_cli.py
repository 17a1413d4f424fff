"""``newsflow recover`` between two runs: the embedded broker was restarted (``stack down`` /
``stack up``), so its topics and every record in flight are gone; PostgreSQL still knows which
links have no outcome. Real Tansu, real PostgreSQL, through the CLI as an operator runs it."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from shared import stack
from shared.messages import Link
from shared.topology import ALL_TOPICS

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="newsflow-recover-"))
    os.chmod(path, 0o755)
    yield path
    stack.down(path)


def _cli(home: Path, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    env["NEWSFLOW_HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if "--json" in args else done.stderr


async def _sql(url: str, *statements: tuple[str, tuple[Any, ...]]) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for sql, args in statements:
            await conn.execute(sql, *args)
    finally:
        await conn.close()


async def _read(bootstrap: str, topic: str) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    try:
        batches = await consumer.getmany(timeout_ms=3000)
        return [r.value for records in batches.values() for r in records]
    finally:
        await consumer.stop()


def test_recover_recreates_topics_and_redrives_unfinished_links(home: Path) -> None:
    _cli(home, "stack", "up")
    _cli(home, "db", "upgrade")
    url = stack.read_state(home).postgres.endpoint  # type: ignore[union-attr]
    base = "https://news.example.com/a/"
    asyncio.run(
        _sql(
            url,
            ("INSERT INTO feeds (id, url) VALUES (7, 'https://news.example.com/feed')", ()),
            (
                "INSERT INTO seen_links (url, feed_id, first_seen_at, outcome, done_at) VALUES"
                " ($1, 7, now() - interval '2 hours', 'stored', now()),"
                " ($2, 7, now() - interval '2 hours', NULL, NULL),"
                " ($3, 7, now() - interval '1 hour', NULL, NULL)",
                (base + "done", base + "fetched", base + "lost"),
            ),
            (
                "INSERT INTO pages (url, final_url, host, payload_gz, fetched_at)"
                " VALUES ($1, $1, 'news.example.com', $2, now())",
                (base + "fetched", gzip.compress(b'{"page": 1}')),
            ),
        )
    )
    # the broker restarts between two runs: its topics are gone, and `stack up`, which
    # re-creates them, re-drives the unfinished work at once (a later run finds the topics)
    _cli(home, "stack", "down")
    up = _cli(home, "stack", "up", "--json")
    assert sorted(t for t, what in up["topics"].items() if what == "created") == sorted(
        spec.name for spec in ALL_TOPICS
    )
    assert (up["redriven"]["links"], up["redriven"]["pages"]) == (1, 1)
    bootstrap = stack.read_state(home).kafka.endpoint  # type: ignore[union-attr]
    links = [Link.from_bytes(v) for v in asyncio.run(_read(bootstrap, "news.links.v1"))]
    assert [(link.url, link.feed_id, link.host) for link in links] == [
        (base + "lost", 7, "news.example.com")
    ]
    assert asyncio.run(_read(bootstrap, "news.pages.v1")) == [b'{"page": 1}']

    # still without an outcome (nothing consumed them), so recover would send them again
    dry = _cli(home, "recover", "--dry-run", "--json")
    assert (dry["links"], dry["pages"], dry["dry_run"]) == (1, 1, True)
    done = _cli(home, "recover", "--json")
    assert (done["links"], done["pages"], done["total"]) == (1, 1, 2)
    assert done["topics_created"] == []  # `stack up` made them

    # while a pipeline runs, --older-than leaves recent (in-flight) links alone
    recent = _cli(home, "recover", "--older-than", "3h", "--json")
    assert recent["total"] == 0 and recent["topics_created"] == []
    said = _cli(home, "recover", "--older-than", "90m")  # only the 2-hour-old link (its page)
    assert "re-drove 0 link(s) to be fetched and 1 archived page(s)" in said, said
