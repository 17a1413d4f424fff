"""The supervisor survives the loss of its embedded broker or PostgreSQL (issue 13).

Each test runs ``newsflow run --once`` as an operator would (own NEWSFLOW_HOME, embedded stack
started by the run) on a seeded loopback corpus, kills a stack component with SIGKILL once
part of the corpus is stored, and then checks that the run finished on its own with every
article stored exactly once, every link done, no dead letters, and one announcement of the
loss instead of a flood of connection errors.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import stack
from tests.bench import harness
from tests.bench.corpus import Corpus
from tests.bench.server import SiteNetwork, serving

pytestmark = pytest.mark.faults

ARTICLES = int(os.environ.get("NEWSFLOW_FAULTS_ARTICLES", "500"))
SEED = 13
FAULT_AT = 0.3
RUN_TIMEOUT_S = 600.0
COMMAND = [harness.newsflow()]


@pytest.fixture
def home() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="newsflow-recovery-"))
    os.chmod(path, 0o755)
    yield path
    stack.down(path)  # only if the run could not stop its own stack


@pytest.fixture
def network() -> Iterator[SiteNetwork]:
    with serving(Corpus(articles=ARTICLES, hosts=20, seed=SEED)) as net:
        yield net


class Run:
    """``newsflow run --once --json`` in a subprocess; its stderr goes to a file."""

    def __init__(self, home: Path, network: SiteNetwork, tmp_path: Path) -> None:
        self.home = home
        feeds = tmp_path / "feeds.txt"
        feeds.write_text("\n".join(network.feed_urls) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
        env.update(harness.RELAXED_POLITENESS)
        env.update(
            {
                "NEWSFLOW_HOME": str(home),
                "NEWSFLOW_METRICS_PORT_BASE": "0",
                "NEWSFLOW_LOG_FORMAT": "text",
                "NEWSFLOW_ENRICHER_WORKERS": "1",
                "NEWSFLOW_TOPIC_PARTITIONS": "4",
                "PYTHONPATH": str(harness.ROOT),
            }
        )
        self.stderr_path = tmp_path / "run.stderr"
        self._stderr = open(self.stderr_path, "wb")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [*COMMAND, "run", "--once", "--json", "--feeds", str(feeds), "--timeout", "500"],
            env=env,
            cwd=harness.ROOT,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            stdin=subprocess.DEVNULL,
        )
        self.started = time.monotonic()

    def state(self) -> stack.StackState:
        return stack.read_state(self.home)

    def database_url(self) -> str:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.stderr()
            pg = self.state().postgres
            if pg and pg.endpoint and self.state().kafka:
                return pg.endpoint
            time.sleep(0.2)
        raise TimeoutError("the run did not start its stack")

    def stored(self) -> int:
        try:
            rows = asyncio.run(harness.fetch(self.database_url(), "SELECT count(*) FROM articles"))
        except Exception:  # not migrated yet
            return 0
        return int(rows[0][0])

    def wait_stored(self, n: float, timeout: float = 300.0) -> int:
        deadline = time.monotonic() + timeout
        while (stored := self.stored()) < n:
            assert self.proc.poll() is None, self.stderr()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{n} articles not stored in {timeout}s")
            time.sleep(0.3)
        return stored

    def wait(self) -> tuple[int, dict[str, Any]]:
        try:
            out, _ = self.proc.communicate(timeout=RUN_TIMEOUT_S)
        finally:
            self._stderr.close()
        summary = json.loads(out) if out.strip() else {}
        return self.proc.returncode, summary

    def stderr(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")


def _check_exactly_once(url: str, network: SiteNetwork, n: int) -> None:
    rows = asyncio.run(harness.fetch(url, "SELECT canonical_url FROM articles"))
    urls = [r[0] for r in rows]
    assert len(urls) == len(set(urls)) == n, (len(urls), len(set(urls)), n)
    assert set(urls) == {network.article_url(i) for i in range(n)}
    links = asyncio.run(harness.fetch(url, "SELECT outcome, count(*) FROM seen_links GROUP BY 1"))
    assert {r[0]: r[1] for r in links} == {"stored": n}
    dead = asyncio.run(harness.fetch(url, "SELECT stage, error_kind, url FROM dead_letters"))
    assert not dead, [tuple(r) for r in dead[:5]]


def _kill_and_finish(
    component: str, home: Path, network: SiteNetwork, tmp_path: Path
) -> dict[str, Any]:
    run = Run(home, network, tmp_path)
    at = run.wait_stored(FAULT_AT * ARTICLES)
    victim: stack.Component | None = getattr(run.state(), component)
    assert victim is not None and victim.pid and victim.port
    os.kill(victim.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    # the watchdog restarts it on the same port, within seconds
    deadline = time.monotonic() + 60
    while True:
        again: stack.Component | None = getattr(run.state(), component)
        if again is not None and again.pid != victim.pid and stack.probe(again).ok:
            break
        assert time.monotonic() < deadline, run.stderr()[-3000:]
        time.sleep(0.2)
    restarted_s = time.monotonic() - killed_at
    assert again.port == victim.port
    code, summary = run.wait()
    log = run.stderr()
    assert code == 0, log[-3000:]
    assert summary["articles_stored"] == ARTICLES and summary["pending"] == 0, summary
    [recovery] = summary["recoveries"]
    assert recovery["component"] == component and recovery["reason"] == "gone"
    # the run stopped the stack it started; its data stays: look at it with a fresh server
    restarted = stack.up(home, want_kafka=False).state.postgres
    assert restarted is not None and restarted.endpoint
    _check_exactly_once(restarted.endpoint, network, ARTICLES)
    # said once, not a flood; a normal stop afterwards logs no error
    said = [line for line in log.splitlines() if "status feeds" not in line]  # not the panel
    assert sum(f"restarting {component} on the same port" in line for line in said) == 1, log
    assert sum(f"{component} recovered in" in line for line in said) == 1, log
    assert "Traceback" not in log, log[-5000:]
    return {
        "stored_when_killed": at,
        "restarted_on_same_port_s": round(restarted_s, 1),
        "recovery": recovery,
        "total_s": round(time.monotonic() - run.started, 1),
        "log_lines": log.count("\n"),
    }


def test_broker_killed_mid_run_is_restarted_and_every_article_stored_once(
    home: Path, network: SiteNetwork, tmp_path: Path
) -> None:
    result = _kill_and_finish("kafka", home, network, tmp_path)
    assert result["recovery"]["total"] > 0  # records in flight were lost and re-driven
    print(f"\nbroker-kill: {json.dumps(result)}")


def test_postmaster_killed_mid_run_is_restarted_and_nothing_lost(
    home: Path, network: SiteNetwork, tmp_path: Path
) -> None:
    result = _kill_and_finish("postgres", home, network, tmp_path)
    print(f"\npostmaster-kill: {json.dumps(result)}")
