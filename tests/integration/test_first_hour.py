"""A new user's first hour (issue 18), each finding as the command line shows it:

- one run per home: a second run refuses with the first one's pid; `stack down` refuses
  while a run uses the stack; `feeds poll` says the running pipeline picks the feeds up;
  Ctrl-C ends a continuous run with 130;
- `run --once --feeds F` polls and counts exactly F's feeds; `--strict` exits 4 when one
  fails; a timeout says how many feeds were not polled yet;
- arguments are checked before anything starts.

`stack up` migrating and creating topics is tested in platform/test_stack.py.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from services.cli.demo import DemoSite
from shared.run_lock import holder
from tests.support.processes import ROOT, cli_env, newsflow

CLI_MODULE = "services.cli"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(home: Path, **extra: str) -> dict[str, str]:
    return cli_env(home, NEWSFLOW_HOST_INTERVAL_S="0", **extra)


async def _fetch(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


@pytest.fixture
def pipeline_env(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, tmp_path: Path
) -> dict[str, str]:
    return _env(
        tmp_path / "home",
        NEWSFLOW_KAFKA_BOOTSTRAP=kafka_bootstrap,
        NEWSFLOW_DATABASE_URL=database_url,
        NEWSFLOW_TOPIC_PREFIX=topic_prefix,
        NEWSFLOW_ALLOW_PRIVATE_NETWORKS="true",
    )


@pytest.fixture
def continuous_run(pipeline_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    log = open(tmp_path / "run.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", CLI_MODULE, "run"],
        env=pipeline_env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def test_one_run_per_home_and_stack_down_refuses(
    continuous_run: subprocess.Popen[str], pipeline_env: dict[str, str], tmp_path: Path
) -> None:
    home = Path(pipeline_env["NEWSFLOW_HOME"])
    deadline = time.monotonic() + 60
    while holder(home) != continuous_run.pid:
        assert continuous_run.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the run never took its lock"
        time.sleep(0.2)

    second = newsflow("run", "--once", "--timeout", "30", env=pipeline_env)
    assert second.returncode == 2, second.stderr[-3000:]
    assert f"pid {continuous_run.pid}" in second.stderr and "Traceback" not in second.stderr

    down = newsflow("stack", "down", env=pipeline_env)
    assert down.returncode == 2 and f"pid {continuous_run.pid}" in down.stderr, down.stderr
    assert "--force" in down.stderr

    poll = newsflow("feeds", "poll", "--all", env=pipeline_env)
    assert poll.returncode in (0, 1), poll.stderr  # 1: no feed registered yet
    if poll.returncode == 0:
        assert f"running pipeline (pid {continuous_run.pid})" in poll.stderr

    continuous_run.send_signal(signal.SIGINT)
    assert continuous_run.wait(timeout=60) == 130, (tmp_path / "run.log").read_text()[-3000:]
    assert holder(home) is None


def test_once_polls_exactly_the_feeds_file_and_strict_exit(
    pipeline_env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}/feed.xml"
    added = newsflow("feeds", "add", "--no-discover", dead, env=pipeline_env)
    assert added.returncode == 0, added.stderr
    with DemoSite() as site:
        feeds = tmp_path / "feeds.txt"
        feeds.write_text(site.feed_url + "\n")
        result = newsflow(
            "run", "--once", "--feeds", str(feeds), "--json", env=pipeline_env, timeout=300
        )
        assert result.returncode == 0, result.stderr[-6000:]
        summary = json.loads(result.stdout)
        assert summary["feeds"] == summary["feeds_polled"] == 1  # not the registered dead one
        assert summary["articles_stored"] == len(site.articles)
        rows = asyncio.run(_fetch(database_url, "SELECT url, last_polled_at FROM feeds"))
        polled = {r["url"]: r["last_polled_at"] for r in rows}
        assert polled[dead] is None

        # the same feeds again: nothing new to store, and the counts say so
        again = newsflow(
            "run", "--once", "--feeds", str(feeds), "--json", env=pipeline_env, timeout=300
        )
        assert again.returncode == 0, again.stderr[-6000:]
        assert json.loads(again.stdout)["articles_stored"] == 0

    failing = tmp_path / "failing.txt"
    failing.write_text(dead + "\n")
    strict = newsflow(
        "run",
        "--once",
        "--strict",
        "--feeds",
        str(failing),
        "--json",
        env=pipeline_env,
        timeout=300,
    )
    assert strict.returncode == 4, strict.stderr[-6000:]
    assert json.loads(strict.stdout)["feeds_failing"] == 1

    # services take seconds to start: a 1 s timeout ends before the feed is polled, and the
    # message says so (it said "0 link(s) pending" with every feed unpolled)
    hurried = newsflow(
        "run", "--once", "--timeout", "1", "--feeds", str(failing), env=pipeline_env, timeout=120
    )
    assert hurried.returncode == 1, hurried.stderr[-6000:]
    assert "1 of 1 feed(s) not polled yet" in hurried.stderr, hurried.stderr[-3000:]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.txt", "does not exist"),
        (lambda d: d, "is a directory"),
    ],
)
def test_arguments_are_checked_before_anything_starts(
    tmp_path: Path, make: object, message: str
) -> None:
    home = tmp_path / "home"
    path = make(tmp_path)  # type: ignore[operator]
    result = newsflow("run", "--once", "--feeds", str(path), env=_env(home), timeout=60)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert not (home / "stack.json").exists()  # no broker, no PostgreSQL, no migrations


def test_empty_feeds_file_is_a_warning(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n")
    env = _env(
        tmp_path / "home",
        NEWSFLOW_DATABASE_URL=f"postgresql://u@127.0.0.1:{_closed_port()}/x",
        NEWSFLOW_KAFKA_BOOTSTRAP=f"127.0.0.1:{_closed_port()}",
    )
    for args in (["feeds", "import", str(empty)], ["run", "--once", "--feeds", str(empty)]):
        result = newsflow(*args, env=env, timeout=60)
        assert "warning:" in result.stderr and "lists no feed URLs" in result.stderr, result.stderr
