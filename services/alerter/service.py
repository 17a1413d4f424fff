"""The alerter's work as plain functions, called by the thin faust agent (and by tests).

Per batch of stored-article confirmations:

1. :meth:`WatchSet.refresh` reloads the active watches if any changed (one cheap query per
   batch; only added or edited queries are parsed again), so new, edited and paused watches
   apply from the next batch without a restart;
2. :func:`match_batch`: in one transaction, load the articles and their entity keys, match,
   insert the alerts (``ON CONFLICT DO NOTHING`` on (watch, article)) and record the scans,
   commit. Only alerts created by this transaction come back, so a redelivered batch or a
   restarted alerter creates nothing twice;
3. the caller produces them to ``news.alerts.v1``, then :func:`mark_alerts_published`;
4. :func:`deliver` sends each alert of a watch with a webhook (:class:`Deliverer`: signed,
   retried per destination) and records the outcome on the alert and the watch.

Alerts created but not yet produced or delivered when a worker dies are picked up by
:func:`unfinished` when the next worker starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerter import store
from services.alerter.matcher import CompiledWatch, Matcher, compile_watch
from services.alerter.metrics import STORED_TO_ALERT_SECONDS
from services.alerter.query import QueryError
from services.alerter.webhooks import Attempt, Deliverer, Outcome
from shared.db.models import Alert as AlertRow
from shared.db.models import Article as ArticleRow
from shared.db.models import Watch
from shared.dlq import build_dead_letter
from shared.errors import PermanentError
from shared.messages import Alert, DeadLetter
from shared.metrics import MESSAGES
from shared.retry import until_done

logger = logging.getLogger(__name__)

#: Standard Webhooks payload type of an alert.
WEBHOOK_EVENT_TYPE = "newsflow.alert"


class WatchSet:
    """The active watches as a :class:`Matcher`, reloaded when they change."""

    def __init__(self) -> None:
        self.matcher = Matcher([])
        self.hooks: dict[int, store.Destination] = {}
        self.version: str | None = None
        self._compiled: dict[tuple[int, str, str], CompiledWatch] = {}

    async def refresh(self, session: AsyncSession) -> bool:
        """Reload if any watch changed since the last call; True if it did."""
        version = await store.watches_version(session)
        if version == self.version:
            return False
        rows = await store.active_watch_rows(session)
        compiled: dict[tuple[int, str, str], CompiledWatch] = {}
        hooks: dict[int, store.Destination] = {}
        for watch_id, name, query, url, secret in rows:
            key = (watch_id, name, query)
            watch = self._compiled.get(key)
            if watch is None:
                try:
                    watch = compile_watch(watch_id, name, query)
                except QueryError as exc:  # a saved query the grammar no longer accepts
                    logger.error("watch %s (%s) skipped: %s", watch_id, name, exc)
                    continue
            compiled[key] = watch
            if url:
                hooks[watch_id] = store.Destination(url, secret)
        self._compiled = compiled
        self.matcher = Matcher(list(compiled.values()))
        self.hooks = hooks
        self.version = version
        logger.info("watches loaded active=%s webhooks=%s", len(compiled), len(hooks))
        return True


@dataclass(frozen=True, slots=True)
class BatchResult:
    alerts: list[Alert]
    scanned: int
    missing: list[int]  # ids not found (article deleted since it was stored)


async def _alerts_by_id(session: AsyncSession, ids: Sequence[int]) -> list[Alert]:
    if not ids:
        return []
    rows = (
        await session.execute(
            select(AlertRow, Watch.name, Watch.query, ArticleRow)
            .join(Watch, Watch.id == AlertRow.watch_id)
            .join(ArticleRow, ArticleRow.id == AlertRow.article_id)
            .where(AlertRow.id.in_(list(ids)))
            .order_by(AlertRow.id)
        )
    ).all()
    return [
        Alert(
            alert_id=alert.id,
            watch_id=alert.watch_id,
            watch_name=name,
            query=query,
            article_id=article.id,
            url=article.url,
            canonical_url=article.canonical_url,
            title=article.title,
            source=article.host,
            language=article.language,
            published_at=article.published_at,
            matched_terms=list(alert.matched_terms),
            matched_entities=list(alert.matched_entities),
            reason=alert.reason,
            alerted_at=alert.created_at,
        )
        for alert, name, query, article in rows
    ]


async def match_batch(
    sessions: async_sessionmaker[AsyncSession], watches: WatchSet, article_ids: Sequence[int]
) -> BatchResult:
    """Match stored articles against the active watches and create their alerts.

    One transaction; outages are retried (``until_done``). Returns only the alerts this call
    created (a redelivered batch returns none).
    """
    ids = sorted(set(article_ids))

    async def work() -> BatchResult:
        async with sessions() as session:
            await watches.refresh(session)
            loaded = await store.load_articles(session, ids)
            matches = [m for art in loaded for m in watches.matcher.match(art.doc)]
            created = await store.insert_alerts(session, matches, webhooks=watches.hooks)
            await store.record_scans(session, [(a.doc.article_id, a.enriched_at) for a in loaded])
            await session.commit()
            alerts = await _alerts_by_id(session, [a.id for a in created])
        found = {a.doc.article_id for a in loaded}
        return BatchResult(alerts, len(loaded), [i for i in ids if i not in found])

    return await until_done(work, what="alerter batch")


async def mark_alerts_published(
    sessions: async_sessionmaker[AsyncSession], alerts: Sequence[Alert]
) -> None:
    async def work() -> None:
        async with sessions() as session:
            await store.mark_published(session, [a.alert_id for a in alerts])
            await session.commit()

    await until_done(work, what="mark alerts published")


@dataclass(frozen=True, slots=True)
class Unfinished:
    """What a previous worker left: alerts to produce, and deliveries to run."""

    to_publish: list[Alert]
    to_deliver: list[tuple[Alert, store.Destination]]


async def unfinished(sessions: async_sessionmaker[AsyncSession]) -> Unfinished:
    """Alerts a previous worker created but did not finish producing or delivering.

    A pending delivery whose watch no longer has a webhook is closed as ``none``.
    """

    async def work() -> Unfinished:
        async with sessions() as session:
            rows = await store.unfinished_alerts(session)
            for row in rows:
                if row.pending_delivery and row.destination is None:
                    await store.record_delivery(
                        session,
                        row.id,
                        state="none",
                        attempts=0,
                        status=None,
                        error="the watch's webhook was removed before delivery",
                    )
            await session.commit()
            alerts = {a.alert_id: a for a in await _alerts_by_id(session, [r.id for r in rows])}
        return Unfinished(
            to_publish=[alerts[r.id] for r in rows if r.unpublished and r.id in alerts],
            to_deliver=[
                (alerts[r.id], r.destination)
                for r in rows
                if r.pending_delivery and r.destination is not None and r.id in alerts
            ],
        )

    return await until_done(work, what="unfinished alerts")


def webhook_body(alert: Alert) -> str:
    """The webhook body: a Standard Webhooks envelope around the ``news.alerts.v1`` record."""
    return orjson.dumps(
        {
            "type": WEBHOOK_EVENT_TYPE,
            "timestamp": alert.alerted_at.astimezone(UTC).isoformat(),
            "data": alert.model_dump(mode="json"),
        }
    ).decode()


async def deliver(
    sessions: async_sessionmaker[AsyncSession],
    deliverer: Deliverer,
    alert: Alert,
    destination: store.Destination,
) -> Outcome:
    """Deliver one alert to its watch's webhook and record every attempt and the outcome.

    Never raises for HTTP failures; the caller dead-letters a ``failed`` outcome.
    """

    async def on_attempt(attempt: Attempt, failures: int, delay: float | None) -> None:
        async def work() -> None:
            async with sessions() as session:
                await store.record_attempt(
                    session,
                    alert.watch_id,
                    ok=attempt.verdict == "delivered",
                    status=attempt.status,
                    error=attempt.error,
                    failures=failures,
                    next_delay_s=delay,
                )
                await session.commit()

        await until_done(work, what="watch delivery status")

    outcome = await deliverer.deliver(
        destination.url,
        webhook_body(alert),
        secret=destination.secret,
        msg_id=f"alert_{alert.alert_id}",
        on_attempt=on_attempt,
    )

    async def record() -> None:
        async with sessions() as session:
            await store.record_delivery(
                session,
                alert.alert_id,
                state=outcome.state,
                attempts=outcome.attempts,
                status=outcome.status,
                error=outcome.error,
            )
            await session.commit()

    await until_done(record, what="alert delivery")
    if outcome.state != "delivered":
        logger.warning(
            "webhook %s alert=%s watch=%s status=%s error=%s",
            outcome.state,
            alert.alert_id,
            alert.watch_id,
            outcome.status,
            outcome.error,
        )
    return outcome


def delivery_dead_letter_payload(alert: Alert, outcome: Outcome) -> dict[str, Any]:
    """What the dead letter of a failed delivery carries (the alert and why it failed)."""
    return {
        "alert": alert.model_dump(mode="json"),
        "status": outcome.status,
        "error": outcome.error,
    }


#: Webhook deliveries in flight at once, all destinations (one at a time per destination).
DEFAULT_DELIVERY_CONCURRENCY = 16
FailedHook = Callable[[Alert, Outcome], Awaitable[None]]


class Dispatcher:
    """Runs webhook deliveries in the background so matching never waits on a slow receiver.

    Safe to ack the input before a delivery ends: the alert stays ``pending`` in PostgreSQL
    until its outcome is recorded, and :func:`unfinished` hands it to the next worker after a
    crash. ``on_failed`` is awaited for each delivery that ends ``failed`` (the agent
    dead-letters it with ``stage=alert``); ``gone`` (410) is recorded, not dead-lettered.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        deliverer: Deliverer,
        *,
        on_failed: FailedHook,
        concurrency: int = DEFAULT_DELIVERY_CONCURRENCY,
    ) -> None:
        self._sessions = sessions
        self._deliverer = deliverer
        self._on_failed = on_failed
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._submitted: set[int] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def submit(self, alert: Alert, destination: store.Destination) -> bool:
        """Start delivering *alert* unless it is already in flight here; True if started."""
        if alert.alert_id in self._submitted:
            return False
        self._submitted.add(alert.alert_id)
        task = asyncio.create_task(self._run(alert, destination), name=f"alert-{alert.alert_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _run(self, alert: Alert, destination: store.Destination) -> None:
        try:
            async with self._slots:
                outcome = await deliver(self._sessions, self._deliverer, alert, destination)
            if outcome.state == "failed":
                await self._on_failed(alert, outcome)
        except asyncio.CancelledError:
            raise
        except Exception:
            # the alert stays pending in the DB; the next worker start retries it
            logger.exception("delivery of alert %s crashed; left pending", alert.alert_id)
        finally:
            self._submitted.discard(alert.alert_id)

    async def drain(self) -> None:
        """Wait for every delivery in flight (tests, ``run --once``)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel deliveries in flight; their alerts stay pending for the next worker."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)


def failed_delivery_letter(alert: Alert, outcome: Outcome, *, service: str) -> DeadLetter:
    """The ``stage=alert`` dead letter of a delivery that ended ``failed``: the alert record
    as payload, the last status as the error kind (``webhook_503``, ``webhook_error``).

    No source topic: replaying it onto a topic would not redeliver the webhook (the alert and
    its failure stay in the ``alerts`` table and the watch's status).
    """
    kind = f"webhook_{outcome.status}" if outcome.status else "webhook_error"
    MESSAGES.labels("alert", "dlq", kind).inc()
    return build_dead_letter(
        "alert",
        PermanentError(outcome.error or "webhook delivery failed", kind=kind),
        payload=alert.to_bytes(),
        source_topic=None,
        key=str(alert.watch_id),
        url=alert.url,
        service=service,
    )


Publish = Callable[[list[Alert]], Awaitable[None]]


class Alerter:
    """One worker's loop body: match a batch, publish its alerts, start their deliveries.

    *publish* produces alerts to ``news.alerts.v1`` and returns once the broker has them;
    they are then marked published. Used by the faust agent and by tests.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        dispatcher: Dispatcher,
        publish: Publish,
        watches: WatchSet | None = None,
    ) -> None:
        self.sessions = sessions
        self.dispatcher = dispatcher
        self.watches = watches or WatchSet()
        self._publish = publish

    async def publish(self, alerts: list[Alert]) -> None:
        # produced, then marked: a crash in between re-produces them (same alert_id)
        if alerts:
            await self._publish(alerts)
            await mark_alerts_published(self.sessions, alerts)

    async def resume(self) -> int:
        """Finish what a previous worker left (alerts to produce, deliveries to run)."""
        left = await unfinished(self.sessions)
        await self.publish(left.to_publish)
        for alert, destination in left.to_deliver:
            self.dispatcher.submit(alert, destination)
        return len(left.to_publish) + len(left.to_deliver)

    async def handle(self, stored: dict[int, datetime]) -> BatchResult:
        """Match the stored articles (id -> stored_at), publish and deliver new alerts."""
        batch = await match_batch(self.sessions, self.watches, list(stored))
        await self.publish(batch.alerts)
        now = datetime.now(UTC)
        for alert in batch.alerts:
            STORED_TO_ALERT_SECONDS.observe(
                max(0.0, (now - stored[alert.article_id]).total_seconds())
            )
            destination = self.watches.hooks.get(alert.watch_id)
            if destination is not None:
                self.dispatcher.submit(alert, destination)
        return batch
