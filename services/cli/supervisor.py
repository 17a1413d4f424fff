"""``newsflow run``: the embedded stack, migrations, topics and the four services as children.

The supervisor owns only what it started: a stack brought up by ``newsflow stack up`` is
reused and left running. Children run in their own sessions so a terminal Ctrl-C reaches
only the supervisor, which then stops them in pipeline order and waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.live import Live
from rich.table import Table
from sqlalchemy import text

from services.alerter.store import alert_progress, recent_alerts
from shared import kafka, stack
from shared.db.migrate import upgrade
from shared.db.session import create_engine, session_factory
from shared.errors import ConfigError, NewsflowError, StackError
from shared.run_lock import RunLock
from shared.settings import Settings
from shared.topology import SERVICES
from shared.topology import STAGES as TOPOLOGY

logger = logging.getLogger(__name__)

#: (stage, service) in pipeline order, from the topology
STAGES = tuple((spec.stage, spec.service) for spec in TOPOLOGY)
STATUS_EVERY_S = 1.0
LAG_EVERY_S = 5.0
#: stage -> (consumer group, main input topic) whose lag the panel shows
STAGE_INPUTS = {
    spec.stage: (spec.group(), spec.main_input.name)
    for spec in TOPOLOGY
    if spec.main_input is not None
}
STOP_GRACE_S = 20.0
#: Exit codes (README "Exit codes"): 2 nothing ran, 4 --strict failures, 130 Ctrl-C.
USAGE_EXIT = 2
STRICT_FAILURE_EXIT = 4
INTERRUPTED_EXIT = 130
#: --once finishes only after the pipeline has been idle (nothing pending) this long.
ONCE_SETTLE_S = 2.0


@dataclass
class Child:
    service: str
    proc: asyncio.subprocess.Process
    started: float
    metrics_port: int
    ready_s: float | None = None
    exit_code: int | None = None


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


def _metrics_base(preferred: int) -> int:
    if preferred == 0:
        return 0
    for base in (preferred, *range(preferred + 10, preferred + 200, 10)):
        if not any(stack.port_open(base + i) for i in range(len(SERVICES))):
            return base
    return 0


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

    # --- lifecycle -----------------------------------------------------------------------

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        run_start = datetime.now(UTC)
        code = 1
        lock = RunLock(self.settings.state_dir)
        try:
            lock.acquire()  # one run per home: before anything starts
        except ConfigError as exc:
            self.console.print(f"[red]error:[/] {exc.detail}", soft_wrap=True)
            return USAGE_EXIT
        try:
            bootstrap, db_url = await self._prepare()
            engine = create_engine(db_url, pool_size=2)
            try:
                sessions = session_factory(engine)
                await self._import_feeds(sessions)
                await self._add_watches(sessions)
                if self.once:
                    await self._make_feeds_due(sessions)
                await self._spawn(bootstrap, db_url)
                lag_task = asyncio.create_task(self._lag_loop(bootstrap))
                try:
                    code = await self._watch(sessions, run_start)
                finally:
                    lag_task.cancel()
                    await asyncio.gather(lag_task, return_exceptions=True)
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

    async def _prepare(self) -> tuple[str, str]:
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
        await kafka.create_topics(
            bootstrap,
            partitions=s.topic_partitions,
            replication=s.topic_replication,
            prefix=s.topic_prefix,
        )
        self.timings["topics"] = time.monotonic() - t2
        return bootstrap, db_url

    async def _import_feeds(self, sessions: Any) -> None:
        if self.feeds_file is None:
            return
        from services.fetcher.admin import feed_ids, import_feeds_file

        report = await import_feeds_file(
            sessions, self.feeds_file, allow_private=self.settings.allow_private_networks
        )
        self.console.print(f"feeds from {self.feeds_file}: {report}", soft_wrap=True)
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
        base = _metrics_base(self.settings.metrics_port_base)
        env = dict(os.environ)
        env.update(
            {
                "NEWSFLOW_KAFKA_BOOTSTRAP": bootstrap,
                "NEWSFLOW_DATABASE_URL": db_url,
                "NEWSFLOW_METRICS_PORT_BASE": str(base),
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
        for index, service in enumerate(SERVICES):
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "services.cli",
                "worker",
                service,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
            child = Child(service, proc, time.monotonic(), base + index if base else 0)
            self.children.append(child)
            self._pumps.append(asyncio.create_task(self._pump(child)))

    async def _lag_loop(self, bootstrap: str) -> None:
        """Consumer lag per stage from committed and stored offsets (never end_offsets)."""
        from services.cli.ops.lag import consumer_lag, group_topics, totals

        while True:
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
            await asyncio.sleep(LAG_EVERY_S)

    async def _pump(self, child: Child) -> None:
        assert child.proc.stdout is not None
        async for raw in child.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if child.ready_s is None and "service ready" in line:
                child.ready_s = time.monotonic() - child.started
            if line:
                self.console.print(line, markup=False, highlight=False, soft_wrap=True)
        child.exit_code = await child.proc.wait()

    async def _stop_children(self) -> None:
        # stop upstream first so downstream can drain what is in flight
        for child in self.children:
            if child.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in self.children:
            try:
                await asyncio.wait_for(
                    child.proc.wait(), timeout=max(0.1, deadline - time.monotonic())
                )
            except TimeoutError:
                logger.warning("%s did not stop in %.0fs; killing it", child.service, STOP_GRACE_S)
                with contextlib.suppress(ProcessLookupError):
                    child.proc.kill()
                await child.proc.wait()

    # --- watching ------------------------------------------------------------------------

    async def _watch(self, sessions: Any, run_start: datetime) -> int:
        deadline = time.monotonic() + self.timeout
        idle_since: float | None = None
        live = (
            Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
            if self.console.is_terminal
            else None
        )
        last_plain = 0.0
        with live if live is not None else contextlib.nullcontext():
            while not self.stopping.is_set():
                await self._refresh(sessions, run_start)
                if live is not None:
                    live.update(self._render())
                elif time.monotonic() - last_plain > 10:
                    last_plain = time.monotonic()
                    logger.info("status %s", self._status_line())
                crashed = [c for c in self.children if c.proc.returncode is not None]
                if crashed:
                    for c in crashed:
                        self.console.print(
                            f"[red]{c.service} exited with code {c.proc.returncode}[/]"
                        )
                    return 3
                if self.once:
                    p = self.progress
                    # done: every link stored or dead-lettered, every stored article matched
                    # and each of its alerts delivered or recorded as failed
                    finished = (
                        p.feeds_polled >= p.feeds_total and p.pending == 0 and p.alerts_pending == 0
                    )
                    if finished:
                        idle_since = idle_since or time.monotonic()
                        if time.monotonic() - idle_since >= ONCE_SETTLE_S:
                            self._summary()
                            return self._once_exit_code()
                    else:
                        idle_since = None
                    if time.monotonic() > deadline:
                        self.console.print(
                            f"[red]timed out after {self.timeout:.0f}s[/]: "
                            f"{p.feeds_total - p.feeds_polled} of {p.feeds_total} feed(s) not "
                            f"polled yet, {p.pending} link(s) and {p.alerts_pending} alert "
                            "item(s) pending",
                            soft_wrap=True,
                        )
                        self._summary()
                        return 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), timeout=STATUS_EVERY_S)
        self.console.print("stopping (Ctrl-C)…")
        if self.once:
            self._summary()
        return INTERRUPTED_EXIT

    def _once_exit_code(self) -> int:
        """0: the run completed; with --strict, 4 when a feed failed or an item was
        dead-lettered (cron and CI can tell "ran" from "ran clean")."""
        p = self.progress
        if self.strict and (p.feeds_failed or p.dead_letters):
            return STRICT_FAILURE_EXIT
        return 0

    async def _refresh(self, sessions: Any, run_start: datetime) -> None:
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
                p.dead_letters = sum(p.dlq_by_stage.values())
                alerts = await alert_progress(session, run_start)
                p.alerts, p.alerts_delivered = alerts.alerts, alerts.delivered
                p.alerts_failed, p.alerts_pending = alerts.failed, alerts.pending
                if p.alerts:
                    p.recent_alerts = await recent_alerts(session, run_start)
        except Exception as exc:  # the DB may restart under us; the panel says so
            logger.warning("status query failed: %s", exc)
        now = time.monotonic()
        ok: dict[str, float] = {}
        for stage, service in STAGES:
            child = next((c for c in self.children if c.service == service), None)
            counts = scrape(child.metrics_port) if child else {}
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
        return (
            f"{self._scope()}: polled {p.feeds_polled} failing {p.feeds_failed} next poll "
            f"{self._next_poll()} | links {p.discovered} done {p.done} "
            f"pending {p.pending} stored {p.stored} alerts {p.alerts} dlq {p.dead_letters} | "
            f"{stages}"
        )

    def _render(self) -> Table:
        p = self.progress
        table = Table(
            title="newsflow",
            caption=(
                f"{self._scope()} · polled {p.feeds_polled} (failing {p.feeds_failed}) · "
                f"next poll {self._next_poll()} · links {p.discovered} · pending {p.pending} · "
                f"stored {p.stored} · duplicates {p.duplicates} · alerts {p.alerts} (webhooks "
                f"delivered {p.alerts_delivered}, failed {p.alerts_failed}, pending "
                f"{p.alerts_pending}) · DLQ {p.dead_letters}"
            ),
        )
        for column in ("stage", "service", "ok", "rate/s", "lag", "dead-lettered", "ready in"):
            table.add_column(
                column, justify="right" if column not in ("stage", "service") else "left"
            )
        for stage, service in STAGES:
            child = next((c for c in self.children if c.service == service), None)
            ready = f"{child.ready_s:.1f}s" if child and child.ready_s is not None else "…"
            table.add_row(
                stage,
                service,
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
            "links_discovered": p.discovered,
            "articles_stored": p.stored,
            "articles_updated": p.updated,
            "duplicates": p.duplicates,
            "dead_letters": p.dead_letters,
            "dead_letters_by_stage": p.dlq_by_stage,
            "pending": p.pending,
            "alerts": p.alerts,
            "webhooks_delivered": p.alerts_delivered,
            "webhooks_failed": p.alerts_failed,
            "alerts_pending": p.alerts_pending,
            "recent_alerts": [{"watch": w, "title": t, "reason": r} for w, t, r in p.recent_alerts],
            "startup_s": startup,
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
        Console().print(table)
        for watch, title, reason in p.recent_alerts:
            Console().print(f"alert [bold]{watch}[/]: {title} ({reason})", highlight=False)
        self.console.print("start-up: " + ", ".join(f"{k} {v:.2f}s" for k, v in startup.items()))
