"""Alerter service: news.stored.v1 -> active watches matched -> news.alerts.v1 and signed
webhooks (faust wiring; the work is :class:`services.alerter.service.Alerter`).

Per batch of stored-article confirmations, the new alerts are created in one transaction (one
per watch and article, whatever is redelivered), produced to ``news.alerts.v1`` and marked
published, their webhook deliveries start in the background, and ``take_events`` acks the
batch. A delivery still running when a worker dies stays ``pending`` in PostgreSQL; the next
worker resumes it (:meth:`Alerter.resume`). A delivery that exhausts its retries is
dead-lettered (``stage=alert``).
"""

from __future__ import annotations

import time
from typing import Any

import faust

from services.alerter.metrics import record_alert_batch
from services.alerter.service import Alerter, Dispatcher, failed_delivery_letter
from services.alerter.webhooks import Deliverer, Outcome, RetryPolicy, guarded_client
from shared.db.session import open_sessions
from shared.faust_app import create_app, send_all, send_dead_letters, stage_topics
from shared.messages import Alert
from shared.runtime import resolve_database_url
from shared.settings import Settings
from shared.stage import StageInput, decode_events
from shared.topology import ALERTS, DLQ, STORED

SERVICE = "alerter"


def build(settings: Settings, *, bootstrap: str) -> faust.App:
    app = create_app(SERVICE, settings, bootstrap=bootstrap)
    topics = stage_topics(app, SERVICE, settings)
    source = StageInput.of(SERVICE, settings.topic_prefix, key_of=lambda s: s.canonical_url)
    url = resolve_database_url(settings)
    policy = RetryPolicy(
        attempts=settings.alert_webhook_attempts,
        base_s=settings.alert_webhook_backoff_base_s,
        max_s=settings.alert_webhook_backoff_max_s,
        max_retry_after_s=settings.alert_webhook_max_retry_after_s,
    )

    async def publish(alerts: list[Alert]) -> None:
        await send_all(app, topics[ALERTS], ((str(a.watch_id), a.to_bytes()) for a in alerts))

    async def dead_letter(alert: Alert, outcome: Outcome) -> None:
        letter = failed_delivery_letter(alert, outcome, service=SERVICE)
        await send_dead_letters(app, topics[DLQ], [letter])

    @app.agent(topics[STORED])
    async def match_stored(stream: Any) -> None:  # faust.Stream; StreamT lacks take_events
        async with (
            open_sessions(url) as sessions,
            guarded_client(
                allow_private=settings.allow_private_networks,
                timeout_s=settings.alert_webhook_timeout_s,
            ) as client,
        ):
            deliverer = Deliverer(client, policy=policy)
            dispatcher = Dispatcher(
                sessions,
                deliverer,
                on_failed=dead_letter,
                concurrency=settings.alert_webhook_concurrency,
            )
            alerter = Alerter(sessions, dispatcher, publish)
            try:
                await alerter.resume()
                async for events in stream.take_events(
                    settings.alerter_batch_size, within=settings.alerter_batch_seconds
                ):
                    started = time.perf_counter()
                    decoded, letters = decode_events(events, STORED.model, source)
                    batch = await alerter.handle(
                        {r.item.article_id: r.item.stored_at for r in decoded}
                    )
                    record_alert_batch(decoded, len(batch.alerts), started)
                    await send_dead_letters(app, topics[DLQ], letters)
            finally:
                await dispatcher.close()

    return app
