"""Alert latency from stored to delivered, on the embedded broker and PostgreSQL.

    python -m tests.bench.alerter_latency [--articles 300] [--watches 1000]

Starts a throwaway stack (Tansu + PostgreSQL), one writer and one alerter worker, a loopback
webhook receiver, saves *watches* watches (one with the webhook; it matches every third
article), then feeds enriched articles to the writer at a steady rate (no backlog) and reports
p50/p95 of ``alerts.delivered_at - articles.updated_at`` (the writer's commit time): the
confirmation hop, matching, the alert transaction, producing to news.alerts.v1 and the signed
POST.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import tempfile
from pathlib import Path

import asyncpg
from aiohttp import web

from services.alerter.store import add_watch
from shared import kafka, stack
from shared.db.migrate import upgrade
from shared.db.session import create_engine, session_factory
from shared.kafka import make_producer
from shared.topology import ENRICHED
from tests.support.factories import article, enriched
from tests.support.processes import service_env, workers


async def main(articles: int, watches: int, rate: float) -> None:
    home = Path(tempfile.mkdtemp(prefix="alerter-latency-"))
    os.chmod(home, 0o755)
    state = stack.up(home).state
    try:
        assert state.kafka and state.postgres
        bootstrap, url = state.kafka.endpoint, state.postgres.endpoint
        assert bootstrap and url
        await asyncio.to_thread(upgrade, url)  # alembic runs its own event loop
        await kafka.create_topics(bootstrap, partitions=4, prefix="lat.")
        received = 0
        expected = len(range(0, articles, 3))
        all_received = asyncio.Event()

        async def receive(request: web.Request) -> web.Response:
            nonlocal received
            await request.read()
            received += 1
            if received >= expected:
                all_received.set()
            return web.Response(status=204)

        app = web.Application()
        app.router.add_post("/hook", receive)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        hook = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"

        engine = create_engine(url)
        sessions = session_factory(engine)
        async with sessions() as session:
            await add_watch(session, "hooked", "Sirnak", webhook_url=hook)
            for i in range(watches - 1):  # the others rarely match: the realistic case
                await add_watch(session, f"w{i}", f'zq{i} OR entity:"ORG:x{i}"')
            await session.commit()
        await engine.dispose()

        env = service_env(
            bootstrap=bootstrap,
            database_url=url,
            prefix="lat.",
            home=home,
            NEWSFLOW_ALLOW_PRIVATE_NETWORKS="true",
        )
        producer = make_producer(bootstrap)
        await producer.start()
        with workers(["writer", "alerter"], env, home / "logs"):
            await asyncio.sleep(15)  # group joins and model-free start-up
            for i in range(articles):
                title = f"Clashes in Sirnak {i}" if i % 3 == 0 else f"Talks in Erbil {i}"
                item = enriched(article(f"https://news.example.com/{i}", title=title))
                await producer.send_and_wait(
                    ENRICHED.full_name("lat."), item.to_bytes(), key=item.article.url.encode()
                )
                await asyncio.sleep(1 / rate)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_received.wait(), timeout=120)
            # the receiver answers before the alerter records the delivery: wait for the rows
            conn = await asyncpg.connect(url.replace("+asyncpg", ""))
            for _ in range(40):
                done = await conn.fetchval(
                    "SELECT count(*) FROM alerts WHERE delivery = 'delivered'"
                )
                if done >= expected:
                    break
                await asyncio.sleep(0.25)
            await conn.close()
        await producer.stop()
        await runner.cleanup()
        conn = await asyncpg.connect(url.replace("+asyncpg", ""))
        rows = await conn.fetch(
            "SELECT extract(epoch FROM a.delivered_at - ar.updated_at) AS s FROM alerts a "
            "JOIN articles ar ON ar.id = a.article_id WHERE a.delivery = 'delivered'"
        )
        states = await conn.fetch(
            "SELECT (SELECT count(*) FROM articles) AS articles, "
            "(SELECT count(*) FROM alert_scans) AS scanned, "
            "(SELECT count(*) FROM alerts) AS alerts, "
            "(SELECT count(*) FROM alerts WHERE delivery <> 'delivered') AS undelivered"
        )
        print(dict(states[0]))
        latencies = sorted(float(r["s"]) for r in rows)
        await conn.close()
        p95 = latencies[int(0.95 * (len(latencies) - 1))]
        print(
            f"watches {watches}, articles {articles} at {rate}/s, alerts delivered "
            f"{len(latencies)}/{expected}: stored -> delivered p50 "
            f"{statistics.median(latencies):.3f} s, p95 {p95:.3f} s, max {latencies[-1]:.3f} s"
        )
    finally:
        stack.down(home)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--articles", type=int, default=300)
    parser.add_argument("--watches", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=20.0, help="articles per second")
    args = parser.parse_args()
    asyncio.run(main(args.articles, args.watches, args.rate))
