"""Run the real pipeline for the bench, fault and hostile harnesses.

:class:`Run` is ``newsflow run`` itself as a child (the bench measures exactly what ``make
run`` runs). :class:`Workers` is what ``newsflow run`` does, split into steps the fault and
hostile harnesses interleave with faults: bring up the embedded stack (or use given
endpoints), migrate, create topics, start the four ``python -m services.cli worker X``
processes (the stages that carry a link to a stored article), add feeds, wait until every
discovered link reached the end of the pipeline (``seen_links.done_at``), and read the
results back.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import itertools
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


# --- the real `newsflow run` ----------------------------------------------------------------


@dataclass(frozen=True)
class RunWorker:
    """One worker ``newsflow run`` started: ``label`` tells apart several of one service
    (``enricher``, ``enricher2``)."""

    label: str
    service: str
    pid: int
    metrics_port: int

    @property
    def stage(self) -> str:
        from shared.topology import BY_SERVICE

        return BY_SERVICE[self.service].stage


class Run:
    """``newsflow run`` (continuous, embedded stack) as a child process: exactly the process
    set of ``make run`` (every service of the topology, as many enrichers as it starts), its
    watchdog, lag and retention loops included. Feeds are added to its database directly.

    *env* is the whole environment of the run (the bench's politeness and worker count)."""

    def __init__(self, home: Path, env: dict[str, str], log_path: Path) -> None:
        self.home = home
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, expect_workers: int, timeout: float = 240.0) -> Endpoints:
        """Start it and wait until its stack answers and all *expect_workers* workers run."""
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [newsflow(), "run"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            self.check_alive()
            state = stack.read_state(self.home)
            if (
                state.kafka
                and state.kafka.endpoint
                and state.postgres
                and state.postgres.endpoint
                and len(self.workers()) >= expect_workers
            ):
                return Endpoints(state.kafka.endpoint, state.postgres.endpoint, self.home)
            if time.monotonic() > deadline:
                raise TimeoutError(f"newsflow run not up after {timeout:.0f}s; see {self.log_path}")
            time.sleep(0.5)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def workers(self) -> list[RunWorker]:
        """The workers it runs now, from its children's command lines and environments."""
        from shared.topology import SERVICES as ALL_SERVICES

        found: list[tuple[str, int, int]] = []
        with contextlib.suppress(psutil.Error):
            for child in psutil.Process(self.pid).children():
                with contextlib.suppress(psutil.Error):
                    cmd = child.cmdline()
                    if "worker" not in cmd or cmd.index("worker") + 1 >= len(cmd):
                        continue
                    service = cmd[cmd.index("worker") + 1]
                    base = int(child.environ().get("NEWSFLOW_METRICS_PORT_BASE", "0") or 0)
                    port = base + ALL_SERVICES.index(service) if base else 0
                    found.append((service, child.pid, port))
        out: list[RunWorker] = []
        for service, pid, port in sorted(found, key=lambda f: f[1]):
            n = sum(1 for w in out if w.service == service)
            out.append(RunWorker(service + (str(n + 1) if n else ""), service, pid, port))
        return out

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"newsflow run exited with code {self.proc.returncode}:\n{tail}")

    def stop(self) -> int | None:
        """SIGINT as an operator's Ctrl-C; it stops its workers and its stack. Exit code."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=STOP_GRACE_S * 3)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            return self.proc.wait()

    def crash_lines(self) -> list[str]:
        return [
            line
            for line in self.log_path.read_text(errors="replace").splitlines()
            if "Traceback" in line or "CRITICAL" in line
        ]


# --- measuring --------------------------------------------------------------------------------


@dataclass
class ProcStats:
    cpu_start: float = 0.0
    cpu_end: float = 0.0
    peak_rss: int = 0


class Sampler:
    """CPU seconds and peak RSS of processes (and their children), sampled in a thread.

    *flat* names are measured without their children (``newsflow run`` itself: its children
    are the workers and the broker, measured under their own names). Every tick also records
    each name's CPU seconds so far and the whole machine's busy CPU seconds
    (``cpu_series``): the bench's CPU utilisation profile."""

    def __init__(
        self, pids: dict[str, int], *, interval: float = 0.5, flat: Iterable[str] = ()
    ) -> None:
        self.interval = interval
        self.stats: dict[str, ProcStats] = {}
        self._procs: dict[str, psutil.Process] = {}
        self._flat = set(flat)
        for name, pid in pids.items():
            with contextlib.suppress(psutil.Error):
                self._procs[name] = psutil.Process(pid)
                self.stats[name] = ProcStats()
        self._stop = False
        self._thread: Any = None
        self.rss_series: dict[str, list[tuple[float, int]]] = {n: [] for n in self._procs}
        #: (wall clock time, {name: CPU seconds so far}, machine busy CPU seconds so far)
        self.cpu_series: list[tuple[float, dict[str, float], float]] = []
        #: (wall clock time, {name: runnable seconds so far}): see :meth:`_runnable`
        self.runnable_series: list[tuple[float, dict[str, float]]] = []

    def _tree(self, name: str) -> list[psutil.Process]:
        proc = self._procs[name]
        if name in self._flat:
            return [proc]
        try:
            return [proc, *proc.children(recursive=True)]
        except psutil.Error:
            return [proc]

    def _cpu(self, name: str, tree: list[psutil.Process] | None = None) -> float:
        total = 0.0
        tree = tree if tree is not None else self._tree(name)
        for p in tree:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
                if p is tree[0] and name not in self._flat:
                    # children that already exited (PostgreSQL backends) keep counting
                    total += t.children_user + t.children_system
        return total

    @staticmethod
    def _rss(tree: list[psutil.Process]) -> int:
        total = 0
        for p in tree:
            with contextlib.suppress(psutil.Error):
                total += p.memory_info().rss
        return total

    @staticmethod
    def machine_busy_s() -> float:
        """CPU seconds every core of the machine spent not idle since boot."""
        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0)

    @staticmethod
    def _schedstat(path: str) -> int:
        """Nanoseconds on a CPU plus waiting in the run queue, from a schedstat file."""
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(path) as f:
                on_cpu, queued = f.read().split()[:2]
            return int(on_cpu) + int(queued)
        return 0

    def _runnable(self, tree: list[psutil.Process]) -> float:
        """Seconds the threads of *tree* were runnable so far: on a CPU or waiting in the
        run queue for one (``/proc/PID/task/TID/schedstat``). Unlike CPU time this does not
        shrink when other work shares the machine: a process runnable all the time had
        work all the time, one that is not waited (for input, the broker, the database)."""
        total = 0
        for p in tree:
            for path in glob.glob(f"/proc/{p.pid}/task/*/schedstat"):
                total += self._schedstat(path)
        return total / 1e9

    def _tick(self, started: float | None = None) -> None:
        """One sample: CPU, runnable time (whole process and its main thread, a worker's
        event loop) and, with *started*, RSS, of every name; the tree is listed once."""
        now = time.time()
        cpu: dict[str, float] = {}
        runnable: dict[str, float] = {}
        for name, proc in self._procs.items():
            tree = self._tree(name)
            cpu[name] = self._cpu(name, tree)
            runnable[name] = self._runnable(tree)
            runnable[f"{name}:main"] = (
                self._schedstat(f"/proc/{proc.pid}/task/{proc.pid}/schedstat") / 1e9
            )
            if started is not None:
                rss = self._rss(tree)
                self.stats[name].peak_rss = max(self.stats[name].peak_rss, rss)
                self.rss_series[name].append((time.monotonic() - started, rss))
        self.cpu_series.append((now, cpu, self.machine_busy_s()))
        self.runnable_series.append((now, runnable))

    def __enter__(self) -> Sampler:
        import threading

        for name in self._procs:
            self.stats[name].cpu_start = self._cpu(name)
        self._tick()
        started = time.monotonic()

        def loop() -> None:
            while not self._stop:
                self._tick(started)
                time.sleep(self.interval)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join()
        for name in self._procs:
            self.stats[name].cpu_end = self._cpu(name)
        self._tick()

    def report(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "cpu_s": round(s.cpu_end - s.cpu_start, 2),
                "peak_rss_mb": round(s.peak_rss / 2**20, 1),
            }
            for name, s in self.stats.items()
        }

    def runnable_at(self, when: float) -> dict[str, float]:
        """Each name's runnable seconds at wall time *when*, interpolated between ticks."""
        series = self.runnable_series
        if not series:
            return {}
        if when <= series[0][0]:
            return dict(series[0][1])
        for (t0, r0), (t1, r1) in itertools.pairwise(series):
            if t0 <= when <= t1:
                f = (when - t0) / max(t1 - t0, 1e-9)
                return {n: r0[n] + (r1.get(n, r0[n]) - r0[n]) * f for n in r0}
        return dict(series[-1][1])

    def cpu_at(self, when: float) -> tuple[dict[str, float], float]:
        """Each name's CPU seconds and the machine's busy seconds at wall time *when*,
        interpolated between ticks (so a window's CPU matches its wall time exactly)."""
        series = self.cpu_series
        if not series:
            return {}, 0.0
        if when <= series[0][0]:
            return dict(series[0][1]), series[0][2]
        for (t0, c0, m0), (t1, c1, m1) in itertools.pairwise(series):
            if t0 <= when <= t1:
                f = (when - t0) / max(t1 - t0, 1e-9)
                return {n: c0[n] + (c1.get(n, c0[n]) - c0[n]) * f for n in c0}, m0 + (m1 - m0) * f
        return dict(series[-1][1]), series[-1][2]


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


DOWNSTREAM_SQL = """
SELECT (SELECT count(*) FROM articles a WHERE a.stored_at >= to_timestamp($1)
          AND NOT EXISTS (SELECT 1 FROM story_articles s WHERE s.article_id = a.id)
          AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.stage = 'tell'
                          AND d.key = a.canonical_url)),
       (SELECT count(*) FROM articles a WHERE a.stored_at >= to_timestamp($1)
          AND NOT EXISTS (SELECT 1 FROM alert_scans s WHERE s.article_id = a.id))
"""


def wait_downstream(
    database_url: str, since: float, run: Run, *, timeout: float = 300.0, poll_s: float = 0.5
) -> None:
    """Until every article stored since *since* (epoch seconds) is in a story (or the
    storyteller dead-lettered it) and was matched by the alerter: what ``run --once`` waits
    for after the last article is stored."""
    deadline = time.monotonic() + timeout
    with Poller(database_url) as db:
        while True:
            run.check_alive()
            unstoried, unscanned = db.fetchrow(DOWNSTREAM_SQL, since)
            if unstoried == 0 and unscanned == 0:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{unstoried} article(s) without a story, {unscanned} unmatched after "
                    f"{timeout:.0f}s"
                )
            time.sleep(poll_s)


async def progress(database_url: str) -> Progress:
    row = (await fetch(database_url, PROGRESS_SQL))[0]
    return Progress(*row)


class Poller:
    """One database connection for a wait loop (a fresh connection per poll, with its scram
    handshake and backend start, cost the measured PostgreSQL more than the query)."""

    def __init__(self, database_url: str) -> None:
        self.dsn = plain_dsn(database_url)
        self.loop = asyncio.new_event_loop()
        self.conn: asyncpg.Connection | None = None

    def fetchrow(self, query: str, *args: Any) -> asyncpg.Record:
        async def go() -> asyncpg.Record:
            if self.conn is None or self.conn.is_closed():
                self.conn = await asyncpg.connect(self.dsn)
            try:
                return await self.conn.fetchrow(query, *args)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await self._drop()
                raise

        return self.loop.run_until_complete(go())

    async def _drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.terminate()
        self.conn = None

    def close(self) -> None:
        self.loop.run_until_complete(self._drop())
        self.loop.close()

    def __enter__(self) -> Poller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_done(
    database_url: str,
    workers: Workers | Run | None,
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
    with Poller(database_url) as db:
        return _wait_done(
            db,
            workers,
            expect_links=expect_links,
            timeout=timeout,
            settle_s=settle_s,
            poll_s=poll_s,
            on_tick=on_tick,
            tolerate_db_errors=tolerate_db_errors,
            count_records=count_records,
        )


def _wait_done(
    db: Poller,
    workers: Workers | Run | None,
    *,
    expect_links: int | None,
    timeout: float,
    settle_s: float,
    poll_s: float,
    on_tick: Any,
    tolerate_db_errors: bool,
    count_records: bool,
) -> Progress:
    deadline = time.monotonic() + timeout
    idle_since: float | None = None
    last: Progress | None = None
    while True:
        if workers is not None:
            workers.check_alive()
        try:
            p = Progress(*db.fetchrow(PROGRESS_SQL))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
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
