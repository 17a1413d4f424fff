"""The alerter stage on the real broker and PostgreSQL, with the real writer in front of it:
a watch added while the pipeline runs gets its first alert (on news.alerts.v1 and a signed
webhook to a loopback receiver, a 503 retried); redelivered batches and a kill -9 of the
alerter produce no second alert."""

from __future__ import annotations

import asyncio
import signal
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook

from services.alerter.store import add_watch, try_query
from services.alerter.webhooks import new_secret
from shared.kafka import make_producer
from shared.messages import Alert, EnrichedArticle
from shared.topology import ALERTS, ENRICHED
from tests.integration.writer.cli_helpers import db_rows
from tests.support.factories import T0, article, enriched
from tests.support.processes import logs, service_env, workers

WAIT_S = 90
PARTITIONS = 4  # what the topic_prefix fixture creates


async def until(check: Callable[[], Awaitable[bool]], what: str, log_dir: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{logs(log_dir)}")
        await asyncio.sleep(0.3)


def story(i: int, title: str) -> EnrichedArticle:
    return enriched(article(f"https://news.example.com/{i}", title=title))


async def test_alerts_once_through_redelivery_and_kill9(
    kafka_bootstrap: str,
    database_url: str,
    topic_prefix: str,
    tmp_path: Path,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    requests: list[tuple[dict[str, str], str, float]] = []
    statuses = [503]  # the first delivery is refused once, then accepted

    async def receive(request: web.Request) -> web.Response:
        requests.append((dict(request.headers), await request.text(), time.time()))
        status = statuses.pop(0) if statuses else 200
        return web.Response(status=status, headers={"Retry-After": "1"} if status == 503 else {})

    hook_app = web.Application()
    hook_app.router.add_post("/hook", receive)
    runner = web.AppRunner(hook_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    hook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"

    env = service_env(
        bootstrap=kafka_bootstrap,
        database_url=database_url,
        prefix=topic_prefix,
        home=tmp_path,
        NEWSFLOW_ALLOW_PRIVATE_NETWORKS="true",  # the receiver is on loopback
        NEWSFLOW_ALERT_WEBHOOK_BACKOFF_BASE_S="0.2",
        NEWSFLOW_ALERTER_BATCH_SECONDS="0.1",
    )
    log_dir = tmp_path / "logs"
    producer = make_producer(kafka_bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    alerts_topic = ALERTS.full_name(topic_prefix)
    consumer.assign([TopicPartition(alerts_topic, p) for p in range(PARTITIONS)])
    await consumer.seek_to_beginning()

    async def send(*items: EnrichedArticle) -> None:
        for item in items:
            await producer.send_and_wait(
                ENRICHED.full_name(topic_prefix),
                item.to_bytes(),
                key=item.article.canonical_url.encode(),
            )

    async def count(sql: str) -> int:
        return int((await db_rows(database_url, sql))[0]["n"])

    async def scanned(n: int) -> bool:
        return await count("SELECT count(*) AS n FROM alert_scans") >= n

    secret = new_secret()
    try:
        with workers(["writer", "alerter"], env, log_dir) as procs:
            await send(story(0, "Weather in Ankara"))
            await until(lambda: scanned(1), "the first article matched (no watches yet)", log_dir)

            # a watch added while the pipeline runs: picked up without a restart
            async with sessions() as session:
                await add_watch(
                    session, "sirnak", "Şırnak", webhook_url=hook_url, webhook_secret=secret
                )
                await session.commit()
            await send(story(1, "Clashes in Sirnak"), story(2, "Talks in Erbil"))

            async def delivered(n: int) -> bool:
                return (
                    await count("SELECT count(*) AS n FROM alerts WHERE delivery = 'delivered'")
                    >= n
                )

            await until(lambda: delivered(1), "the first alert delivered", log_dir)
            await send(story(3, "Şırnak: curfew lifted"))
            await until(lambda: delivered(2), "the second alert delivered", log_dir)

            # redelivery of every record: the writer confirms them again, nothing new alerts
            await send(
                *(
                    story(i, t)
                    for i, t in enumerate(
                        [
                            "Weather in Ankara",
                            "Clashes in Sirnak",
                            "Talks in Erbil",
                            "Şırnak: curfew lifted",
                        ]
                    )
                )
            )
            await asyncio.sleep(3)
            assert await count("SELECT count(*) AS n FROM alerts") == 2

            # kill -9 the alerter, start another, redeliver again plus one new match
            alerter = procs[1]
            alerter.send_signal(signal.SIGKILL)
            alerter.wait()
        with workers(["writer", "alerter"], env, tmp_path / "logs2"):
            await send(story(1, "Clashes in Sirnak"), story(4, "Sirnak again"))
            await until(lambda: delivered(3), "the alert after the restart", tmp_path / "logs2")
            await asyncio.sleep(2)

        rows = await db_rows(
            database_url,
            "SELECT a.watch_id, a.article_id, a.delivery, a.attempts, a.matched_terms, "
            "a.delivered_at, ar.updated_at FROM alerts a JOIN articles ar ON ar.id = a.article_id "
            "ORDER BY a.id",
        )
        assert len(rows) == 3
        assert len({(r["watch_id"], r["article_id"]) for r in rows}) == 3
        assert all(r["delivery"] == "delivered" and r["matched_terms"] == ["sirnak"] for r in rows)
        assert rows[0]["attempts"] == 2  # 503 (Retry-After: 1), then 200

        # every request is correctly signed; one webhook-id per alert (the retry reuses it)
        ids = [
            Webhook(secret).verify(body, headers)["data"]["alert_id"]
            for headers, body, _t in requests
        ]
        assert len(requests) == 4 and sorted(set(ids)) == sorted(ids[1:])

        # news.alerts.v1: at least one record per alert, all decodable, same alert ids
        got: list[Alert] = []
        deadline = time.monotonic() + 10
        while len({a.alert_id for a in got}) < 3 and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got.extend(Alert.from_bytes(record.value) for record in records)
        assert {a.alert_id for a in got} == set(ids)
        assert {a.watch_name for a in got} == {"sirnak"}

        # watch test on the stored articles returns exactly what the stream alerted on
        async with sessions() as session:
            _saved, found = await try_query(session, "Şırnak", since=T0 - timedelta(days=3650))
        assert {a.doc.article_id for a, _m in found} == {r["article_id"] for r in rows}

        latencies = [(r["delivered_at"] - r["updated_at"]).total_seconds() for r in rows[1:]]
        print(f"stored -> delivered (s): {sorted(round(x, 3) for x in latencies)}")
        assert statistics.median(latencies) < 10
    finally:
        await consumer.stop()
        await producer.stop()
        await runner.cleanup()
