"""Writer service: news.enriched.v1 (+ news.pages.v1, news.dlq.v1) -> PostgreSQL (faust wiring).

Offsets are acked only after the batch's transaction commits: ``take_events`` acks the
events after the loop body returns, and faust commits acked offsets on its interval.

A batch the database rejects for a reason other than an outage (a value PostgreSQL cannot
store, a constraint, a trigger) is retried record by record, so one poison record costs
itself only: it goes to ``news.dlq.v1`` as ``stage=store, error_kind=db_<SQLSTATE>`` with
its payload, and ``newsflow dlq replay --stage store`` re-sends it once the cause is fixed.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import Any

import faust

from services.writer.metrics import BATCH_RECORDS, DEAD_LETTERS_STORED, ROWS_WRITTEN
from services.writer.store import (
    AliasMemory,
    StoreReport,
    db_error_kind,
    merge_reports,
    write_batch,
    write_dead_letters,
    write_pages,
    write_parallel,
)
from shared.db.session import create_engine, session_factory
from shared.dlq import dead_letter
from shared.errors import PermanentError
from shared.faust_app import create_app, dlq_topic, send_dead_letters
from shared.messages import ContractError, DeadLetter, EnrichedArticle, Page
from shared.metrics import END_TO_END_SECONDS, MESSAGES, STAGE_SECONDS
from shared.retry import until_done
from shared.runtime import resolve_database_url
from shared.settings import Settings
from shared.stage import Decoded, decode_events
from shared.topology import DLQ, ENRICHED, PAGES

logger = logging.getLogger(__name__)

SERVICE = "writer"

__all__ = ["build", "store_isolating_poison"]


async def store_isolating_poison(
    sessions: Any,
    decoded: list[Decoded[EnrichedArticle]],
    *,
    source_topic: str,
    parts: int = 1,
    known_aliases: AliasMemory | None = None,
) -> tuple[StoreReport, list[DeadLetter]]:
    """Write *decoded* (in *parts* concurrent transactions); if the DB rejects it, one
    transaction per record.

    Outages are retried forever (``until_done``); a record the database rejects becomes a
    dead letter. Returns the merged report and the dead letters.
    """
    items = [record.item for record in decoded]
    try:
        work = partial(write_parallel, sessions, items, parts=parts, known_aliases=known_aliases)
        return await until_done(work, what="writer batch"), []
    except Exception as exc:  # non-transient: find the record(s) at fault
        if len(decoded) == 1:
            return StoreReport(article_ids={}), [_rejected(decoded[0], exc, source_topic)]
        logger.warning(
            "batch of %s rejected (%s); retrying record by record", len(decoded), db_error_kind(exc)
        )
    reports: list[StoreReport] = []
    letters: list[DeadLetter] = []
    for record in decoded:
        try:
            reports.append(
                await until_done(
                    partial(write_batch, sessions, [record.item], known_aliases=known_aliases),
                    what="writer record",
                )
            )
        except Exception as exc:
            letters.append(_rejected(record, exc, source_topic))
    return merge_reports(reports), letters


def _rejected(record: Decoded[EnrichedArticle], exc: Exception, source_topic: str) -> DeadLetter:
    item = record.item
    kind = db_error_kind(exc)
    logger.error("dlq stage=store kind=%s url=%s detail=%s", kind, item.article.url, exc)
    MESSAGES.labels("store", "dlq", kind).inc()
    error = PermanentError(f"{type(exc).__name__}: {exc}", kind=kind)
    return dead_letter(
        "store",
        error,
        payload=record.raw,
        source_topic=source_topic,
        key=item.article.canonical_url,
        url=item.article.url,
        attempt=record.attempt,
        service=SERVICE,
    )


def build(settings: Settings, *, bootstrap: str) -> faust.App:
    app = create_app(SERVICE, settings, bootstrap=bootstrap)
    enriched_name = settings.topic_prefix + ENRICHED.name
    enriched = app.topic(enriched_name, key_type=bytes, value_type=bytes)
    dlq = dlq_topic(app, settings)
    dlq_name = settings.topic_prefix + DLQ.name

    @app.agent(enriched)
    async def store_articles(stream: Any) -> None:  # faust.Stream; StreamT lacks take_events
        engine = create_engine(resolve_database_url(settings))
        sessions = session_factory(engine)
        known_aliases = AliasMemory()
        try:
            async for events in stream.take_events(
                settings.writer_batch_size, within=settings.writer_batch_seconds
            ):
                decoded, letters = decode_events(
                    events,
                    ENRICHED.model,
                    stage="store",
                    source_topic=enriched_name,
                    service=SERVICE,
                )
                started = time.perf_counter()
                report, rejected = await store_isolating_poison(
                    sessions,
                    decoded,
                    source_topic=enriched_name,
                    parts=settings.writer_parallel_transactions,
                    known_aliases=known_aliases,
                )
                letters += rejected
                STAGE_SECONDS.labels("store").observe(time.perf_counter() - started)
                BATCH_RECORDS.labels(ENRICHED.name).observe(len(events))
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
                if logger.isEnabledFor(logging.DEBUG):  # one outcome line per message
                    rejected_urls = {letter.url for letter in rejected}
                    for record in decoded:
                        item = record.item
                        url = item.article.url
                        if item.article.canonical_url in stored:
                            logger.debug("ok stage=store url=%s", url)
                        elif item.article.status == "duplicate":
                            logger.debug("duplicate stage=store url=%s", url)
                        elif url not in rejected_urls:
                            logger.debug("skipped stage=store reason=stale url=%s", url)
                logger.debug(
                    "stored batch articles=%s links=%s entities=%s stale=%s dlq=%s",
                    report.articles,
                    report.links,
                    report.entities,
                    report.skipped_stale,
                    len(letters),
                )
                await send_dead_letters(app, dlq, letters)
        finally:
            await engine.dispose()

    @app.agent(dlq)
    async def store_failures(stream: Any) -> None:
        engine = create_engine(resolve_database_url(settings), pool_size=2)
        sessions = session_factory(engine)
        try:
            async for events in stream.take_events(
                settings.writer_batch_size, within=settings.writer_batch_seconds
            ):
                decoded, undecodable = decode_events(
                    events, DLQ.model, stage="store", source_topic=dlq_name, service=SERVICE
                )
                for letter in undecodable:  # a DLQ record we cannot read is kept verbatim
                    logger.error(
                        "undecodable dead letter dropped into the table as-is: %s", letter.detail
                    )
                letters = [record.item for record in decoded] + undecodable
                stored = await until_done(
                    partial(write_dead_letters, sessions, letters), what="dead letters"
                )
                ROWS_WRITTEN.labels("dead_letters").inc(stored)
                for letter in letters:
                    DEAD_LETTERS_STORED.labels(letter.stage, letter.error_kind).inc()
        finally:
            await engine.dispose()

    if settings.writer_archive_pages:
        pages_name = settings.topic_prefix + PAGES.name
        pages = app.topic(pages_name, key_type=bytes, value_type=bytes)

        @app.agent(pages)
        async def archive_pages(stream: Any) -> None:
            engine = create_engine(resolve_database_url(settings), pool_size=2)
            sessions = session_factory(engine)
            try:
                async for events in stream.take_events(
                    settings.writer_page_batch_size, within=settings.writer_batch_seconds
                ):
                    batch: list[tuple[bytes, Page]] = []
                    for event in events:
                        raw = event.value if isinstance(event.value, bytes) else b""
                        try:
                            batch.append((raw, Page.from_bytes(raw)))
                        except ContractError:
                            # the parser dead-letters this record; archiving it adds nothing
                            MESSAGES.labels("archive", "skipped", "invalid_message").inc()
                    started = time.perf_counter()
                    written = await until_done(
                        partial(write_pages, sessions, batch), what="page archive"
                    )
                    STAGE_SECONDS.labels("archive").observe(time.perf_counter() - started)
                    BATCH_RECORDS.labels(PAGES.name).observe(len(events))
                    MESSAGES.labels("archive", "ok", "-").inc(written)
                    ROWS_WRITTEN.labels("pages").inc(written)
            finally:
                await engine.dispose()

    return app
