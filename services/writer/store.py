"""Idempotent batch upserts of enriched articles, entities, aliases and links.

One transaction per batch. Natural keys: ``articles.canonical_url``, ``entities.key``,
``(entity_id, alias)``, ``(article_id, entity_id)``. Rows are written in key order so two
writer workers upserting overlapping batches cannot deadlock. A redelivered *older* version
of an article never overwrites a newer one (``enriched_at`` guard), and a re-enriched article
replaces its entity links inside the same transaction.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import models
from shared.messages import DeadLetter, EnrichedArticle

logger = logging.getLogger(__name__)


@dataclass
class StoreReport:
    articles: int = 0
    skipped_stale: int = 0
    duplicates: int = 0
    entities: int = 0
    links: int = 0
    aliases: int = 0
    article_ids: dict[str, int] | None = None


def _article_row(item: EnrichedArticle) -> dict[str, Any]:
    a = item.article
    return {
        "url": a.url,
        "final_url": a.final_url,
        "canonical_url": a.canonical_url,
        "host": a.host,
        "status": a.status,
        "title": a.title,
        "authors": list(a.authors),
        "published_at": a.published_at,
        "published_source": a.published_source,
        "modified_at": a.modified_at,
        "modified_source": a.modified_source,
        "language": a.language,
        "site_name": a.site_name,
        "top_image": a.top_image,
        "lead": a.lead,
        "body_text": a.body_text,
        "captions": list(a.captions),
        "removed": [span.model_dump() for span in a.removed],
        "paywalled": a.paywalled,
        "content_hash": a.content_hash,
        "duplicate_of": a.duplicate_of,
        "similarity": a.similarity,
        "word_count": a.word_count,
        "extraction": a.extraction,
        "feed_id": a.feed_id,
        "mentions": [m.model_dump() for m in item.mentions],
        "enrichment": item.enrichment.model_dump(mode="json"),
        "discovered_at": a.discovered_at,
        "fetched_at": a.fetched_at,
        "parsed_at": a.parsed_at,
        "enriched_at": item.enrichment.enriched_at,
    }


def _latest_per_article(items: list[EnrichedArticle]) -> list[EnrichedArticle]:
    latest: dict[str, EnrichedArticle] = {}
    for item in items:
        key = item.article.canonical_url
        current = latest.get(key)
        if current is None or item.enrichment.enriched_at >= current.enrichment.enriched_at:
            latest[key] = item
    return [latest[k] for k in sorted(latest)]


async def store_enriched(session: AsyncSession, items: list[EnrichedArticle]) -> StoreReport:
    """Upsert a batch inside the caller's transaction (the caller commits)."""
    report = StoreReport(article_ids={})
    now = datetime.now(UTC)
    # An exact duplicate (same text under another URL) is the same article: no second row,
    # but its link is done.
    duplicates = [item.article.url for item in items if item.article.status == "duplicate"]
    items = _latest_per_article([item for item in items if item.article.status != "duplicate"])
    await mark_links(session, sorted(duplicates), outcome="duplicate", now=now)
    await mark_links(
        session, sorted({item.article.url for item in items}), outcome="stored", now=now
    )
    report.duplicates = len(duplicates)
    if not items:
        return report
    table = models.Article.__table__
    stmt = insert(table)
    updatable = {c.name for c in table.columns} - {"id", "canonical_url", "stored_at", "search"}
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.canonical_url],
        set_={**{name: stmt.excluded[name] for name in updatable}, "updated_at": now},
        # a stale redelivery (older enrichment) must not undo a newer write
        where=(table.c.enriched_at.is_(None)) | (stmt.excluded.enriched_at >= table.c.enriched_at),
    ).returning(table.c.id, table.c.canonical_url)
    rows = [_article_row(item) | {"updated_at": now} for item in items]
    result = await session.execute(stmt, rows)
    written = {url: article_id for article_id, url in result.all()}
    report.articles = len(written)
    report.skipped_stale = len(items) - len(written)
    report.article_ids = written
    fresh = [item for item in items if item.article.canonical_url in written]
    if not fresh:
        return report

    # entities: one row per canonical key, ids returned even when they already exist
    entity_rows: dict[str, dict[str, Any]] = {}
    for item in fresh:
        for ref in item.entities:
            entity_rows.setdefault(ref.key, {"key": ref.key, "kind": ref.kind, "name": ref.name})
    entity_ids: dict[str, int] = {}
    if entity_rows:
        etable = models.Entity.__table__
        estmt = insert(etable)
        estmt = estmt.on_conflict_do_update(
            index_elements=[etable.c.key], set_={"updated_at": now}
        ).returning(etable.c.id, etable.c.key, etable.c.merged_into)
        eresult = await session.execute(estmt, [entity_rows[k] for k in sorted(entity_rows)])
        for entity_id, key, merged_into in eresult.all():
            entity_ids[key] = merged_into or entity_id
        report.entities = len(entity_ids)

    alias_rows = sorted(
        {
            (entity_ids[ref.key], alias)
            for item in fresh
            for ref in item.entities
            for alias in ref.aliases
        }
    )
    if alias_rows:
        atable = models.EntityAlias.__table__
        await session.execute(
            insert(atable).on_conflict_do_nothing(
                index_elements=[atable.c.entity_id, atable.c.alias]
            ),
            [{"entity_id": e, "alias": a} for e, a in alias_rows],
        )
        report.aliases = len(alias_rows)

    # links: replace atomically for every article written in this batch
    link_table = models.ArticleEntity.__table__
    await session.execute(
        delete(link_table).where(link_table.c.article_id.in_(sorted(written.values())))
    )
    links: dict[tuple[int, int], dict[str, Any]] = {}
    for item in fresh:
        article_id = written[item.article.canonical_url]
        for ref in item.entities:
            pair = (article_id, entity_ids[ref.key])
            row = links.get(pair)
            if row is None:
                links[pair] = {
                    "article_id": pair[0],
                    "entity_id": pair[1],
                    "mentions": ref.mentions,
                    "salience": ref.salience,
                }
            else:  # two keys merged into one entity: add their mentions up
                row["mentions"] += ref.mentions
                row["salience"] = max(row["salience"], ref.salience)
    if links:
        await session.execute(insert(link_table), [links[p] for p in sorted(links)])
    report.links = len(links)
    return report


async def mark_links(
    session: AsyncSession, urls: list[str], *, outcome: str, now: datetime
) -> None:
    """Record that discovered links reached the end of the pipeline (stored or dead-lettered)."""
    if not urls:
        return
    table = models.SeenLink.__table__
    await session.execute(
        update(table)
        .where(table.c.url.in_(urls), table.c.done_at.is_(None))
        .values(outcome=outcome, done_at=now)
    )


def dead_letter_fingerprint(letter: DeadLetter) -> str:
    basis = "|".join(
        str(x)
        for x in (
            letter.stage,
            letter.error_kind,
            letter.source_topic,
            letter.key,
            letter.url,
            letter.attempt,
            letter.payload or letter.payload_ref,
            letter.failed_at.isoformat(),
        )
    )
    return hashlib.sha256(basis.encode()).hexdigest()


async def store_dead_letters(session: AsyncSession, letters: list[DeadLetter]) -> int:
    if not letters:
        return 0
    table = models.DeadLetter.__table__
    rows = {}
    for letter in letters:
        fp = dead_letter_fingerprint(letter)
        rows[fp] = {
            "fingerprint": fp,
            "stage": letter.stage,
            "error_kind": letter.error_kind,
            "detail": letter.detail,
            "attempt": letter.attempt,
            "source_topic": letter.source_topic,
            "key": letter.key,
            "url": letter.url,
            "payload": letter.payload,
            "payload_ref": letter.payload_ref,
            "service": letter.service,
            "failed_at": letter.failed_at,
        }
    await session.execute(
        insert(table).on_conflict_do_nothing(index_elements=[table.c.fingerprint]),
        [rows[k] for k in sorted(rows)],
    )
    urls = sorted({letter.url for letter in letters if letter.url})
    await mark_links(session, urls, outcome="dead_letter", now=datetime.now(UTC))
    return len(rows)


async def write_batch(
    sessions: async_sessionmaker[AsyncSession], items: list[EnrichedArticle]
) -> StoreReport:
    """One transaction for the whole batch; the caller acks the messages only after this returns."""
    async with sessions() as session, session.begin():
        return await store_enriched(session, items)


async def article_ids(session: AsyncSession, urls: list[str]) -> dict[str, int]:
    rows = await session.execute(
        select(models.Article.canonical_url, models.Article.id).where(
            models.Article.canonical_url.in_(urls)
        )
    )
    return dict(rows.all())


__all__ = ["StoreReport", "article_ids", "store_dead_letters", "store_enriched", "write_batch"]


async def write_dead_letters(
    sessions: async_sessionmaker[AsyncSession], letters: list[DeadLetter]
) -> int:
    async with sessions() as session, session.begin():
        return await store_dead_letters(session, letters)
