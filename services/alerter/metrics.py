"""Prometheus metrics of the alerter (served on its port like every service's)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter, Histogram

from shared.metrics import MESSAGES, STAGE_SECONDS

STAGE = "alert"

ALERTS = Counter("newsflow_alerts_total", "Alerts created, per watch outcome", ["outcome"])
DELIVERIES = Counter(
    "newsflow_alert_deliveries_total", "Webhook deliveries by final state", ["state"]
)
STORED_TO_ALERT_SECONDS = Histogram(
    "newsflow_stored_to_alert_seconds",
    "From the article row committed (its confirmation's stored_at) to its alert produced",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
STORED_TO_DELIVERED_SECONDS = Histogram(
    "newsflow_stored_to_delivered_seconds",
    "From the article row committed to its alert's webhook delivered",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)


def record_alert_batch(decoded: Sequence[Any], alerts: int, started: float) -> None:
    """One batch: every confirmation matched (``ok``), the alerts it created, the time."""
    MESSAGES.labels(STAGE, "ok", "-").inc(len(decoded))
    ALERTS.labels("created").inc(alerts)
    STAGE_SECONDS.labels(STAGE).observe(time.perf_counter() - started)
