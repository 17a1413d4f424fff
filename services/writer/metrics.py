"""Writer-only Prometheus metrics (the shared ones live in :mod:`shared.metrics`).

Kept apart from ``newsflow_messages_total`` on purpose: the supervisor sums that counter per
(stage, outcome) across services, and counting a fetch failure again when the writer stores
its dead letter would double it.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
