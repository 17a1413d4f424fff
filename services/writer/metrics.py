"""Writer-only Prometheus metrics (the shared ones live in :mod:`shared.metrics`).

Kept apart from ``newsflow_messages_total`` on purpose: the supervisor sums that counter per
(stage, outcome) across services, and counting a fetch failure again when the writer stores
its dead letter would double it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import Counter, Histogram

from shared.messages import DeadLetter, EnrichedArticle
from shared.metrics import END_TO_END_SECONDS, MESSAGES, STAGE_SECONDS
from shared.stage import Decoded

logger = logging.getLogger(__name__)

#: table: articles | article_entities | entity_aliases | pages | dead_letters
ROWS_WRITTEN = Counter("newsflow_writer_rows_total", "Rows written by the writer", ["table"])
DEAD_LETTERS_STORED = Counter(
    "newsflow_dead_letters_stored_total",
    "Dead letters persisted to the dead_letters table, by failing stage and error kind",
    ["stage", "kind"],
)
BATCH_RECORDS = Histogram(
    "newsflow_writer_batch_records",
    "Records per writer transaction",
    ["topic"],
    buckets=(1, 5, 10, 25, 50, 100, 200, 500, 1000),
)


def record_store_batch(
    report: Any,
    decoded: list[Decoded[EnrichedArticle]],
    rejected: list[DeadLetter],
    *,
    topic: str,
    records: int,
    seconds: float,
) -> None:
    """Count one stored batch of *records* from *topic* (metrics, end-to-end latency of the
    stored articles) and log one outcome line per record at DEBUG: ok | duplicate | skipped."""
    STAGE_SECONDS.labels("store").observe(seconds)
    BATCH_RECORDS.labels(topic).observe(records)
    MESSAGES.labels("store", "ok", "-").inc(report.articles)
    MESSAGES.labels("store", "skipped", "stale").inc(report.skipped_stale)
    MESSAGES.labels("store", "duplicate", "-").inc(report.duplicates)
    ROWS_WRITTEN.labels("articles").inc(report.articles)
    ROWS_WRITTEN.labels("article_entities").inc(report.links)
    ROWS_WRITTEN.labels("entity_aliases").inc(report.aliases)
    now = time.time()
    stored = report.article_ids or {}
    for record in decoded:
        if record.item.article.canonical_url in stored:
            END_TO_END_SECONDS.observe(
                max(0.0, now - record.item.article.discovered_at.timestamp())
            )
    if logger.isEnabledFor(logging.DEBUG):
        rejected_urls = {letter.url for letter in rejected}
        for record in decoded:
            article = record.item.article
            if article.canonical_url in stored:
                logger.debug("ok stage=store url=%s", article.url)
            elif article.status == "duplicate":
                logger.debug("duplicate stage=store url=%s", article.url)
            elif article.url not in rejected_urls:
                logger.debug("skipped stage=store reason=stale url=%s", article.url)
        logger.debug(
            "stored batch articles=%s links=%s entities=%s stale=%s dlq=%s",
            report.articles,
            report.links,
            report.entities,
            report.skipped_stale,
            len(rejected),
        )
