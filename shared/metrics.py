"""Prometheus metrics shared by every service; each service serves them on its own port."""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import Counter, Histogram, start_http_server

from shared.topology import SERVICES

logger = logging.getLogger(__name__)


#: outcome: ok | dlq | retry | skipped | duplicate; kind: the error kind or "-".
MESSAGES = Counter(
    "newsflow_messages_total",
    "Messages handled per stage and outcome",
    ["stage", "outcome", "kind"],
)
STAGE_SECONDS = Histogram(
    "newsflow_stage_seconds",
    "Time spent per message or batch in a stage",
    ["stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
END_TO_END_SECONDS = Histogram(
    "newsflow_discovery_to_store_seconds",
    "From link discovery to the article row committed",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600),
)
FEED_POLLS = Counter("newsflow_feed_polls_total", "Feed polls by outcome", ["outcome"])


def metrics_port(base: int, service: str) -> int:
    """The Prometheus port of *service*: *base* + its index in the topology (0: disabled)."""
    return 0 if base == 0 else base + SERVICES.index(service)


#: loopback: other machines (and containers) cannot scrape unless a deployment says so
DEFAULT_BIND = "127.0.0.1"


def serve_metrics(port: int, addr: str = DEFAULT_BIND) -> Any:
    """Serve /metrics on *addr*:*port* in a daemon thread; the server, or None (port 0 or busy)."""
    if port == 0:
        return None
    try:
        server, _thread = start_http_server(port, addr=addr)
    except OSError as exc:  # a busy port must not take the service down
        logger.warning(
            "metrics port %s unavailable (%s); metrics disabled for this process", port, exc
        )
        return None
    return server
