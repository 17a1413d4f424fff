"""The alerter's batch and delivery functions on a real PostgreSQL with a loopback webhook
receiver: signed requests, 503 then 200 retried, 410 recorded, a private-network webhook
refused, a redelivered batch (or a restarted alerter) creating no second alert, and watch
changes picked up without a restart."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook

from services.alerter.service import (
    Dispatcher,
    Unfinished,
    WatchSet,
    deliver,
    mark_alerts_published,
    match_batch,
    unfinished,
)
from services.alerter.store import add_watch, edit_watch, get_watch, unscanned_count
from services.alerter.webhooks import (
    Deliverer,
    RetryPolicy,
    WebhookError,
    check_url,
    guarded_client,
    new_secret,
)
from services.writer.articles import write_batch
from tests.integration.writer.cli_helpers import db_rows
from tests.support.factories import article, enriched


@dataclass
class Receiver:
    """A loopback webhook receiver answering a scripted sequence of statuses."""

    statuses: list[int] = field(default_factory=list)
    failing_ids: set[str] = field(default_factory=set)  # always 500 for these webhook-ids
    requests: list[tuple[dict[str, str], str]] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.text()))
        if request.headers.get("webhook-id") in self.failing_ids:
            return web.Response(status=500)
        status = self.statuses.pop(0) if self.statuses else 200
        headers = {"Retry-After": "1"} if status == 503 else {}
        return web.Response(status=status, headers=headers)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    rec.port = runner.addresses[0][1]
    try:
        yield rec
    finally:
        await runner.cleanup()


async def store_articles(sessions: async_sessionmaker[AsyncSession], n: int) -> list[int]:
    items = [
        enriched(article(f"https://news.example.com/{i}", title=f"Story {i} from Şırnak"))
        for i in range(n)
    ]
    report = await write_batch(sessions, items)
    return sorted((report.article_ids or {}).values())


async def test_alerts_once_signed_and_retried(
    sessions: async_sessionmaker[AsyncSession], database_url: str, receiver: Receiver
) -> None:
    ids = await store_articles(sessions, 2)
    secret = new_secret()
    async with sessions() as session:
        await add_watch(
            session,
            "sirnak",
            'Sirnak AND entity:"ORG:pkk"',  # the factories' key for PKK
            webhook_url=await check_url(receiver.url, allow_private=True),
            webhook_secret=secret,
        )
        await session.commit()
    watches = WatchSet()
    batch = await match_batch(sessions, watches, ids)
    assert batch.scanned == 2 and len(batch.alerts) == 2 and batch.missing == []
    # a redelivered batch, and a fresh alerter (restart) on the same batch: nothing new
    assert (await match_batch(sessions, watches, ids)).alerts == []
    assert (await match_batch(sessions, WatchSet(), ids)).alerts == []
    first = batch.alerts[0]
    assert first.matched_entities == ["ORG:pkk"]
    assert first.matched_terms == ["sirnak"]
    assert first.url.startswith("https://news.example.com/")
    # not yet produced or delivered: a restarted alerter would resume them
    left = await unfinished(sessions)
    assert {a.alert_id for a in left.to_publish} == {a.alert_id for a in batch.alerts}
    assert {a.alert_id for a, _d in left.to_deliver} == {a.alert_id for a in batch.alerts}
    assert left.to_deliver[0][1].url == receiver.url
    await mark_alerts_published(sessions, batch.alerts)

    receiver.statuses = [503, 200]  # the first alert: 503 (Retry-After: 1) then 200
    async with guarded_client(allow_private=True) as client:
        deliverer = Deliverer(client, policy=RetryPolicy(attempts=3, base_s=0.05, max_s=0.2))
        outcomes = [
            await deliver(sessions, deliverer, alert, watches.hooks[alert.watch_id])
            for alert in batch.alerts
        ]
    assert [o.state for o in outcomes] == ["delivered", "delivered"]
    assert outcomes[0].attempts == 2
    assert len(receiver.requests) == 3
    for headers, body in receiver.requests:
        payload = Webhook(secret).verify(body, headers)  # raises if the signature is wrong
        assert payload["type"] == "newsflow.alert"
        assert payload["data"]["watch_name"] == "sirnak"
    assert receiver.requests[0][0]["webhook-id"] == receiver.requests[1][0]["webhook-id"]
    rows = await db_rows(database_url, "SELECT delivery, attempts FROM alerts ORDER BY id")
    assert rows == [
        {"delivery": "delivered", "attempts": 2},
        {"delivery": "delivered", "attempts": 1},
    ]
    assert await unfinished(sessions) == Unfinished([], [])
    async with sessions() as session:
        assert await unscanned_count(session) == 0
        watch = await get_watch(session, "sirnak")
        assert watch.consecutive_failures == 0 and watch.last_error == "HTTP 503"


async def test_410_is_recorded_and_the_watch_stays_active(
    sessions: async_sessionmaker[AsyncSession], database_url: str, receiver: Receiver
) -> None:
    ids = await store_articles(sessions, 1)
    async with sessions() as session:
        await add_watch(session, "gone", "Sirnak", webhook_url=receiver.url)
        await session.commit()
    watches = WatchSet()
    [alert] = (await match_batch(sessions, watches, ids)).alerts
    receiver.statuses = [410]
    async with guarded_client(allow_private=True) as client:
        outcome = await deliver(sessions, Deliverer(client), alert, watches.hooks[alert.watch_id])
    assert outcome.state == "gone" and len(receiver.requests) == 1
    rows = await db_rows(database_url, "SELECT delivery, last_status FROM alerts")
    assert rows == [{"delivery": "gone", "last_status": 410}]
    async with sessions() as session:
        watch = await get_watch(session, "gone")
    assert (watch.paused, watch.consecutive_failures, watch.last_status) == (False, 1, 410)
    assert "410" in (watch.last_error or "")


async def test_private_network_webhook_is_refused(receiver: Receiver) -> None:
    with pytest.raises(WebhookError, match="blocked address"):
        await check_url(receiver.url, allow_private=False)
    async with guarded_client(allow_private=False) as client:
        outcome = await Deliverer(client, rng=random.Random(0)).deliver(
            receiver.url, "{}", secret=None, msg_id="a"
        )
    assert outcome.state == "failed" and receiver.requests == []


async def test_added_edited_and_paused_watches_apply_without_restart(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ids = await store_articles(sessions, 3)
    watches = WatchSet()
    assert (await match_batch(sessions, watches, ids[:1])).alerts == []  # no watches yet
    async with sessions() as session:
        await add_watch(session, "w", "Story")
        await session.commit()
    assert len((await match_batch(sessions, watches, ids[1:2])).alerts) == 1
    async with sessions() as session:
        await edit_watch(session, "w", paused=True)
        await session.commit()
    assert (await match_batch(sessions, watches, ids[2:])).alerts == []
    async with sessions() as session:
        await edit_watch(session, "w", paused=False, query="Şırnak")
        await session.commit()
    again = await match_batch(sessions, watches, ids)
    # ids[1] already alerted for this watch; ids[0] and ids[2] alert now
    assert sorted(a.article_id for a in again.alerts) == [ids[0], ids[2]]


async def test_dispatcher_delivers_in_background_and_reports_failures(
    sessions: async_sessionmaker[AsyncSession], database_url: str, receiver: Receiver
) -> None:
    ids = await store_articles(sessions, 3)
    async with sessions() as session:
        await add_watch(session, "bg", "Story", webhook_url=receiver.url)
        await session.commit()
    watches = WatchSet()
    alerts = (await match_batch(sessions, watches, ids)).alerts
    receiver.failing_ids = {f"alert_{alerts[0].alert_id}"}  # exhausts a 2-attempt budget
    failed: list[tuple[int, str | None]] = []

    async def on_failed(alert, outcome) -> None:  # type: ignore[no-untyped-def]
        failed.append((alert.alert_id, outcome.error))

    async with guarded_client(allow_private=True) as client:
        deliverer = Deliverer(client, policy=RetryPolicy(attempts=2, base_s=0.01, max_s=0.02))
        dispatcher = Dispatcher(sessions, deliverer, on_failed=on_failed)
        for alert in alerts:
            assert dispatcher.submit(alert, watches.hooks[alert.watch_id])
        assert not dispatcher.submit(alerts[0], watches.hooks[alerts[0].watch_id])  # in flight
        await dispatcher.drain()
    assert len(dispatcher) == 0
    assert [a for a, _e in failed] == [alerts[0].alert_id]
    assert "gave up after 2 attempts" in (failed[0][1] or "")
    rows = await db_rows(database_url, "SELECT delivery FROM alerts ORDER BY id")
    assert [r["delivery"] for r in rows] == ["failed", "delivered", "delivered"]


async def test_pending_delivery_of_a_removed_webhook_is_closed(
    sessions: async_sessionmaker[AsyncSession], database_url: str, receiver: Receiver
) -> None:
    ids = await store_articles(sessions, 1)
    async with sessions() as session:
        await add_watch(session, "w", "Story", webhook_url=receiver.url)
        await session.commit()
    [alert] = (await match_batch(sessions, WatchSet(), ids)).alerts
    await mark_alerts_published(sessions, [alert])
    async with sessions() as session:
        await edit_watch(session, "w", webhook_url=None)
        await session.commit()
    assert await unfinished(sessions) == Unfinished([], [])
    rows = await db_rows(database_url, "SELECT delivery, last_error FROM alerts")
    assert rows[0]["delivery"] == "none" and "removed" in rows[0]["last_error"]
