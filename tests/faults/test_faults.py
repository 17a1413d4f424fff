"""Fault injection on the real services, broker and database (``make test-faults``).

Each test serves a seeded corpus on loopback (``NEWSFLOW_FAULTS_ARTICLES``, default 500),
runs the four ``newsflow worker`` processes against a private embedded stack, injects one
fault mid-run, and then checks the end state in PostgreSQL: every article exactly once, each
with its entities, every discovered link done, and nothing dead-lettered (except the poison
records the poison test injects on purpose, which must all be there).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from shared import stack
from shared.topology import STAGES
from tests.bench import harness
from tests.bench.corpus import Corpus
from tests.bench.server import SiteNetwork, serving

pytestmark = pytest.mark.faults

ARTICLES = int(os.environ.get("NEWSFLOW_FAULTS_ARTICLES", "500"))
HOSTS = 25
SEED = 6
#: kill or stop things once the victim's stage has handled this share of the corpus
FAULT_AT = 0.3
POSTGRES_DOWN_S = 20.0
RUN_TIMEOUT_S = 900.0
FAULT_SETTINGS = {
    **harness.RELAXED_POLITENESS,
    # a fetcher killed mid-poll holds its feeds' lease; keep it short so the test ends
    "NEWSFLOW_POLL_LEASE_S": "15",
    "NEWSFLOW_SESSION_TIMEOUT_S": "6",
    "NEWSFLOW_REBALANCE_TIMEOUT_S": "6",
}
STAGE_OF = {service: stage for stage, service in harness.STAGES}
RESULTS = harness.ROOT / "bench-results"


def _record(name: str, data: dict[str, Any]) -> None:
    """Keep each fault's numbers for the report (bench-results/ is not committed)."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"fault-{name}.json").write_text(json.dumps(data, indent=2, default=str))
    print(f"\n{name}: {json.dumps(data, default=str)}")


class Run:
    """One pipeline run: corpus server, topics, workers; helpers to wait and to check."""

    def __init__(self, ep: harness.Endpoints, network: SiteNetwork, tmp_path: Path, **env: str):
        self.ep = ep
        self.network = network
        self.prefix = f"f{uuid.uuid4().hex[:8]}."
        harness.create_topics(ep.bootstrap, prefix=self.prefix, partitions=4)
        self.metrics_base = harness.free_metrics_base()
        self.workers = harness.Workers(
            harness.worker_env(
                ep,
                prefix=self.prefix,
                metrics_base=self.metrics_base,
                **FAULT_SETTINGS,
                **env,
            ),
            tmp_path / "logs",
        )
        self.started = time.monotonic()

    def stage_count(self, service: str) -> float:
        port = self.metrics_base + harness.SERVICES.index(service)
        return harness.scrape_counts(port).get((STAGE_OF[service], "ok"), 0.0)

    def wait_until(self, what: str, check: Callable[[], bool], timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            self.workers.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not reached in {timeout:.0f}s")
            time.sleep(0.2)

    def stored(self) -> int:
        return asyncio.run(harness.progress(self.ep.database_url)).stored

    def finish(self, expect: int, **kwargs: Any) -> harness.Progress:
        return harness.wait_done(
            self.ep.database_url,
            self.workers,
            expect_links=expect,
            timeout=RUN_TIMEOUT_S,
            **kwargs,
        )

    def check_complete(self, n: int) -> dict[str, Any]:
        """Every article exactly once with entities; every link stored; no dead letters."""
        rows = asyncio.run(
            harness.fetch(
                self.ep.database_url,
                "SELECT a.canonical_url, count(ae.entity_id) AS entities FROM articles a"
                " LEFT JOIN article_entities ae ON ae.article_id = a.id GROUP BY a.id",
            )
        )
        urls = [r["canonical_url"] for r in rows]
        expected = {self.network.article_url(i) for i in range(n)}
        assert len(urls) == len(set(urls)) == n, (len(urls), len(set(urls)), n)
        assert set(urls) == expected, sorted(set(urls) ^ expected)[:5]
        without = [r["canonical_url"] for r in rows if r["entities"] == 0]
        assert not without, f"{len(without)} articles without entities, e.g. {without[:3]}"
        links = asyncio.run(
            harness.fetch(
                self.ep.database_url, "SELECT outcome, count(*) AS n FROM seen_links GROUP BY 1"
            )
        )
        assert {r["outcome"]: r["n"] for r in links} == {"stored": n}
        dead = asyncio.run(
            harness.fetch(
                self.ep.database_url, "SELECT stage, error_kind, detail, url FROM dead_letters"
            )
        )
        assert not dead, [dict(r) for r in dead[:5]]
        return {"articles": n, "entity_links": sum(r["entities"] for r in rows)}


@pytest.fixture
def network() -> Any:
    with serving(Corpus(articles=ARTICLES, hosts=HOSTS, seed=SEED)) as net:
        yield net


@pytest.mark.parametrize("victim", harness.SERVICES)
def test_kill9_and_restart_loses_and_duplicates_nothing(
    victim: str, fault_env: harness.Endpoints, network: SiteNetwork, tmp_path: Path
) -> None:
    run = Run(fault_env, network, tmp_path)
    try:
        run.workers.start_all()
        asyncio.run(harness.add_feeds(fault_env.database_url, network.feed_urls))
        threshold = FAULT_AT * ARTICLES
        run.wait_until(f"{victim} at {threshold:.0f}", lambda: run.stage_count(victim) >= threshold)
        at = {"stage_count": run.stage_count(victim), "stored": run.stored()}
        run.workers.kill9(victim)
        killed_at = time.monotonic()
        run.workers.start(victim)
        run.finish(ARTICLES)
        result = run.check_complete(ARTICLES)
        assert run.workers.exits == [(victim, -9)]  # nobody else died
    finally:
        run.workers.stop()
    _record(
        f"kill9-{victim}",
        {
            **result,
            "killed_at": at,
            "recovered_and_finished_s": round(time.monotonic() - killed_at, 1),
            "total_s": round(time.monotonic() - run.started, 1),
        },
    )


def test_postgres_outage_backs_off_without_crashing_or_dropping(
    fault_env: harness.Endpoints, network: SiteNetwork, tmp_path: Path
) -> None:
    run = Run(fault_env, network, tmp_path)
    home = fault_env.home
    try:
        run.workers.start_all()
        pids = {s: run.workers.pid(s) for s in harness.SERVICES}
        asyncio.run(harness.add_feeds(fault_env.database_url, network.feed_urls))
        run.wait_until("stored > 25%", lambda: run.stored() >= 0.25 * ARTICLES)
        state = stack.read_state(home)
        assert state.postgres is not None and state.postgres.port
        port = state.postgres.port
        stored_before = run.stored()
        stack.stop_postgres(state.postgres)
        down_at = time.monotonic()
        while time.monotonic() - down_at < POSTGRES_DOWN_S:
            run.workers.check_alive()  # no worker may exit while its database is away
            time.sleep(0.5)
        state.postgres = stack.start_postgres(home, port=port)  # the same port: same URLs
        stack.write_state(home, state)  # so the session teardown stops the new server
        run.finish(ARTICLES, tolerate_db_errors=True)
        result = run.check_complete(ARTICLES)
        assert not run.workers.exits
        assert {s: run.workers.pid(s) for s in harness.SERVICES} == pids  # no restarts
        retries = {s: run.workers.log_text(s).count("retrying in") for s in harness.SERVICES}
    finally:
        run.workers.stop()
    _record(
        "postgres-outage",
        {
            **result,
            "stored_before_outage": stored_before,
            "down_s": POSTGRES_DOWN_S,
            "retry_log_lines": retries,
            "recovered_and_finished_s": round(time.monotonic() - down_at, 1),
        },
    )


POISON = (b"{not json at all", b'{"schema_version": 1, "url": 42, "unexpected": true}')


async def _produce(bootstrap: str, records: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for topic, value in records:
            await producer.send_and_wait(topic, value, key=b"poison")
    finally:
        await producer.stop()


#: every topic a stage of the harness's pipeline reads (its four services). news.stored.v1's
#: readers, the alerter and the storyteller, are not started by the harness, so their topic is
#: not poisoned here (they decode through the same shared.stage path).
CONSUMED_TOPICS = tuple(
    dict.fromkeys(
        topic for spec in STAGES if spec.service in harness.SERVICES for topic in spec.inputs()
    )
)


def test_poison_messages_go_to_the_dlq_and_the_pipeline_keeps_flowing(
    fault_env: harness.Endpoints, tmp_path: Path
) -> None:
    n = min(ARTICLES, 60)
    with serving(Corpus(articles=n, hosts=6, seed=SEED + 1)) as net:
        run = Run(fault_env, net, tmp_path)
        try:
            run.workers.start_all()
            asyncio.run(harness.add_feeds(fault_env.database_url, net.feed_urls))
            run.wait_until("first articles stored", lambda: run.stored() >= 5)
            topics = [run.prefix + spec.name for spec in CONSUMED_TOPICS]
            asyncio.run(
                _produce(fault_env.bootstrap, [(t, value) for t in topics for value in POISON])
            )
            run.finish(n)
            dead = asyncio.run(
                harness.fetch(
                    fault_env.database_url,
                    "SELECT stage, error_kind, source_topic, detail FROM dead_letters",
                )
            )
            stored = run.stored()
            assert not run.workers.exits
        finally:
            run.workers.stop()
    by_topic: dict[str, int] = {}
    for row in dead:
        assert row["error_kind"] == "invalid_message", dict(row)
        by_topic[row["source_topic"]] = by_topic.get(row["source_topic"], 0) + 1
    # every topic's consumer dead-lettered both records (the DLQ topic's own consumer too;
    # it labels them with the unprefixed topic name)
    for spec in CONSUMED_TOPICS:
        got = by_topic.get(run.prefix + spec.name, 0) + by_topic.get(spec.name, 0)
        assert got == len(POISON), (spec.name, by_topic)
    assert stored == n
    _record("poison", {"dead_letters_by_topic": by_topic, "articles_stored": stored})


THROTTLE_DIR = Path(__file__).resolve().parent / "throttle"


def test_slow_enricher_causes_backpressure_not_memory_growth(
    fault_env: harness.Endpoints, tmp_path: Path
) -> None:
    n = min(ARTICLES, 150)
    delay = 0.25
    with serving(Corpus(articles=n, hosts=10, seed=SEED + 2)) as net:
        run = Run(fault_env, net, tmp_path)
        try:
            run.workers.start_all(services=("fetcher", "parser", "writer"))
            # a sitecustomize on PYTHONPATH wraps Enricher.enrich with a sleep: a slow consumer
            run.workers.start(
                "enricher",
                PYTHONPATH=f"{THROTTLE_DIR}{os.pathsep}{harness.ROOT}",
                NEWSFLOW_TEST_ENRICH_DELAY_S=str(delay),
            )
            pids = {s: run.workers.pid(s) for s in harness.SERVICES}
            with harness.Sampler(pids, interval=0.5) as sampler:
                asyncio.run(harness.add_feeds(fault_env.database_url, net.feed_urls))
                run.wait_until(
                    "parser ahead", lambda: run.stage_count("parser") >= 0.9 * n, timeout=300
                )
                # the parser finished while the enricher is far behind: the backlog waits in
                # the broker, not in any worker's memory
                lag = run.stage_count("parser") - run.stage_count("enricher")
                run.finish(n)
            stats = sampler.report()
            enricher_rss = [rss for _t, rss in sampler.rss_series["enricher"]]
            run.check_complete(n)
            assert "throttled enricher" in run.workers.log_text("enricher")
        finally:
            run.workers.stop()
    assert lag >= 0.5 * n, lag
    # bounded: the enricher's memory at the end of the backlog is close to where it was when
    # the backlog was largest (the consumer buffers a bounded window, not the whole topic)
    half = len(enricher_rss) // 2
    growth_mb = (max(enricher_rss[half:]) - max(enricher_rss[:half])) / 2**20
    assert growth_mb < 100, growth_mb
    _record(
        "slow-enricher",
        {
            "articles": n,
            "delay_per_article_s": delay,
            "backlog_when_parser_done": lag,
            "enricher_rss_growth_second_half_mb": round(growth_mb, 1),
            "processes": stats,
        },
    )
