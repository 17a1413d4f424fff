"""``newsflow run``: the embedded stack, migrations, topics and every service of the topology as children.

The supervisor owns only what it started: a stack brought up by ``newsflow stack up`` is
reused and left running. Children run in their own sessions so a terminal Ctrl-C reaches
only the supervisor, which then stops them and waits for them.

It also keeps the embedded stack alive for weeks (issue 13):

* a watchdog probes the embedded broker and PostgreSQL every ``watchdog_interval_s`` (pid
  alive, port answering). A dead one is reported once (panel and log), restarted on its
  port, the topics re-created and every unfinished link re-driven from PostgreSQL
  (:mod:`services.cli.ops.recover`). A broker loss restarts the workers too: its memory storage
  lost every record in flight, so they are stopped first and re-driven work goes to fresh
  consumers. The broker is also restarted on purpose when its memory passes
  ``broker_max_rss_mb`` (Tansu's memory storage only grows).
* at start, topics that had to be created (a fresh broker, or a real Kafka that lost them)
  mean the records in flight are gone: unfinished work is re-driven before the workers start.
* retention runs every ``retention_interval_s`` (:mod:`services.cli.ops.retention`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from sqlalchemy import text

from services.alerter.store import alert_progress, recent_alerts
from shared import kafka, stack
from shared.db.migrate import upgrade
from shared.db.session import create_engine, session_factory
from shared.errors import ConfigError, NewsflowError, StackError
from shared.home import private_process
from shared.run_lock import RunLock
from shared.settings import Settings
from shared.topology import SERVICES
from shared.topology import STAGES as TOPOLOGY

logger = logging.getLogger(__name__)

#: (stage, service) in pipeline order, from the topology
STAGES = tuple((spec.stage, spec.service) for spec in TOPOLOGY)
STATUS_EVERY_S = 1.0
#: a continuous run reads its database counts (links, stored, stories, alerts) this often;
#: the stage counts and rates (from the workers' metrics) stay every STATUS_EVERY_S. Each
#: read counts the run's rows, so its cost grows with the run: a --once run, which decides
#: when it is done from them, reads them every STATUS_EVERY_S
STATUS_DB_EVERY_S = 5.0
LAG_EVERY_S = 5.0
#: aiokafka's lines while the broker is unreachable (one every few ms per worker)
_BROKER_NOISE = re.compile(
    r"aiokafka.*(Connect call failed|Connection at \S+ closed|NodeNotReadyError|"
    r"Unable to update metadata|KafkaConnectionError|Marking the coordinator dead|"
    r"Group Coordinator Request failed|Heartbeat send request failed)"
)
#: stage -> (consumer group, main input topic) whose lag the panel shows
STAGE_INPUTS = {
    spec.stage: (spec.group(), spec.main_input.name)
    for spec in TOPOLOGY
    if spec.main_input is not None
}
STOP_GRACE_S = 20.0
#: stories listed in the --once summary (the biggest of the run)
SUMMARY_STORIES = 10
#: Exit codes (README "Exit codes"): 2 nothing ran, 4 --strict failures, 130 Ctrl-C.
USAGE_EXIT = 2
STRICT_FAILURE_EXIT = 4
INTERRUPTED_EXIT = 130
#: workers stopped for a broker recovery are killed after this: with the broker gone they
#: cannot commit anything anyway, and every unfinished item is re-driven
RECOVERY_STOP_GRACE_S = 5.0
#: how long the panel keeps showing a recovered component's notice
NOTICE_S = 60.0
#: retention's first pass waits this long after start (the workers are starting meanwhile)
RETENTION_FIRST_DELAY_S = 30.0
#: --once finishes only after the pipeline has been idle (nothing pending) this long.
ONCE_SETTLE_S = 2.0
#: a failed re-drive (the restarted component not answering yet) is retried after this,
#: doubling up to the cap, until it succeeds
REDRIVE_RETRY_FIRST_S = 1.0
REDRIVE_RETRY_MAX_S = 60.0


@dataclass
class Child:
    service: str
    proc: asyncio.subprocess.Process
    started: float
    metrics_port: int
    ready_s: float | None = None
    exit_code: int | None = None
    #: which worker of its service (several enrichers share one consumer group)
    index: int = 0
    #: the last (stage, outcome) -> count scraped from its metrics
    last_counts: dict[tuple[str, str], float] = field(default_factory=dict)


@dataclass
class Progress:
    feeds_total: int = 0
    feeds_polled: int = 0
    #: feeds whose latest poll failed (whenever it was: a restart must not show 0)
    feeds_failed: int = 0
    discovered: int = 0
    done: int = 0
    #: articles stored (new) / updated during this run, whatever link brought them
    stored: int = 0
    updated: int = 0
    duplicates: int = 0
    next_poll_at: datetime | None = None
    dead_letters: int = 0
    #: live stories touched in this run, and stored articles of this run still without one
    stories: int = 0
    unstoried: int = 0
    #: the run's biggest stories (id, headline, articles, sources) for the summary
    top_stories: list[dict[str, Any]] = field(default_factory=list)
    dlq_by_stage: dict[str, int] = field(default_factory=dict)
    stage_ok: dict[str, float] = field(default_factory=dict)
    stage_dlq: dict[str, float] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    lag: dict[str, int] = field(default_factory=dict)
    alerts: int = 0
    alerts_delivered: int = 0
    alerts_failed: int = 0
    #: stored articles not yet matched + alerts not yet published or delivered
    alerts_pending: int = 0
    recent_alerts: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def pending(self) -> int:
        return self.discovered - self.done


def _metrics_base(preferred: int, ports: int = len(SERVICES)) -> int:
    """The first base from *preferred* (in steps of 10) with *ports* free ports after it."""
    if preferred == 0:
        return 0
    step = max(10, ports)
    for base in (preferred, *range(preferred + step, preferred + 20 * step, step)):
        if not any(stack.port_open(base + i) for i in range(ports)):
            return base
    return 0


def _add_counts(
    total: dict[tuple[str, str], float], more: dict[tuple[str, str], float]
) -> dict[tuple[str, str], float]:
    for key, value in more.items():
        total[key] = total.get(key, 0.0) + value
    return total


#: An HTTP(S)_PROXY in the environment must not capture loopback metrics requests.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def scrape(port: int) -> dict[tuple[str, str], float]:
    """(stage, outcome) -> count from one service's /metrics; empty when unreachable."""
    if not port:
        return {}
    try:
        with _NO_PROXY.open(f"http://127.0.0.1:{port}/metrics", timeout=1) as response:
            body = response.read().decode()
    except OSError:
        return {}
    totals: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(body):
        if family.name != "newsflow_messages":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total"):
                key = (sample.labels["stage"], sample.labels["outcome"])
                totals[key] = totals.get(key, 0.0) + sample.value
    return totals


def worker_plan(settings: Settings) -> list[tuple[str, int]]:
    """(service, index) of every worker ``newsflow run`` starts, in start order: one per
    service of the topology, and ``settings.enricher_processes`` enrichers (NER is the
    bottleneck). The bench reads it too, so it measures exactly this process set."""
    return [
        (service, i)
        for service in SERVICES
        for i in range(settings.enricher_processes if service == "enricher" else 1)
    ]


#: the Kafka client's loggers: during a broker recovery they only repeat what the watchdog said
BROKER_CLIENT_LOGGER = "aiokafka"


@contextlib.contextmanager
def quiet_broker_client() -> Iterator[None]:
    """Silence the Kafka client's log below CRITICAL for the duration (a recovery announces
    the loss once; the client would log every reconnect attempt); the old level comes back."""
    client = logging.getLogger(BROKER_CLIENT_LOGGER)
    before = client.level
    client.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        client.setLevel(before)


class Supervisor:
    def __init__(
        self,
        settings: Settings,
        *,
        feeds_file: Path | None = None,
        feeds_listed: list[str] | None = None,
        once: bool = False,
        timeout: float = 900.0,
        strict: bool = False,
        keep_stack: bool = False,
        as_json: bool = False,
        quiet_summary: bool = False,
        watches: Sequence[tuple[str, str]] = (),
    ) -> None:
        self.settings = settings
        self.watches = watches
        self.feeds_file = feeds_file
        self.feeds_listed = feeds_listed
        self.strict = strict
        #: leave the embedded stack running at the end (the demo reads from it, then stops it)
        self.keep_stack = keep_stack
        #: the caller prints the summary (the demo's JSON holds it)
        self.quiet_summary = quiet_summary
        #: with --once --feeds: the feeds this run polls and counts (None: every feed)
        self.feed_ids: list[int] | None = None
        #: lines of --feeds FILE refused (invalid, or a private address): failures for --strict
        self.feeds_refused = 0
        self.summary: dict[str, Any] = {}
        self.once = once
        self.timeout = timeout
        self.as_json = as_json
        self.console = Console(stderr=True)
        self.children: list[Child] = []
        self._pumps: list[asyncio.Task[None]] = []
        self.stopping = asyncio.Event()
        self.stack_started: list[str] = []
        self.timings: dict[str, float] = {}
        self.progress = Progress()
        self._last_counts: tuple[float, dict[str, float]] | None = None
        self.bootstrap = ""
        self.db_url = ""
        self.run_start = datetime.now(UTC)
        #: set while a component is restarted: children exiting then are not crashes
        self.recovering = False
        #: one line about the stack's health for the panel ("" when all is well)
        self.notice = ""
        self._notice_at = 0.0
        self.recoveries: list[dict[str, Any]] = []
        self.suppressed_lines = 0
        self._db_unreachable = False
        #: components whose recovery failed and is being retried (said once)
        self._failing: set[str] = set()
        #: why a re-drive is owed (it failed and is retried with backoff), else None
        self._redrive_owed: str | None = None
        self._redrive_failures = 0
        self._redrive_next_at = 0.0
        #: --once: the feeds not polled yet are to be offered again with the owed re-drive
        self._reoffer_owed = False
        #: set by a worker's broker-connection error: probe at once
        self._probe_now = asyncio.Event()
        self._metrics_ports: list[int] = []
        #: counts of workers that exited (a recovery restarts them; their totals stay)
        self._retired_counts: dict[str, dict[tuple[str, str], float]] = {}

    # --- lifecycle -----------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        self.run_start = datetime.now(UTC)
        # the logs and files of the home are the owner's alone (umask 077 for every child);
        # the umask is restored at the end for an in-process caller (the demo)
        umask = private_process(self.settings.state_dir)
        try:
            return await self._run_private()
        finally:
            os.umask(umask)

    async def _run_private(self) -> int:
        run_start = self.run_start
        code = 1
        lock = RunLock(self.settings.state_dir)
        try:
            lock.acquire()  # one run per home: before anything starts
        except ConfigError as exc:
            self.console.print(f"[red]error:[/] {exc.detail}", soft_wrap=True)
            return USAGE_EXIT
        try:
            bootstrap, db_url, topics_lost = await self._prepare()
            self.bootstrap, self.db_url = bootstrap, db_url
            engine = create_engine(db_url, pool_size=2)
            try:
                sessions = session_factory(engine)
                if topics_lost:
                    await self._redrive(sessions, why="topics were (re)created")
                await self._import_feeds(sessions)
                await self._add_watches(sessions)
                if self.once:
                    await self._make_feeds_due(sessions)
                await self._spawn(bootstrap, db_url)
                tasks = [
                    asyncio.create_task(self._lag_loop(bootstrap)),
                    asyncio.create_task(self._guard(sessions)),
                    asyncio.create_task(self._retention_loop(sessions)),
                ]
                try:
                    code = await self._watch(sessions, run_start)
                finally:
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                    await self._stop_children()
            finally:
                await engine.dispose()
        except NewsflowError as exc:
            self.console.print(f"[red]error:[/] {exc.detail}", soft_wrap=True)
            code = USAGE_EXIT
        finally:
            await self._stop_children()
            if self.stack_started and not self.keep_stack:
                await asyncio.to_thread(
                    stack.down, self.settings.state_dir, only=self.stack_started
                )
                self.console.print(f"stopped embedded {', '.join(self.stack_started)}")
            lock.release()  # last: the home is free only once its stack is down
        return code

    async def _prepare(self) -> tuple[str, str, bool]:
        """Stack, migrations, topics: (bootstrap, database URL, whether topics were created)."""
        s = self.settings
        t0 = time.monotonic()
        result = await asyncio.to_thread(
            stack.up,
            s.state_dir,
            want_kafka=s.kafka_bootstrap is None,
            want_postgres=s.database_url is None,
        )
        self.stack_started = result.started
        self.timings.update({f"stack.{k}": v for k, v in result.seconds.items()})
        state = result.state
        bootstrap = s.kafka_bootstrap or (state.kafka.endpoint if state.kafka else None)
        db_url = s.database_url or (state.postgres.endpoint if state.postgres else None)
        if not bootstrap or not db_url:
            raise StackError("stack did not report its endpoints; see 'newsflow stack status'")
        self.console.print(
            f"stack: kafka {bootstrap} ({'started' if 'kafka' in result.started else 'reused/external'}), "
            f"postgres {db_url.split('@')[-1]} "
            f"({'started' if 'postgres' in result.started else 'reused/external'}) "
            f"in {time.monotonic() - t0:.2f}s",
            soft_wrap=True,
        )
        t1 = time.monotonic()
        await asyncio.to_thread(upgrade, db_url)  # alembic's env runs its own event loop
        self.timings["migrations"] = time.monotonic() - t1
        t2 = time.monotonic()
        created = await self._create_topics(bootstrap)
        self.timings["topics"] = time.monotonic() - t2
        return bootstrap, db_url, created

    async def _create_topics(self, bootstrap: str) -> bool:
        """Create missing topics; True when any had to be created (records in flight lost)."""
        s = self.settings
        outcome = await kafka.create_topics(
            bootstrap,
            partitions=s.topic_partitions,
            replication=s.topic_replication,
            prefix=s.topic_prefix,
        )
        return any(what == "created" for what in outcome.values())

    # --- recovery ------------------------------------------------------------------------

    def _say(self, message: str, *, level: int = logging.WARNING) -> None:
        """Tell the operator once: a log record and the panel's notice line."""
        logger.log(level, "%s", message)
        self.notice = message
        self._notice_at = time.monotonic()

    def _current_notice(self) -> str:
        """The notice while it matters: during a recovery or failure, then for a minute."""
        if (
            self.recovering
            or self._failing
            or self._redrive_owed is not None
            or time.monotonic() - self._notice_at < NOTICE_S
        ):
            return self.notice
        return ""

    async def _redrive(self, sessions: Any, *, why: str) -> dict[str, Any]:
        """Re-send every unfinished link (or its archived page); what was sent."""
        from services.cli.ops.recover import redrive
        from services.cli.ops.sink import KafkaSink

        async with KafkaSink(self.bootstrap) as sink:
            done = await redrive(
                sessions, sink, before=datetime.now(UTC), prefix=self.settings.topic_prefix
            )
        if done.total:
            self.console.print(
                f"re-drove {done.links} link(s) and {done.pages} archived page(s) "
                f"without an outcome and {done.articles} stored article(s) the alerter "
                f"had not matched ({why})",
                soft_wrap=True,
            )
        return done.to_json()

    async def _redrive_or_owe(
        self, sessions: Any, *, why: str, reoffer: bool = False
    ) -> dict[str, Any]:
        """Re-drive now (and with *reoffer*, offer again the feeds not polled in this --once
        run: a poll cut short by the broker left them leased to the dead fetcher); if that
        fails (the restarted component does not answer yet), owe it: said once, then retried
        with backoff by the watchdog until it succeeds. What was sent, or
        ``{"redrive": "pending"}``."""
        self._reoffer_owed = self._reoffer_owed or reoffer
        try:
            done = await self._redrive(sessions, why=why)
            if self._reoffer_owed:
                await self._reoffer_unpolled_feeds(sessions)
        except Exception as exc:  # broker or database not ready yet: retried, not fatal
            self._owe_redrive(why, exc)
            return {"redrive": "pending"}
        self._settle_redrive()
        return done

    def _owe_redrive(self, why: str, exc: BaseException) -> None:
        if self._redrive_owed is None:
            self._say(
                f"re-drive of unfinished work ({why}) failed: {exc}; retrying with backoff "
                "until it succeeds",
                level=logging.ERROR,
            )
            self._redrive_owed = why
        self._redrive_failures += 1
        delay = min(REDRIVE_RETRY_FIRST_S * 2 ** (self._redrive_failures - 1), REDRIVE_RETRY_MAX_S)
        self._redrive_next_at = time.monotonic() + delay
        logger.debug(
            "re-drive attempt %s failed (%s); next in %.0fs", self._redrive_failures, exc, delay
        )

    def _settle_redrive(self) -> None:
        """A re-drive succeeded: it read every unfinished item, so nothing is owed any more."""
        self._redrive_owed = None
        self._redrive_failures = 0
        self._reoffer_owed = False

    async def _retry_owed_redrive(self, sessions: Any) -> None:
        """The owed re-drive, once its backoff has passed; success is said once."""
        why = self._redrive_owed
        if why is None or time.monotonic() < self._redrive_next_at or self.recovering:
            return
        failures = self._redrive_failures
        try:
            done = await self._redrive(sessions, why=why)
            if self._reoffer_owed:
                await self._reoffer_unpolled_feeds(sessions)
        except Exception as exc:  # still not ready: back off further, quietly
            self._owe_redrive(why, exc)
            return
        self._settle_redrive()
        self._say(
            f"re-drove {done.get('total', 0)} unfinished item(s) ({why}) after {failures} "
            "failed attempt(s)",
            level=logging.INFO,
        )

    async def _guard(self, sessions: Any) -> None:
        """Watchdog: probe the embedded components and recover the first one that fails;
        retry an owed re-drive."""
        s = self.settings
        names = [
            name
            for name, external in (("kafka", s.kafka_bootstrap), ("postgres", s.database_url))
            if not external
        ]
        if not names:
            return
        watch = stack.StackWatch(s.state_dir, names, broker_max_rss=s.broker_max_rss_mb * 2**20)
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._probe_now.wait(), timeout=s.watchdog_interval_s)
            self._probe_now.clear()
            try:
                fault = await asyncio.to_thread(watch.check)
            except StackError as exc:  # an unreadable stack file: say so, keep running
                if self.notice != exc.detail:
                    self._say(exc.detail)
                continue
            if fault is None:
                await self._retry_owed_redrive(sessions)
                continue
            try:
                await self._recover(sessions, fault)
            except Exception as exc:  # keep watching: the next probe tries again
                if fault.name not in self._failing:  # the same failure again is not news
                    self._failing.add(fault.name)
                    self._say(
                        f"recovery of {fault.name} failed: {exc}; retrying every "
                        f"{s.watchdog_interval_s:.0f}s",
                        level=logging.ERROR,
                    )
                self.recovering = False

    async def _recover(self, sessions: Any, fault: stack.Fault) -> None:
        t0 = time.monotonic()
        if fault.name not in self._failing:
            self._say(f"{fault.detail}: restarting {fault.name} on the same port")
        redriven: dict[str, Any] = {}
        if fault.name == "kafka":
            # every record in flight is gone with the broker: stop the workers (they can
            # neither commit nor produce), restart it, re-create the topics, re-drive from
            # PostgreSQL, then start fresh workers
            self.recovering = True
            try:
                # the broker may die again during the re-drive: the supervisor's own
                # producer would then log a connection error every few ms until it gives up
                with quiet_broker_client():
                    await self._stop_children(grace=RECOVERY_STOP_GRACE_S)
                    await asyncio.to_thread(stack.restart, self.settings.state_dir, "kafka")
                    await self._create_topics(self.bootstrap)
                    # a failed re-drive is owed and retried: the workers start regardless
                    # (re-driving beside running workers only costs a second pass)
                    redriven = await self._redrive_or_owe(
                        sessions, why="broker restarted", reoffer=self.once
                    )
                    await self._spawn(self.bootstrap, self.db_url)
            finally:
                self.recovering = False
        else:
            # the workers ride out a database outage (they retry); but a killed server may
            # have lost its last commits (synchronous_commit=off), so re-drive after it is back
            await asyncio.to_thread(stack.restart, self.settings.state_dir, "postgres")
            redriven = await self._redrive_or_owe(sessions, why="PostgreSQL restarted")
        seconds = time.monotonic() - t0
        self._failing.discard(fault.name)
        if fault.name == "kafka":
            # this re-drive read every unfinished item from PostgreSQL, so it also settles a
            # PostgreSQL recovery whose own re-drive failed on the dead broker (that component
            # probes healthy again and would otherwise stay "failing": its notice shown
            # forever and its next loss not announced)
            self._failing.clear()
        self.recoveries.append(
            {
                "component": fault.name,
                "reason": fault.reason,
                "seconds": round(seconds, 1),
                **redriven,
            }
        )
        hidden = (
            f"; {self.suppressed_lines} connection-error line(s) from the workers were not shown"
            if self.suppressed_lines
            else ""
        )
        done = (
            "the re-drive of unfinished work is retried until it succeeds"
            if redriven.get("redrive") == "pending"
            else f"re-drove {redriven.get('total', 0)} unfinished item(s)"
        )
        self._say(f"{fault.name} recovered in {seconds:.1f}s; {done}{hidden}", level=logging.INFO)
        self.suppressed_lines = 0

    async def _reoffer_unpolled_feeds(self, sessions: Any) -> None:
        # a poll cut short by the broker rolled back, but its feeds stay leased to the dead
        # fetcher; with --once, offer every feed not yet polled in this run again now
        async with sessions() as session, session.begin():
            await session.execute(
                text(
                    "UPDATE feeds SET next_poll_at = now()"
                    " WHERE last_polled_at IS NULL OR last_polled_at < :t"
                ),
                {"t": self.run_start},
            )

    async def _retention_loop(self, sessions: Any) -> None:
        from services.cli.ops.retention import apply_retention

        interval = self.settings.retention_interval_s
        if interval <= 0:
            return
        await asyncio.sleep(min(interval, RETENTION_FIRST_DELAY_S))
        while True:
            try:
                await apply_retention(sessions, self.settings, now=datetime.now(UTC))
            except Exception as exc:  # the database may be restarting; try next time
                logger.warning("retention pass failed: %s", exc)
            await asyncio.sleep(interval)

    async def _import_feeds(self, sessions: Any) -> None:
        if self.feeds_file is None:
            return
        from services.fetcher.admin import feed_ids, import_feeds_file

        report = await import_feeds_file(
            sessions, self.feeds_file, allow_private=self.settings.allow_private_networks
        )
        self.console.print(f"feeds from {self.feeds_file}: {report}", soft_wrap=True)
        self.feeds_refused = len(report.invalid)
        if self.once:
            self.feed_ids = await feed_ids(sessions, report.urls)

    async def _add_watches(self, sessions: Any) -> None:
        """Save the (name, query) watches given (the demo's); an existing name is kept."""
        from services.alerter.store import WatchError, add_watch
        from services.cli.watch import curated_key

        for name, query in self.watches:
            async with sessions() as session, session.begin():
                try:
                    info = await add_watch(session, name, query, curated=curated_key)
                except WatchError:
                    continue
            self.console.print(f"watch {info.name!r}: {info.query}")

    async def _make_feeds_due(self, sessions: Any) -> None:
        """--once: the run's feeds (all, or exactly --feeds FILE's) are due now."""
        async with sessions() as session, session.begin():
            if self.feed_ids is None:
                await session.execute(text("UPDATE feeds SET next_poll_at = now()"))
            else:
                await session.execute(
                    text("UPDATE feeds SET next_poll_at = now() WHERE id = ANY(:ids)"),
                    {"ids": self.feed_ids},
                )

    async def _spawn(self, bootstrap: str, db_url: str) -> None:
        plan = worker_plan(self.settings)
        if not self._metrics_ports:  # chosen once: a restarted worker keeps its port
            base = _metrics_base(self.settings.metrics_port_base, len(plan))
            self._metrics_ports = [base + i if base else 0 for i in range(len(plan))]
        env = dict(os.environ)
        env.update(
            {
                "NEWSFLOW_KAFKA_BOOTSTRAP": bootstrap,
                "NEWSFLOW_DATABASE_URL": db_url,
                "NEWSFLOW_METRICS_BIND": self.settings.metrics_bind,
                "NEWSFLOW_HOME": str(self.settings.state_dir),
                # --once --feeds FILE polls exactly FILE's feeds, not every registered one
                "NEWSFLOW_POLL_ONLY_FEEDS": ",".join(map(str, self.feed_ids))
                if self.feed_ids is not None
                else self.settings.poll_only_feeds,
                "NEWSFLOW_LOG_FORMAT": "text"
                if self.settings.log_format == "auto" and sys.stderr.isatty()
                else ("json" if self.settings.log_format == "auto" else self.settings.log_format),
            }
        )
        for (service, index), port in zip(plan, self._metrics_ports, strict=True):
            # each worker its own metrics port: NEWSFLOW_METRICS_PORT_BASE minus the offset
            # the worker adds for its service
            offset = SERVICES.index(service)
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "services.cli",
                "worker",
                service,
                env={**env, "NEWSFLOW_METRICS_PORT_BASE": str(port - offset if port else 0)},
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
            child = Child(service, proc, time.monotonic(), port, index=index)
            self.children.append(child)
            self._pumps.append(asyncio.create_task(self._pump(child)))

    async def _lag_loop(self, bootstrap: str) -> None:
        """Consumer lag per stage from committed and stored offsets (never end_offsets)."""
        from services.cli.ops.lag import consumer_lag, group_topics, totals

        while True:
            await asyncio.sleep(LAG_EVERY_S)
            if self.recovering:  # the broker is being replaced; nothing to ask
                continue
            try:
                rows = await consumer_lag(
                    bootstrap,
                    prefix=self.settings.topic_prefix,
                    group_prefix=self.settings.topic_prefix,
                    groups=group_topics(self.settings),
                )
                by_group = totals(rows)
                prefix = self.settings.topic_prefix
                self.progress.lag = {
                    stage: by_group.get(prefix + group, {}).get(topic, 0)
                    for stage, (group, topic) in STAGE_INPUTS.items()
                }
            except Exception as exc:  # lag is informative; never let it stop the run
                logger.debug("lag query failed: %s", exc)

    async def _pump(self, child: Child) -> None:
        assert child.proc.stdout is not None
        async for raw in child.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if child.ready_s is None and "service ready" in line:
                child.ready_s = time.monotonic() - child.started
            noise = self.settings.kafka_bootstrap is None and _BROKER_NOISE.search(line)
            if self.recovering or noise:
                # workers losing their broker log a connection error every few ms; the
                # watchdog announces the loss once, so their noise is counted, not printed
                self.suppressed_lines += 1
                if not self.recovering:
                    self._probe_now.set()  # do not wait for the next probe to find out
                continue
            if line:
                self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        child.exit_code = await child.proc.wait()

    async def _stop_children(self, *, grace: float = STOP_GRACE_S) -> None:
        """SIGTERM every worker (each stops consuming, flushes, commits and closes its pools),
        wait up to *grace*, kill what is left; then forget them (their counts are kept)."""
        for child in self.children:
            if child.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in self.children:
            try:
                await asyncio.wait_for(
                    child.proc.wait(), timeout=max(0.1, deadline - time.monotonic())
                )
            except TimeoutError:
                if not self.recovering:
                    logger.warning("%s did not stop in %.0fs; killing it", child.service, grace)
                with contextlib.suppress(ProcessLookupError):
                    child.proc.kill()
                await child.proc.wait()
        if self._pumps:
            await asyncio.gather(*self._pumps, return_exceptions=True)
        for child in self.children:  # a restarted worker's counters start at zero again
            _add_counts(self._retired_counts.setdefault(child.service, {}), child.last_counts)
        self.children = []
        self._pumps = []

    # --- watching ------------------------------------------------------------------------

    async def _watch(self, sessions: Any, run_start: datetime) -> int:
        live = (
            Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
            if self.console.is_terminal
            else None
        )
        # the panel is stopped (its last frame drawn) before anything else is printed, so a
        # final redraw can never cut the summary table in half
        with live if live is not None else contextlib.nullcontext():
            code, message = await self._watch_loop(sessions, run_start, live)
            if live is not None:
                live.update(self._render())
        if message:
            self.console.print(message, soft_wrap=True)
        if self.once and code != 3:
            self._summary()
        return code

    async def _watch_loop(
        self, sessions: Any, run_start: datetime, live: Live | None
    ) -> tuple[int, str]:
        """Refresh until done, stopped or crashed: (exit code, message to print after)."""
        deadline = time.monotonic() + self.timeout
        idle_since: float | None = None
        last_plain = 0.0
        db_read_at = -STATUS_DB_EVERY_S
        while not self.stopping.is_set():
            with_db = self.once or time.monotonic() - db_read_at >= STATUS_DB_EVERY_S
            if with_db:
                db_read_at = time.monotonic()
            await self._refresh(sessions, run_start, with_db=with_db)
            if live is not None:
                live.update(self._render())
            elif time.monotonic() - last_plain > 10:
                last_plain = time.monotonic()
                logger.info("status %s", self._status_line())
            crashed = [
                c for c in self.children if c.proc.returncode is not None and not self.recovering
            ]
            if crashed:
                return 3, "\n".join(
                    f"[red]{c.service} exited with code {c.proc.returncode}[/]" for c in crashed
                )
            if self.once:
                p = self.progress
                # done: every link stored or dead-lettered, every stored article matched
                # and each of its alerts delivered or recorded as failed, and every stored
                # article in its story
                finished = (
                    p.feeds_polled >= p.feeds_total
                    and p.pending == 0
                    and p.alerts_pending == 0
                    and p.unstoried == 0
                    and not self.recovering
                    and self._redrive_owed is None
                )
                if finished:
                    idle_since = idle_since or time.monotonic()
                    if time.monotonic() - idle_since >= ONCE_SETTLE_S:
                        return self._once_exit_code(), ""
                else:
                    idle_since = None
                if time.monotonic() > deadline:
                    return 1, (
                        f"[red]timed out after {self.timeout:.0f}s[/]: "
                        f"{p.feeds_total - p.feeds_polled} of {p.feeds_total} feed(s) not "
                        f"polled yet, {p.pending} link(s) and {p.alerts_pending} alert "
                        "item(s) pending"
                    )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=STATUS_EVERY_S)
        # 130 for a continuous run too: a script must tell "interrupted" from "done"
        return INTERRUPTED_EXIT, "stopping (Ctrl-C)…"

    def _once_exit_code(self) -> int:
        """0: the run completed; with --strict, 4 when a feed failed or was refused (a
        --feeds FILE line that is invalid or a private address) or an item was dead-lettered
        (cron and CI can tell "ran" from "ran clean")."""
        p = self.progress
        if self.strict and (p.feeds_failed or p.dead_letters or self.feeds_refused):
            return STRICT_FAILURE_EXIT
        return 0

    async def _refresh(self, sessions: Any, run_start: datetime, *, with_db: bool = True) -> None:
        """The panel's numbers: the workers' stage counts and rates, and (*with_db*) the
        run's counts from PostgreSQL (without it the last ones are kept)."""
        if with_db:
            await self._refresh_db(sessions, run_start)
        self._refresh_stages()

    async def _refresh_db(self, sessions: Any, run_start: datetime) -> None:
        p = self.progress
        try:
            async with sessions() as session:
                params = {"t": run_start, "ids": self.feed_ids, "all": self.feed_ids is None}
                feeds = "(:all OR f.id = ANY(:ids))"
                links = "(:all OR l.feed_id = ANY(:ids))"
                row = (
                    await session.execute(
                        text(
                            f"SELECT (SELECT count(*) FROM feeds f WHERE {feeds}),"
                            f" (SELECT count(*) FROM feeds f WHERE {feeds} AND last_polled_at >= :t),"
                            f" (SELECT count(*) FROM feeds f WHERE {feeds} AND consecutive_failures > 0),"
                            f" (SELECT min(next_poll_at) FROM feeds f WHERE {feeds}),"
                            f" (SELECT count(*) FROM seen_links l WHERE {links} AND first_seen_at >= :t),"
                            f" (SELECT count(*) FROM seen_links l WHERE {links} AND first_seen_at >= :t AND done_at IS NOT NULL),"
                            f" (SELECT count(*) FROM seen_links l WHERE {links} AND first_seen_at >= :t AND outcome = 'duplicate'),"
                            " (SELECT count(*) FROM articles a WHERE (:all OR a.feed_id = ANY(:ids)) AND stored_at >= :t),"
                            " (SELECT count(*) FROM articles a WHERE (:all OR a.feed_id = ANY(:ids)) AND stored_at < :t AND updated_at >= :t)"
                        ),
                        params,
                    )
                ).one()
                (
                    p.feeds_total,
                    p.feeds_polled,
                    p.feeds_failed,
                    p.next_poll_at,
                    p.discovered,
                    p.done,
                    p.duplicates,
                    p.stored,
                    p.updated,
                ) = row
                dlq = (
                    await session.execute(
                        text(
                            "SELECT stage, count(*) FROM dead_letters WHERE failed_at >= :t GROUP BY stage"
                        ),
                        {"t": run_start},
                    )
                ).all()
                p.dlq_by_stage = {stage: n for stage, n in dlq}
                p.stories, p.unstoried = (
                    await session.execute(
                        text(
                            "SELECT (SELECT count(*) FROM stories WHERE merged_into IS NULL"
                            " AND updated_at >= :t),"
                            " (SELECT count(*) FROM articles a WHERE a.stored_at >= :t AND NOT"
                            " EXISTS (SELECT 1 FROM story_articles s WHERE s.article_id = a.id)"
                            # one the storyteller dead-lettered will not get a story: not waited on
                            " AND NOT EXISTS (SELECT 1 FROM dead_letters d WHERE d.stage = 'tell'"
                            " AND d.key = a.canonical_url))"
                        ),
                        {"t": run_start},
                    )
                ).one()
                if self.once:
                    stories = await session.execute(
                        text(
                            "SELECT id, headline, article_count, sources FROM stories"
                            " WHERE merged_into IS NULL AND updated_at >= :t"
                            " ORDER BY article_count DESC, id LIMIT :n"
                        ),
                        {"t": run_start, "n": SUMMARY_STORIES},
                    )
                    p.top_stories = [
                        {
                            "id": r.id,
                            "headline": r.headline,
                            "articles": r.article_count,
                            "sources": list(r.sources),
                        }
                        for r in stories
                    ]
                p.dead_letters = sum(p.dlq_by_stage.values())
                alerts = await alert_progress(session, run_start)
                p.alerts, p.alerts_delivered = alerts.alerts, alerts.delivered
                p.alerts_failed, p.alerts_pending = alerts.failed, alerts.pending
                if p.alerts:
                    p.recent_alerts = await recent_alerts(session, run_start)
            self._db_unreachable = False
        except Exception as exc:  # the DB may restart under us: said once, not every second
            if not self._db_unreachable:
                logger.warning("status query failed (the panel keeps its last counts): %s", exc)
            self._db_unreachable = True

    def _refresh_stages(self) -> None:
        p = self.progress
        now = time.monotonic()
        ok: dict[str, float] = {}
        for child in self.children:
            scraped = scrape(child.metrics_port)
            if scraped:
                child.last_counts = scraped
        for stage, service in STAGES:
            counts = dict(self._retired_counts.get(service, {}))
            for child in self.children:
                if child.service == service:
                    _add_counts(counts, child.last_counts)
            ok[stage] = counts.get((stage, "ok"), 0.0)
            p.stage_dlq[stage] = counts.get((stage, "dlq"), 0.0)
        if self._last_counts is not None:
            then, previous = self._last_counts
            dt = max(1e-6, now - then)
            p.rates = {stage: (ok[stage] - previous.get(stage, 0.0)) / dt for stage in ok}
        self._last_counts = (now, ok)
        p.stage_ok = ok

    def _status_line(self) -> str:
        p = self.progress
        stages = " ".join(
            f"{s}={int(p.stage_ok.get(s, 0))}({p.rates.get(s, 0):.1f}/s, lag {p.lag.get(s, '?')})"
            for s, _ in STAGES
        )
        line = (
            f"feeds {p.feeds_polled}/{p.feeds_total} links {p.discovered} done {p.done} "
            f"pending {p.pending} stored {p.stored} alerts {p.alerts} stories {p.stories} "
            f"dlq {p.dead_letters} | {stages}"
        )
        notice = self._current_notice()
        return f"{line} | {notice}" if notice else line

    def _render(self) -> Table:
        p = self.progress
        caption = (
            f"feeds polled {p.feeds_polled}/{p.feeds_total} (failing {p.feeds_failed}) · "
            f"links {p.discovered} · pending {p.pending} · stored {p.stored} · "
            f"duplicates {p.duplicates} · alerts {p.alerts} (webhooks delivered "
            f"{p.alerts_delivered}, failed {p.alerts_failed}, pending {p.alerts_pending}) · "
            f"DLQ {p.dead_letters}"
        )
        if notice := self._current_notice():
            caption += f"\nstack: {notice}"
        table = Table(title="newsflow", caption=caption)
        for column in ("stage", "service", "ok", "rate/s", "lag", "dead-lettered", "ready in"):
            table.add_column(
                column, justify="right" if column not in ("stage", "service") else "left"
            )
        for stage, service in STAGES:
            mine = [c for c in self.children if c.service == service]
            child = mine[0] if mine else None
            ready = f"{child.ready_s:.1f}s" if child and child.ready_s is not None else "…"
            table.add_row(
                stage,
                f"{service} ×{len(mine)}" if len(mine) > 1 else service,
                str(int(p.stage_ok.get(stage, 0))),
                f"{p.rates.get(stage, 0):.1f}",
                str(p.lag[stage]) if stage in p.lag else "…",
                str(p.dlq_by_stage.get(stage, 0)),
                ready,
            )
        return table

    def _scope(self) -> str:
        n = self.progress.feeds_total
        if self.feed_ids is not None:
            return f"{n} feed(s) from {self.feeds_file}"
        return f"all {n} registered feed(s)" + ("" if self.once else " monitored")

    def _next_poll(self) -> str:
        """The soonest next poll, relative ("in 4m", "due now"); 'feeds poll' brings it in."""
        at = self.progress.next_poll_at
        if at is None:
            return "-"
        seconds = (at - datetime.now(UTC)).total_seconds()
        if seconds <= self.settings.poll_tick_s:
            return "due now"
        return f"in {seconds / 60:.0f}m" if seconds >= 90 else f"in {seconds:.0f}s"

    def _summary(self) -> None:
        p = self.progress
        startup = {
            **{k: round(v, 3) for k, v in self.timings.items()},
            **{c.service: round(c.ready_s, 3) for c in self.children if c.ready_s},
        }
        summary: dict[str, Any] = {
            "feeds": p.feeds_total,
            "feeds_polled": p.feeds_polled,
            "feeds_failing": p.feeds_failed,
            "feeds_refused": self.feeds_refused,
            "links_discovered": p.discovered,
            "articles_stored": p.stored,
            "articles_updated": p.updated,
            "duplicates": p.duplicates,
            "stories": p.stories,
            "articles_without_story": p.unstoried,
            "top_stories": p.top_stories,
            "dead_letters": p.dead_letters,
            "dead_letters_by_stage": p.dlq_by_stage,
            "pending": p.pending,
            "alerts": p.alerts,
            "webhooks_delivered": p.alerts_delivered,
            "webhooks_failed": p.alerts_failed,
            "alerts_pending": p.alerts_pending,
            "recent_alerts": [{"watch": w, "title": t, "reason": r} for w, t, r in p.recent_alerts],
            "startup_s": startup,
            "recoveries": self.recoveries,
        }
        self.summary = summary
        if self.quiet_summary:
            return
        if self.as_json:
            sys.stdout.write(json.dumps(summary, indent=2) + "\n")
            return
        table = Table(title="newsflow run --once: summary")
        table.add_column("what")
        table.add_column("count", justify="right")
        for key in (
            "feeds",
            "feeds_polled",
            "feeds_failing",
            "links_discovered",
            "articles_stored",
            "articles_updated",
            "duplicates",
            "stories",
            "articles_without_story",
            "dead_letters",
            "pending",
            "alerts",
            "webhooks_delivered",
            "webhooks_failed",
            "alerts_pending",
        ):
            table.add_row(key.replace("_", " "), str(summary[key]))
        for stage, n in sorted(p.dlq_by_stage.items()):
            table.add_row(f"  dead letters: {stage}", str(n))
        for r in self.recoveries:
            table.add_row(
                f"recovered {r['component']} ({r['reason']}, {r['seconds']}s), re-drove",
                str(r.get("total", 0)),
            )
        Console().print(table)
        if p.top_stories:
            stories = Table(title="stories (newsflow stories show ID)")
            for column in ("id", "articles", "sources", "headline"):
                stories.add_column(column)
            for story in p.top_stories:
                stories.add_row(
                    str(story["id"]),
                    str(story["articles"]),
                    str(len(story["sources"])),
                    escape(story["headline"] or "(no title)"),  # web text, not rich markup
                )
            Console().print(stories)
        for watch, title, reason in p.recent_alerts:
            Console().print(
                f"alert [bold]{escape(watch)}[/]: {escape(title)} ({escape(reason)})",
                highlight=False,
            )
        self.console.print("start-up: " + ", ".join(f"{k} {v:.2f}s" for k, v in startup.items()))
