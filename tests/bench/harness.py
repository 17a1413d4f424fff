"""Run the real pipeline for the bench, fault and hostile harnesses.

What ``newsflow run`` does, split into steps a harness can interleave with measurements and
faults: bring up the embedded stack (or use given endpoints), migrate, create topics, start
the four ``python -m services.cli worker X`` processes, add feeds, wait until every discovered
link reached the end of the pipeline (``seen_links.done_at``), and read the results back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from services.cli.supervisor import scrape
from shared import kafka, stack

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("fetcher", "parser", "enricher", "writer")
STAGES = (("fetch", "fetcher"), ("parse", "parser"), ("enrich", "enricher"), ("store", "writer"))
STOP_GRACE_S = 20.0
#: settings that make a loopback run possible and fast; the report lists them
RELAXED_POLITENESS = {
    "NEWSFLOW_ALLOW_PRIVATE_NETWORKS": "true",  # every corpus host is a 127.x address
    "NEWSFLOW_HOST_INTERVAL_S": "0",
    "NEWSFLOW_HOST_CONCURRENCY": "4",
    "NEWSFLOW_POLL_TICK_S": "0.5",
}


def newsflow() -> str:
    """The ``newsflow`` command of this environment (the console script beside Python)."""
    return str(Path(sys.executable).with_name("newsflow"))


def plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@dataclass
class Endpoints:
    bootstrap: str
    database_url: str
    home: Path
    started: list[str] = field(default_factory=list)


@contextlib.contextmanager
def embedded_stack(home: Path) -> Iterator[Endpoints]:
    """Start Tansu + PostgreSQL under *home*, migrate; stop what was started on exit."""
    from shared.db.migrate import upgrade

    home.mkdir(parents=True, exist_ok=True)
    os.chmod(home, 0o755)  # the postgres user must reach the data dir
    result = stack.up(home)
    try:
        state = result.state
        assert state.kafka and state.kafka.endpoint and state.postgres and state.postgres.endpoint
        upgrade(state.postgres.endpoint)
        yield Endpoints(state.kafka.endpoint, state.postgres.endpoint, home, result.started)
    finally:
        stack.down(home, only=result.started)


def create_topics(bootstrap: str, *, prefix: str = "", partitions: int = 8) -> None:
    asyncio.run(kafka.create_topics(bootstrap, partitions=partitions, prefix=prefix))


def worker_env(
    ep: Endpoints, *, prefix: str = "", metrics_base: int = 0, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    env.update(
        {
            "NEWSFLOW_KAFKA_BOOTSTRAP": ep.bootstrap,
            "NEWSFLOW_DATABASE_URL": ep.database_url,
            "NEWSFLOW_TOPIC_PREFIX": prefix,
            "NEWSFLOW_HOME": str(ep.home),
            "NEWSFLOW_METRICS_PORT_BASE": str(metrics_base),
            "NEWSFLOW_LOG_FORMAT": "text",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra)
    return env


def free_metrics_base() -> int:
    for base in range(9400, 9800, 10):
        if not any(stack.port_open(base + i) for i in range(len(SERVICES))):
            return base
    return 0


class Workers:
    """The four services as child processes; kill, restart and measure them one by one."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = {}
        self.exits: list[tuple[str, int]] = []  # (service, code) of every unexpected exit
        log_dir.mkdir(parents=True, exist_ok=True)

    def start(
        self, service: str, *, name: str | None = None, **extra_env: str
    ) -> subprocess.Popen[bytes]:
        """Start (or restart) *service*; *name* tells apart several workers of one service."""
        name = name or service
        n = self.restarts.get(name, -1) + 1
        self.restarts[name] = n
        log = open(self.log_dir / f"{name}.{n}.log", "wb")  # noqa: SIM115 - child owns it
        env = dict(self.env, **extra_env)
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "worker", service],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def start_all(self, services: Iterable[str] = SERVICES, **extra_env: str) -> None:
        for service in services:
            self.start(service, **extra_env)

    def log_text(self, service: str) -> str:
        n = self.restarts.get(service, 0)
        path = self.log_dir / f"{service}.{n}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def check_alive(self) -> None:
        for service, proc in self.procs.items():
            code = proc.poll()
            if code is not None and (service, code) not in self.exits:
                self.exits.append((service, code))
                raise RuntimeError(
                    f"{service} exited with code {code}:\n{self.log_text(service)[-3000:]}"
                )

    def kill9(self, service: str) -> None:
        proc = self.procs[service]
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        self.exits.append((service, proc.returncode))

    def pid(self, service: str) -> int:
        return self.procs[service].pid

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def crash_lines(self) -> list[str]:
        """Tracebacks of worker-level crashes in every log (a per-record bug is logged too)."""
        lines = []
        for path in sorted(self.log_dir.glob("*.log")):
            for line in path.read_text(errors="replace").splitlines():
                if "Traceback" in line or "CRITICAL" in line:
                    lines.append(f"{path.name}: {line}")
        return lines


# --- measuring --------------------------------------------------------------------------------


@dataclass
class ProcStats:
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    peak_rss: int = 0


class Sampler:
    """CPU seconds and peak RSS of processes (and their children), sampled in a thread."""

    def __init__(self, pids: dict[str, int], *, interval: float = 0.5) -> None:
        self.interval = interval
        self.stats: dict[str, ProcStats] = {}
        self._procs: dict[str, psutil.Process] = {}
        for name, pid in pids.items():
            with contextlib.suppress(psutil.Error):
                self._procs[name] = psutil.Process(pid)
                self.stats[name] = ProcStats()
        self._stop = False
        self._thread: Any = None
        self.rss_series: dict[str, list[tuple[float, int]]] = {n: [] for n in self._procs}

    def _tree(self, proc: psutil.Process) -> list[psutil.Process]:
        try:
            return [proc, *proc.children(recursive=True)]
        except psutil.Error:
            return [proc]

    def _cpu(self, name: str) -> float:
        total = 0.0
        for p in self._tree(self._procs[name]):
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def _rss(self, name: str) -> int:
        total = 0
        for p in self._tree(self._procs[name]):
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    def __enter__(self) -> Sampler:
        import threading

        for name in self._procs:
            self.stats[name].cpu_start = self._cpu(name)
        started = time.monotonic()

        def loop() -> None:
            while not self._stop:
                for name in self._procs:
                    rss = self._rss(name)
                    self.stats[name].peak_rss = max(self.stats[name].peak_rss, rss)
                    self.rss_series[name].append((time.monotonic() - started, rss))
                time.sleep(self.interval)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join()
        for name in self._procs:
            self.stats[name].cpu_end = self._cpu(name)

    def report(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "cpu_s": round(s.cpu_end - s.cpu_start, 2),
                "peak_rss_mb": round(s.peak_rss / 2**20, 1),
            }
            for name, s in self.stats.items()
        }


#: metrics are on loopback: never through an environment proxy
def scrape_counts(port: int) -> dict[tuple[str, str], float]:
    """``newsflow_messages_total`` summed per (stage, outcome): the supervisor's own scrape."""
    return scrape(port)


# --- the database side ----------------------------------------------------------------------


async def add_feeds(database_url: str, urls: Iterable[str]) -> None:
    """Store feeds due now (what ``newsflow feeds add`` / ``run --feeds`` do, minus discovery)."""
    from services.fetcher.urls import normalize_url

    rows = [(normalize_url(u),) for u in urls]
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        await conn.executemany(
            "INSERT INTO feeds (url, next_poll_at) VALUES ($1, now()) ON CONFLICT DO NOTHING", rows
        )
    finally:
        await conn.close()


async def fetch(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        return list(await conn.fetch(query, *args))
    finally:
        await conn.close()


@dataclass
class Progress:
    feeds: int
    feeds_polled: int
    links: int
    done: int
    stored: int
    dead_letters: int
    #: links with done_at, or with an article or dead letter under their URL even if the
    #: writer's seen_links update missed them (see ``wait_done(count_records=...)``)
    recorded: int = 0

    @property
    def pending(self) -> int:
        return self.links - self.done


PROGRESS_SQL = """
SELECT (SELECT count(*) FROM feeds),
       (SELECT count(*) FROM feeds WHERE last_polled_at IS NOT NULL),
       (SELECT count(*) FROM seen_links),
       (SELECT count(*) FROM seen_links WHERE done_at IS NOT NULL),
       (SELECT count(*) FROM articles),
       (SELECT count(*) FROM dead_letters),
       (SELECT count(*) FROM seen_links s WHERE s.done_at IS NOT NULL
          OR EXISTS (SELECT 1 FROM articles a WHERE a.url = s.url)
          OR EXISTS (SELECT 1 FROM dead_letters d WHERE d.url = s.url))
"""


async def progress(database_url: str) -> Progress:
    row = (await fetch(database_url, PROGRESS_SQL))[0]
    return Progress(*row)


def wait_done(
    database_url: str,
    workers: Workers | None,
    *,
    expect_links: int | None = None,
    timeout: float = 600.0,
    settle_s: float = 2.0,
    poll_s: float = 0.5,
    on_tick: Any = None,
    tolerate_db_errors: bool = False,
    count_records: bool = False,
) -> Progress:
    """Until every feed was polled and every discovered link is done (and, if given, at least
    *expect_links* were discovered), stable for *settle_s*. Raises TimeoutError with progress.

    ``count_records``: a link also counts as done when an article or dead letter exists for
    its URL. The hostile run needs it: the fetcher sends links before its seen_links insert
    commits, so a link that fails fast can be dead-lettered before its row exists, and the
    writer's ``done_at`` update then misses it (reported to the lead)."""
    deadline = time.monotonic() + timeout
    idle_since: float | None = None
    last: Progress | None = None
    while True:
        if workers is not None:
            workers.check_alive()
        try:
            p = asyncio.run(progress(database_url))
        except (OSError, asyncpg.PostgresError):
            if not tolerate_db_errors:
                raise
            p = None
        if p is not None:
            last = p
            finished = (
                p.feeds_polled >= p.feeds
                and (p.links - p.recorded if count_records else p.pending) == 0
                and (expect_links is None or p.links >= expect_links)
            )
            if finished:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= settle_s:
                    return p
            else:
                idle_since = None
        if on_tick is not None:
            on_tick(p)
        if time.monotonic() > deadline:
            raise TimeoutError(f"pipeline not done after {timeout:.0f}s: {last}")
        time.sleep(poll_s)
