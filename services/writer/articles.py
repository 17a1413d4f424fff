"""Idempotent batch upserts of enriched articles, entities, aliases and links.

One transaction per batch (or per part of it, :func:`write_parallel`), a handful of statements
per batch whatever its size (never one per row). Natural keys: ``articles.canonical_url``,
``entities.key``, ``(entity_id, alias)``, ``(article_id, entity_id)``, ``pages.url``.

Guarantees:

* Idempotent: a redelivered record changes nothing (the ``enriched_at`` guard skips it).
* No lost updates: a redelivered *older* enrichment never overwrites a newer one.
* Atomic link replacement: a re-enriched article's links are deleted and re-inserted in the
  transaction that updates its row. The article row lock taken by the upsert serialises two
  writers handling the same article, so link sets never interleave.
* Referential integrity without per-row foreign-key checks (migration 0002): links are
  inserted only for articles upserted and entities locked ``FOR KEY SHARE`` in the same
  transaction; deleting an article or entity deletes its links by statement triggers.
* Deadlock-free: every statement touches rows in key order, and existing entities are only
  share-locked (``FOR KEY SHARE`` conflicts with deletes alone), so two workers with
  overlapping batches cannot wait on each other in a cycle, and a popular entity
  (``GPE:turkiye``) does not serialise all writers.

Speed (``python -m tests.bench.writer``): the hot statements go straight to asyncpg with
array parameters (``unnest``) and ``COPY`` for links; SQLAlchemy's per-row parameter
processing cost more than PostgreSQL itself at 6,000 links per batch. Measured on 2 cores with
~30 links per article, PostgreSQL backend CPU is ~0.43 ms per article, of which the generated
tsvector is ~0.18 ms, the links' COPY ~0.06 ms, parsing the mentions JSON ~0.05 ms and the
GIN index ~0.03 ms; this module's own Python ~0.16 ms.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import models
from shared.db.session import driver_connection, in_transaction
from shared.errors import TransientError
from shared.messages import EnrichedArticle, Mention, RemovedSpan, StoredArticle

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: How many merge redirects (A -> B -> C) are followed before giving up on a cycle.
MAX_MERGE_DEPTH = 8
#: (entity_id, alias) pairs a writer remembers as stored (~150 bytes each).
ALIAS_MEMORY_SIZE = 100_000
#: How long a remembered alias is trusted: an alias deleted meanwhile (by hand, or moved by
#: ``newsflow entities split``) is stored again when next observed after this.
ALIAS_MEMORY_SECONDS = 300.0

# (column, PostgreSQL array element type used to pass it, SQL that converts the element).
# ARRAY and JSONB columns travel as JSON text: PostgreSQL cannot unnest arrays of arrays.
ARTICLE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("url", "text", "{}"),
    ("final_url", "text", "{}"),
    ("canonical_url", "text", "{}"),
    ("host", "text", "{}"),
    ("status", "text", "{}"),
    ("title", "text", "{}"),
    ("authors", "text", "ARRAY(SELECT jsonb_array_elements_text({}::jsonb))"),
    ("published_at", "timestamptz", "{}"),
    ("published_source", "text", "{}"),
    ("modified_at", "timestamptz", "{}"),
    ("modified_source", "text", "{}"),
    ("language", "text", "{}"),
    ("site_name", "text", "{}"),
    ("top_image", "text", "{}"),
    ("lead", "text", "{}"),
    ("body_text", "text", "{}"),
    ("captions", "text", "ARRAY(SELECT jsonb_array_elements_text({}::jsonb))"),
    ("removed", "text", "{}::jsonb"),
    ("paywalled", "bool", "{}"),
    ("content_hash", "text", "{}"),
    ("duplicate_of", "text", "{}"),
    ("similarity", "float8", "{}"),
    ("word_count", "int4", "{}"),
    ("extraction", "text", "{}"),
    ("feed_id", "int8", "{}"),
    ("mentions", "text", "{}::jsonb"),
    ("enrichment", "text", "{}::jsonb"),
    ("discovered_at", "timestamptz", "{}"),
    ("fetched_at", "timestamptz", "{}"),
    ("parsed_at", "timestamptz", "{}"),
    ("enriched_at", "timestamptz", "{}"),
    ("updated_at", "timestamptz", "{}"),
)

_MENTIONS = TypeAdapter(list[Mention])
_REMOVED = TypeAdapter(list[RemovedSpan])


@dataclass
class StoreReport:
    articles: int = 0
    skipped_stale: int = 0
    duplicates: int = 0
    entities: int = 0
    links: int = 0
    aliases: int = 0
    article_ids: dict[str, int] | None = field(default=None)
    #: the alias rows this transaction inserted or found present, for :class:`AliasMemory`
    alias_pairs: list[tuple[int, str]] = field(default_factory=list, repr=False)
    #: one ``news.stored.v1`` confirmation per stored (or already stored) article
    stored: list[StoredArticle] = field(default_factory=list, repr=False)


class AliasMemory:
    """(entity_id, alias) pairs this writer has seen committed, so it skips storing them again.

    Nearly every alias in a batch is already stored ("Türkiye", "PKK" are in most articles),
    and their ``ON CONFLICT DO NOTHING`` lookups, with encoding the pairs, cost about a fifth
    of a batch (``tests/bench/writer.py``). Pairs are remembered only after their
    transaction committed. The memory is dropped wholesale when full or older than
    *max_age_s*, which bounds both its size and how long a deleted alias stays missing.
    """

    def __init__(
        self,
        *,
        max_size: int = ALIAS_MEMORY_SIZE,
        max_age_s: float = ALIAS_MEMORY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_size = max_size
        self._max_age_s = max_age_s
        self._clock = clock
        self._pairs: set[tuple[int, str]] = set()
        self._since = clock()

    def __len__(self) -> int:
        return len(self._pairs)

    def unknown(self, pairs: set[tuple[int, str]]) -> set[tuple[int, str]]:
        if self._clock() - self._since > self._max_age_s:
            self._pairs.clear()
            self._since = self._clock()
        return pairs - self._pairs

    def remember(self, pairs: Sequence[tuple[int, str]]) -> None:
        if len(self._pairs) + len(pairs) > self._max_size:
            self._pairs.clear()
            self._since = self._clock()
        self._pairs.update(pairs)


@functools.cache
def _article_upsert_sql() -> str:
    names = [name for name, _t, _c in ARTICLE_COLUMNS]
    params = ", ".join(f"${i}::{t}[]" for i, (_n, t, _c) in enumerate(ARTICLE_COLUMNS, start=1))
    converted = ", ".join(conv.format(f"t.{name}") for name, _t, conv in ARTICLE_COLUMNS)
    updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names if n != "canonical_url")
    # Strictly newer only: an equal enriched_at is the same enrichment redelivered, and
    # rewriting it would recompute the tsvector and rewrite the links for nothing.
    return (
        f"INSERT INTO articles ({', '.join(names)}) "
        f"SELECT {converted} FROM unnest({params}) AS t({', '.join(names)}) "
        "ORDER BY t.canonical_url "
        f"ON CONFLICT (canonical_url) DO UPDATE SET {updates} "
        "WHERE articles.enriched_at IS NULL OR EXCLUDED.enriched_at > articles.enriched_at "
        # xmax is 0 on a row this statement inserted, our xid on one it updated
        "RETURNING id, canonical_url, xmax = 0 AS inserted"
    )


def _json_list(values: Sequence[str]) -> str:
    return orjson.dumps(list(values)).decode()


def _article_values(item: EnrichedArticle, now: datetime) -> tuple[Any, ...]:
    a = item.article
    return (
        a.url,
        a.final_url,
        a.canonical_url,
        a.host,
        a.status,
        a.title,
        _json_list(a.authors),
        a.published_at,
        a.published_source,
        a.modified_at,
        a.modified_source,
        # the enricher identifies the language on the whole text: it decides the search config
        item.enrichment.language or a.language,
        a.site_name,
        a.top_image,
        a.lead,
        a.body_text,
        _json_list(a.captions),
        _REMOVED.dump_json(a.removed).decode(),
        a.paywalled,
        a.content_hash,
        a.duplicate_of,
        a.similarity,
        a.word_count,
        a.extraction,
        a.feed_id,
        _MENTIONS.dump_json(item.mentions).decode(),
        item.enrichment.model_dump_json(),
        a.discovered_at,
        a.fetched_at,
        a.parsed_at,
        item.enrichment.enriched_at,
        now,
    )


def _latest_per_article(items: list[EnrichedArticle]) -> list[EnrichedArticle]:
    latest: dict[str, EnrichedArticle] = {}
    for item in items:
        key = item.article.canonical_url
        current = latest.get(key)
        if current is None or item.enrichment.enriched_at >= current.enrichment.enriched_at:
            latest[key] = item
    return [latest[k] for k in sorted(latest)]


async def _resolve_entities(conn: Any, rows: dict[str, tuple[str, str, str]]) -> dict[str, int]:
    """key -> id of the entity links should point at (merge redirects followed).

    Every entity returned is locked ``FOR KEY SHARE`` (or was inserted by this transaction):
    the lock a foreign-key check would take, once per entity instead of once per link
    (``article_entities`` has no foreign keys, migration 0002). A delete of a linked entity
    therefore waits for this commit, and its cascade trigger then removes the new links.
    """
    keys = sorted(rows)

    async def locked_by_key(wanted: list[str]) -> dict[str, tuple[int, int | None]]:
        # A row deleted after the snapshot is skipped by the lock, so it counts as missing.
        return {
            r["key"]: (r["id"], r["merged_into"])
            for r in await conn.fetch(
                "SELECT id, key, merged_into FROM entities WHERE key = ANY($1::text[]) "
                "ORDER BY id FOR KEY SHARE",
                wanted,
            )
        }

    found = await locked_by_key(keys)
    missing = [rows[k] for k in keys if k not in found]
    if missing:
        inserted = await conn.fetch(
            "INSERT INTO entities (key, kind, name) "
            "SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) ORDER BY 1 "
            "ON CONFLICT (key) DO NOTHING RETURNING id, key, merged_into",
            [m[0] for m in missing],
            [m[1] for m in missing],
            [m[2] for m in missing],
        )
        found.update({r["key"]: (r["id"], r["merged_into"]) for r in inserted})
        racing = [m[0] for m in missing if m[0] not in found]
        if racing:  # inserted by another writer meanwhile: now committed and visible
            found.update(await locked_by_key(racing))
            if len(found) != len(keys):
                raise TransientError("an entity was deleted while this batch created it")
    redirect = {entity_id: target for entity_id, target in found.values() if target is not None}
    checked = {entity_id for entity_id, _target in found.values()}
    for _ in range(MAX_MERGE_DEPTH):  # follow A -> B -> C chains made by successive merges
        unknown = sorted(set(redirect.values()) - checked)
        if not unknown:
            break
        checked.update(unknown)
        targets = await conn.fetch(
            "SELECT id, merged_into FROM entities WHERE id = ANY($1::int8[]) "
            "ORDER BY id FOR KEY SHARE",
            unknown,
        )
        if len(targets) != len(unknown):
            raise TransientError(
                "a merge target was deleted while this batch linked to it", kind="entity_deleted"
            )
        redirect.update(
            {r["id"]: r["merged_into"] for r in targets if r["merged_into"] is not None}
        )

    def final(entity_id: int) -> int:
        seen = {entity_id}
        while entity_id in redirect and redirect[entity_id] not in seen:
            entity_id = redirect[entity_id]
            seen.add(entity_id)
        return entity_id

    return {key: final(entity_id) for key, (entity_id, _m) in found.items()}


async def store_enriched(
    session: AsyncSession,
    items: list[EnrichedArticle],
    *,
    known_aliases: AliasMemory | None = None,
) -> StoreReport:
    """Upsert a batch inside the caller's transaction (the caller commits).

    Aliases in *known_aliases* are taken as stored and skipped; the caller remembers
    ``report.alias_pairs`` there once the transaction has committed.
    """
    report = StoreReport(article_ids={})
    now = datetime.now(UTC)
    # An exact duplicate (same text under another URL) is the same article: no second row,
    # but its link is done.
    duplicates = [item.article.url for item in items if item.article.status == "duplicate"]
    articles = [item for item in items if item.article.status != "duplicate"]
    # Every link is done, including one whose page ended at the same canonical URL as
    # another link's (a 302 to a redirect stub, a stub and the page it names): marking only
    # the copy the upsert keeps left the other pending and `run --once` waited for it.
    stored_links = {item.article.url: "stored" for item in articles}
    items = _latest_per_article(articles)
    conn = await driver_connection(session)
    await _mark_links(conn, dict.fromkeys(duplicates, "duplicate") | stored_links, now=now)
    report.duplicates = len(duplicates)
    if not items:
        return report
    # Skip what is already stored at this enrichment or newer before the upsert: PostgreSQL
    # computes the tsvector of every proposed row even when ON CONFLICT then skips it, so a
    # redelivered batch would cost as much as a new one. Safe without a lock: a stored
    # enriched_at only ever grows (the upsert's guard), so "stale now" stays stale.
    stored = {
        r["canonical_url"]: r["enriched_at"]
        for r in await conn.fetch(
            "SELECT canonical_url, enriched_at FROM articles WHERE canonical_url = ANY($1::text[])",
            [item.article.canonical_url for item in items],
        )
    }
    candidates = [
        item
        for item in items
        if stored.get(item.article.canonical_url) is None
        or item.enrichment.enriched_at > stored[item.article.canonical_url]
    ]
    written: dict[str, int] = {}
    updated: list[int] = []
    rows: list[Any] = []
    if candidates:
        values = [_article_values(item, now) for item in candidates]
        columns = [list(column) for column in zip(*values, strict=True)]
        rows = await conn.fetch(_article_upsert_sql(), *columns)
        written = {r["canonical_url"]: r["id"] for r in rows}
        updated = sorted(r["id"] for r in rows if not r["inserted"])
    report.stored = await _confirmations(conn, items, rows, now=now)
    report.articles = len(written)
    report.skipped_stale = len(items) - len(written)
    report.article_ids = written
    fresh = [item for item in candidates if item.article.canonical_url in written]
    if not fresh:
        return report

    entity_rows: dict[str, tuple[str, str, str]] = {}
    for item in fresh:
        for ref in item.entities:
            if ref.key not in entity_rows:
                entity_rows[ref.key] = (ref.key, ref.kind, ref.name)
    entity_ids = await _resolve_entities(conn, entity_rows) if entity_rows else {}
    report.entities = len(entity_ids)

    # One pass over the references for aliases and links, article by article in id order
    # (rows then arrive in primary-key order, which keeps the index inserts cheap).
    observed: set[tuple[int, str]] = set()
    links: list[tuple[int, int, int, float]] = []
    for item in sorted(fresh, key=lambda fresh_item: written[fresh_item.article.canonical_url]):
        article_id = written[item.article.canonical_url]
        per_entity: dict[int, tuple[int, int, int, float]] = {}
        for ref in item.entities:
            entity_id = entity_ids[ref.key]
            observed.update([(entity_id, alias) for alias in ref.aliases])
            row = per_entity.get(entity_id)
            if row is None:
                per_entity[entity_id] = (article_id, entity_id, ref.mentions, ref.salience)
            else:  # two keys merged into one entity: add their mentions up
                per_entity[entity_id] = (
                    article_id,
                    entity_id,
                    row[2] + ref.mentions,
                    max(row[3], ref.salience),
                )
        links.extend(per_entity[entity_id] for entity_id in sorted(per_entity))

    alias_rows = sorted(known_aliases.unknown(observed) if known_aliases else observed)
    report.alias_pairs = alias_rows
    if alias_rows:
        await conn.execute(
            "INSERT INTO entity_aliases (entity_id, alias) "
            "SELECT * FROM unnest($1::int8[], $2::text[]) "
            "ON CONFLICT (entity_id, alias) DO NOTHING",
            [e for e, _a in alias_rows],
            [a for _e, a in alias_rows],
        )
        report.aliases = len(alias_rows)

    # links: replace atomically for every article this batch updated (we hold their row locks
    # from the upsert, so no other writer touches these links until we commit); an article
    # the upsert inserted has none yet
    if updated:
        await conn.execute(
            "DELETE FROM article_entities WHERE article_id = ANY($1::int8[])", updated
        )
    if links:
        await conn.copy_records_to_table(
            "article_entities",
            records=links,
            columns=["article_id", "entity_id", "mentions", "salience"],
        )
    report.links = len(links)
    return report


async def mark_links(
    session: AsyncSession, urls: list[str], *, outcome: str, now: datetime
) -> None:
    """Record that discovered links reached the end of the pipeline (stored or dead-lettered).

    The first outcome sticks, except that ``stored`` replaces ``dead_letter``: a dead letter
    replayed after its cause was fixed (``newsflow dlq replay``) did end up stored.

    An upsert, not an UPDATE: the fetcher sends a link before its ``seen_links`` row commits,
    so a fast link can reach the writer first. The INSERT waits on the fetcher's uncommitted
    row and then updates it; an UPDATE would match nothing and leave the link pending forever.
    """
    if urls:
        await _mark_links(await driver_connection(session), dict.fromkeys(urls, outcome), now=now)


async def _mark_links(conn: Any, outcomes: dict[str, str], *, now: datetime) -> None:
    # asyncpg with array parameters: SQLAlchemy compiled a fresh multi-VALUES statement for
    # every batch size, which cost more than the rest of the writer's Python work.
    if outcomes:
        urls = sorted(outcomes)
        await conn.execute(_MARK_LINKS_SQL, urls, [outcomes[url] for url in urls], now)


_MARK_LINKS_SQL = (
    "INSERT INTO seen_links (url, outcome, done_at) "
    "SELECT url, outcome, $3::timestamptz FROM unnest($1::text[], $2::text[]) AS t(url, outcome) "
    "ON CONFLICT (url) DO UPDATE SET outcome = EXCLUDED.outcome, done_at = EXCLUDED.done_at, "
    # the feed entry is kept for a re-drive only while the link is unfinished
    "entry = NULL "
    "WHERE seen_links.done_at IS NULL "
    "OR (EXCLUDED.outcome = 'stored' AND seen_links.outcome = 'dead_letter')"
)


async def write_batch(
    sessions: async_sessionmaker[AsyncSession],
    items: list[EnrichedArticle],
    *,
    known_aliases: AliasMemory | None = None,
) -> StoreReport:
    """One transaction for the whole batch; the caller acks the messages only after this returns.

    Raises :class:`TransientError` when the database is unreachable or the transaction lost a
    deadlock (retry it), and the database's own error when it rejects the data.
    """
    report = await in_transaction(
        sessions, lambda session: store_enriched(session, items, known_aliases=known_aliases)
    )
    if known_aliases is not None:  # committed: these pairs are in the table now
        known_aliases.remember(report.alias_pairs)
    return report


_UNCHANGED_SQL = (
    "SELECT id, canonical_url, enriched_at, enrichment->>'model' AS model, "
    "enrichment->>'rules_version' AS rules_version FROM articles "
    "WHERE canonical_url = ANY($1::text[]) ORDER BY canonical_url"
)


async def _confirmations(
    conn: Any, items: list[EnrichedArticle], rows: Sequence[Any], *, now: datetime
) -> list[StoredArticle]:
    """The ``news.stored.v1`` record of every article in *items* (one per canonical URL):
    inserted/updated from the upsert's rows, and for the rest (the enriched_at guard skipped
    them) the stored row as it is, ``unchanged``, so a confirmation lost to a crash between
    commit and publish is sent again when the input is redelivered."""
    by_url = {item.article.canonical_url: item for item in items}
    out = []
    for row in rows:
        enrichment = by_url[row["canonical_url"]].enrichment
        out.append(
            StoredArticle(
                article_id=row["id"],
                canonical_url=row["canonical_url"],
                action="inserted" if row["inserted"] else "updated",
                enriched_at=enrichment.enriched_at,
                enrichment_model=enrichment.model,
                rules_version=enrichment.rules_version,
                stored_at=now,
            )
        )
    skipped = sorted(set(by_url) - {row["canonical_url"] for row in rows})
    if skipped:
        for row in await conn.fetch(_UNCHANGED_SQL, skipped):
            out.append(
                StoredArticle(
                    article_id=row["id"],
                    canonical_url=row["canonical_url"],
                    action="unchanged",
                    enriched_at=row["enriched_at"],
                    enrichment_model=row["model"],
                    rules_version=row["rules_version"],
                    stored_at=now,
                )
            )
    return out


def merge_reports(reports: list[StoreReport]) -> StoreReport:
    total = StoreReport(article_ids={})
    for report in reports:
        total.articles += report.articles
        total.skipped_stale += report.skipped_stale
        total.duplicates += report.duplicates
        total.entities += report.entities
        total.links += report.links
        total.aliases += report.aliases
        total.article_ids = (total.article_ids or {}) | (report.article_ids or {})
        total.stored += report.stored
    return total


async def write_parallel(
    sessions: async_sessionmaker[AsyncSession],
    items: list[EnrichedArticle],
    *,
    parts: int,
    known_aliases: AliasMemory | None = None,
) -> StoreReport:
    """:func:`write_batch` split into *parts* concurrent transactions by article.

    PostgreSQL runs one statement on one core; a writer alone on a 2-core machine leaves the
    other idle. Every copy of an article goes to the same part, so the parts never lock the
    same article row; shared entities and aliases are inserted in key order with ON CONFLICT,
    so the parts cannot deadlock. The caller acks only after all parts committed; if one
    fails, the error is raised once all have finished, and a retry finds the committed
    parts already stored (the enriched_at guard makes them no-ops).
    """
    if parts <= 1 or len(items) < 2 * parts:
        return await write_batch(sessions, items, known_aliases=known_aliases)
    buckets: list[list[EnrichedArticle]] = [[] for _ in range(parts)]
    for item in items:
        buckets[zlib.crc32(item.article.canonical_url.encode()) % parts].append(item)
    results = await asyncio.gather(
        *(
            write_batch(sessions, bucket, known_aliases=known_aliases)
            for bucket in buckets
            if bucket
        ),
        return_exceptions=True,
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return merge_reports([r for r in results if isinstance(r, StoreReport)])


async def article_ids(session: AsyncSession, urls: list[str]) -> dict[str, int]:
    rows = await session.execute(
        select(models.Article.canonical_url, models.Article.id).where(
            models.Article.canonical_url.in_(urls)
        )
    )
    return dict(rows.all())
