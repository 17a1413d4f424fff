"""Poison isolation: one record the database rejects costs itself only.

A batch is written in one go; if the database rejects it for a reason other than an outage (a
value PostgreSQL cannot store, a constraint, a trigger), it is written again record by
record, and each rejected record becomes a dead letter ``stage=store, error_kind=db_<SQLSTATE>``
with its payload (``newsflow dlq replay --stage store`` re-sends it once the cause is fixed).
Outages are retried forever (:func:`shared.retry.until_done`), never dead-lettered.

:func:`isolate_poison` takes the writes as functions, so the policy is unit-tested without a
database or a broker (``tests/unit/writer/test_poison.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from services.writer.articles import (
    AliasMemory,
    StoreReport,
    merge_reports,
    write_batch,
    write_parallel,
)
from shared.db.errors import db_error_kind
from shared.errors import PermanentError
from shared.messages import DeadLetter, EnrichedArticle
from shared.retry import isolate_batch, until_done
from shared.stage import Decoded, StageInput, record_failed

logger = logging.getLogger(__name__)

Write = Callable[[list[EnrichedArticle]], Awaitable[StoreReport]]
T = TypeVar("T")


async def isolate_rows(
    items: list[T], *, write_all: Callable[[list[T]], Awaitable[int]], what: str
) -> tuple[int, list[tuple[T, Exception]]]:
    """The same policy as :func:`isolate_poison` for the writer's other batched writes (page
    archive, dead letters), via :func:`shared.retry.isolate_batch`: rows written, and
    ``(item, error)`` per item the database refused alone."""
    counts, refused = await isolate_batch(items, write_all, what=what)
    return sum(counts), refused


async def isolate_poison(
    decoded: list[Decoded[EnrichedArticle]],
    source: StageInput,
    *,
    write_all: Write,
    write_one: Write,
) -> tuple[StoreReport, list[DeadLetter]]:
    """``write_all(items)``; if it raises a non-transient error, ``write_one([item])`` per
    record. Returns the merged report and a dead letter per record the database rejected."""
    items = [record.item for record in decoded]
    try:
        return await until_done(partial(write_all, items), what="writer batch"), []
    except Exception as exc:  # non-transient: find the record(s) at fault
        if len(decoded) == 1:
            return StoreReport(article_ids={}), [rejected(decoded[0], exc, source)]
        logger.warning(
            "batch of %s rejected (%s); retrying record by record", len(decoded), db_error_kind(exc)
        )
    reports: list[StoreReport] = []
    letters: list[DeadLetter] = []
    for record in decoded:
        try:
            reports.append(
                await until_done(partial(write_one, [record.item]), what="writer record")
            )
        except Exception as exc:
            letters.append(rejected(record, exc, source))
    return merge_reports(reports), letters


async def store_isolating_poison(
    sessions: Any,
    decoded: list[Decoded[EnrichedArticle]],
    source: StageInput,
    *,
    parts: int = 1,
    known_aliases: AliasMemory | None = None,
) -> tuple[StoreReport, list[DeadLetter]]:
    """:func:`isolate_poison` on the database: the batch in *parts* concurrent transactions,
    then one transaction per record."""
    return await isolate_poison(
        decoded,
        source,
        write_all=partial(write_parallel, sessions, parts=parts, known_aliases=known_aliases),
        write_one=partial(write_batch, sessions, known_aliases=known_aliases),
    )


def rejected(record: Decoded[EnrichedArticle], exc: Exception, source: StageInput) -> DeadLetter:
    """The dead letter of a record the database refused (kind ``db_<SQLSTATE>``)."""
    kind = db_error_kind(exc)
    logger.error("dlq stage=store kind=%s url=%s detail=%s", kind, record.item.article.url, exc)
    error = PermanentError(f"{type(exc).__name__}: {exc}", kind=kind)
    return record_failed(
        source, error, payload=record.raw, item=record.item, attempt=record.attempt
    )
