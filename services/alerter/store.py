"""PostgreSQL side of watches and alerts: saving watches (with alias resolution), loading
stored articles as :class:`ArticleDoc`, the idempotent alert insert, delivery status.

Natural keys: ``watches.name``; ``alerts (watch_id, article_id)`` (``uq_alerts_watch_article``:
one alert per watch and article whatever is redelivered, re-enriched or restarted);
``alert_scans.article_id``. Functions take a session and never commit unless they say so;
the caller owns the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.alerter.matcher import ArticleDoc, CompiledWatch, Match, compile_watch
from services.alerter.query import QueryError, Value, entity_values, parse, render, with_keys
from shared.db.models import Alert, AlertScan, Article, Entity, EntityAlias, Watch
from shared.entity_keys import fold, strip_articles

logger = logging.getLogger(__name__)

#: Articles loaded per query when matching or testing.
ARTICLE_BATCH = 200
#: Longest merge chain followed when a key was merged into another.
MAX_MERGE_DEPTH = 8


class WatchError(ValueError):
    """A watch that cannot be saved or found; the message says why."""


# --- entity resolution (when a watch is saved) ------------------------------------------------


async def _follow_merges(session: AsyncSession, key: str) -> str:
    for _ in range(MAX_MERGE_DEPTH):
        target = aliased(Entity)
        merged = (
            await session.execute(
                select(target.key)
                .select_from(Entity)
                .join(target, Entity.merged_into == target.id)
                .where(Entity.key == key)
            )
        ).scalar_one_or_none()
        if merged is None:
            return key
        key = merged
    return key


#: surface form -> canonical key from curated data (the enricher's alias table), or None.
#: Passed in by the caller (the CLI): a stage imports no other stage.
CuratedLookup = Callable[[str], str | None]


async def resolve_entity(
    session: AsyncSession, value: Value, query: str, *, curated: CuratedLookup | None = None
) -> str:
    """The canonical key a user means by ``entity:<value>``.

    In order: a key (``ORG:kurdistan workers party``, kept even when no article mentions it
    yet), the *curated* aliases (so ``entity:PKK`` works before any article mentions it), the
    ``entity_aliases`` table (surface forms seen in articles or added by ``entities alias
    add``), entity display names. Merged entities resolve to the entity they were merged into.
    Raises :class:`QueryError` at the value's position when nothing or several entities match.
    """
    if value.value != value.raw or ":" in value.value:  # the parser normalised a key
        return await _follow_merges(session, value.value)
    curated_key = curated(value.raw) if curated is not None else None
    if curated_key is not None:
        return await _follow_merges(session, curated_key)
    folded = strip_articles(fold(value.raw))
    rows = (
        await session.execute(
            select(Entity.key, EntityAlias.alias)
            .join(EntityAlias, EntityAlias.entity_id == Entity.id)
            .where(func.lower(EntityAlias.alias) == value.raw.strip().lower())
        )
    ).all()
    keys = {key for key, alias in rows if strip_articles(fold(alias)) == folded}
    if not keys:
        named = (
            await session.execute(
                select(Entity.key).where(func.lower(Entity.name) == value.raw.strip().lower())
            )
        ).scalars()
        keys = set(named)
    resolved = {await _follow_merges(session, key) for key in keys}
    if len(resolved) == 1:
        return resolved.pop()
    if not resolved:
        raise QueryError(
            f"unknown entity {value.raw!r}: no key, alias or name matches "
            "(see 'newsflow entities show'; a key is KIND:name, e.g. GPE:turkiye)",
            query=query,
            position=value.pos,
        )
    raise QueryError(
        f"entity {value.raw!r} is ambiguous: {', '.join(sorted(resolved))}; use the key",
        query=query,
        position=value.pos,
    )


async def prepare_query(
    session: AsyncSession, query: str, *, curated: CuratedLookup | None = None
) -> str:
    """Parse *query*, resolve its entity values to keys, return the saved form.

    Raises :class:`QueryError` (with the position) for a bad query or unknown entity.
    """
    node = parse(query)
    keys = {
        v.raw: await resolve_entity(session, v, query, curated=curated) for v in entity_values(node)
    }
    return render(with_keys(node, keys))


# --- watches ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WatchInfo:
    id: int
    name: str
    query: str
    query_input: str
    webhook_url: str | None
    has_secret: bool
    paused: bool
    created_at: datetime
    updated_at: datetime
    last_status: int | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    next_attempt_at: datetime | None
    last_delivered_at: datetime | None
    alerts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


def _info(row: Watch, alerts: int = 0) -> WatchInfo:
    return WatchInfo(
        id=row.id,
        name=row.name,
        query=row.query,
        query_input=row.query_input,
        webhook_url=row.webhook_url,
        has_secret=row.webhook_secret is not None,
        paused=row.paused,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_status=row.last_status,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
        consecutive_failures=row.consecutive_failures,
        next_attempt_at=row.next_attempt_at,
        last_delivered_at=row.last_delivered_at,
        alerts=alerts,
    )


async def add_watch(
    session: AsyncSession,
    name: str,
    query: str,
    *,
    webhook_url: str | None = None,
    webhook_secret: str | None = None,
    curated: CuratedLookup | None = None,
) -> WatchInfo:
    """Save a new watch (query resolved); raises :class:`WatchError` if the name is taken and
    :class:`QueryError` for a bad query. Caller commits."""
    name = name.strip()
    if not name:
        raise WatchError("a watch needs a name")
    saved = await prepare_query(session, query, curated=curated)
    inserted = (
        await session.execute(
            insert(Watch)
            .values(
                name=name,
                query=saved,
                query_input=query,
                webhook_url=webhook_url,
                webhook_secret=webhook_secret,
            )
            .on_conflict_do_nothing(index_elements=[Watch.name])
            .returning(Watch.id)
        )
    ).scalar_one_or_none()
    if inserted is None:
        raise WatchError(f"a watch named {name!r} exists; use 'watch edit' or another name")
    return await get_watch(session, name)


async def _row(session: AsyncSession, ref: str) -> Watch:
    condition = Watch.name == ref
    if ref.isdigit():
        condition = condition | (Watch.id == int(ref))
    row = (await session.execute(select(Watch).where(condition))).scalars().first()
    if row is None:
        raise WatchError(f"no watch named {ref!r} (see 'newsflow watch list')")
    return row


async def get_watch(session: AsyncSession, ref: str) -> WatchInfo:
    """A watch by name or id, with its alert count; raises :class:`WatchError`."""
    row = await _row(session, ref)
    count = (
        await session.execute(select(func.count()).where(Alert.watch_id == row.id))
    ).scalar_one()
    return _info(row, count)


async def list_watches(session: AsyncSession) -> list[WatchInfo]:
    counts = dict(
        (await session.execute(select(Alert.watch_id, func.count()).group_by(Alert.watch_id))).all()
    )
    rows = (await session.execute(select(Watch).order_by(Watch.name))).scalars().all()
    return [_info(row, counts.get(row.id, 0)) for row in rows]


_UNSET: Any = object()


async def edit_watch(
    session: AsyncSession,
    ref: str,
    *,
    query: str | None = None,
    webhook_url: str | None = _UNSET,
    webhook_secret: str | None = _UNSET,
    paused: bool | None = None,
    curated: CuratedLookup | None = None,
) -> WatchInfo:
    """Change a watch; ``updated_at`` moves so running alerters reload it. Caller commits.

    A new query applies to articles stored from now on (``watch test`` shows the past).
    """
    row = await _row(session, ref)
    watch_id = row.id
    values: dict[str, Any] = {"updated_at": func.now()}
    if query is not None:
        values["query"] = await prepare_query(session, query, curated=curated)
        values["query_input"] = query
    if webhook_url is not _UNSET:
        values["webhook_url"] = webhook_url
        # a new destination starts with a clean status
        values.update(consecutive_failures=0, next_attempt_at=None, last_error=None)
    if webhook_secret is not _UNSET:
        values["webhook_secret"] = webhook_secret
    if paused is not None:
        values["paused"] = paused
    await session.execute(
        update(Watch)
        .where(Watch.id == watch_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()  # the ORM row is stale: reload it
    return await get_watch(session, str(watch_id))


async def remove_watch(session: AsyncSession, ref: str) -> WatchInfo:
    """Delete a watch and its alerts. Caller commits."""
    info = await get_watch(session, ref)
    await session.execute(delete(Watch).where(Watch.id == info.id))
    return info


async def watches_version(session: AsyncSession) -> str:
    """Changes whenever a watch is added, edited, paused, resumed or removed (polled by the
    alerter every few seconds: one index-only aggregate over a small table)."""
    value = (
        await session.execute(
            text(
                "SELECT coalesce(md5(string_agg(id::text || ':' || updated_at::text || ':' "
                "|| paused::text, ',' ORDER BY id)), '') FROM watches"
            )
        )
    ).scalar_one()
    return str(value)


@dataclass(frozen=True, slots=True)
class Destination:
    url: str
    secret: str | None


async def active_watch_rows(session: AsyncSession) -> list[Any]:
    """(id, name, query, webhook_url, webhook_secret) of every active watch, by id."""
    return list(
        (
            await session.execute(
                select(Watch.id, Watch.name, Watch.query, Watch.webhook_url, Watch.webhook_secret)
                .where(Watch.paused.is_(False))
                .order_by(Watch.id)
            )
        ).all()
    )


async def active_watches(
    session: AsyncSession,
) -> tuple[list[CompiledWatch], dict[int, Destination]]:
    """Compiled active watches and the webhook destination of those that have one.

    A saved query that no longer parses (a grammar change) is logged and skipped, never
    allowed to stop the stage.
    """
    compiled: list[CompiledWatch] = []
    hooks: dict[int, Destination] = {}
    for watch_id, name, query, url, secret in await active_watch_rows(session):
        try:
            compiled.append(compile_watch(watch_id, name, query))
        except QueryError as exc:
            logger.error(
                "watch %s (%s) skipped: its query no longer parses: %s", watch_id, name, exc
            )
            continue
        if url:
            hooks[watch_id] = Destination(url, secret)
    return compiled, hooks


# --- articles ---------------------------------------------------------------------------------

_ARTICLE_COLUMNS = (
    Article.id,
    Article.url,
    Article.title,
    Article.body_text,
    Article.language,
    Article.host,
    Article.feed_id,
    Article.authors,
    Article.published_at,
    Article.enriched_at,
    Article.canonical_url,
)


# An article's entity keys: the linked entities' keys, the keys they were merged into (links
# written before a merge), and the keys of every entity merged into them, followed through
# chains (a watch saved on A before "merge A into B" still matches articles linked to B).
_ENTITY_KEYS_SQL = """
WITH RECURSIVE merged_in(article_id, id, key, depth) AS (
    SELECT x.article_id, e.id, e.key, 0
    FROM article_entities x JOIN entities e ON e.id = x.entity_id
    WHERE x.article_id = ANY(:ids)
  UNION
    SELECT m.article_id, e.id, e.key, m.depth + 1
    FROM merged_in m JOIN entities e ON e.merged_into = m.id
    WHERE m.depth < :depth
)
SELECT article_id, key FROM merged_in
UNION
SELECT x.article_id, t.key
FROM article_entities x JOIN entities e ON e.id = x.entity_id JOIN entities t ON t.id = e.merged_into
WHERE x.article_id = ANY(:ids)
"""


@dataclass(frozen=True, slots=True)
class StoredArticle:
    doc: ArticleDoc
    canonical_url: str
    enriched_at: datetime | None


async def load_articles(session: AsyncSession, ids: Sequence[int]) -> list[StoredArticle]:
    """The stored articles *ids* (missing ones omitted) with their entity keys, in id order.

    Two queries per call whatever its size. Merges count both ways: an article linked to an
    entity merged since into B also has B's key, and one linked to B also has the keys of
    every entity merged into B (so a watch saved before a merge keeps matching).
    """
    if not ids:
        return []
    rows = (
        await session.execute(
            select(*_ARTICLE_COLUMNS).where(Article.id.in_(list(ids))).order_by(Article.id)
        )
    ).all()
    links = (
        await session.execute(
            text(_ENTITY_KEYS_SQL), {"ids": [row.id for row in rows], "depth": MAX_MERGE_DEPTH}
        )
    ).all()
    keys: dict[int, set[str]] = {}
    for article_id, key in links:
        keys.setdefault(article_id, set()).add(key)
    return [
        StoredArticle(
            doc=ArticleDoc(
                article_id=row.id,
                url=row.url,
                title=row.title,
                body=row.body_text,
                language=row.language,
                host=row.host,
                feed_id=row.feed_id,
                authors=tuple(row.authors or ()),
                published_at=row.published_at,
                entity_keys=frozenset(keys.get(row.id, ())),
            ),
            canonical_url=row.canonical_url,
            enriched_at=row.enriched_at,
        )
        for row in rows
    ]


async def article_ids_since(
    session: AsyncSession, since: datetime, *, after_id: int = 0, limit: int = ARTICLE_BATCH
) -> list[int]:
    """Ids of articles stored at or after *since* (and above *after_id*), ascending."""
    return list(
        (
            await session.execute(
                select(Article.id)
                .where(Article.stored_at >= since, Article.id > after_id)
                .order_by(Article.id)
                .limit(limit)
            )
        ).scalars()
    )


# --- alerts -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewAlert:
    id: int
    watch_id: int
    article_id: int


async def insert_alerts(
    session: AsyncSession, matches: Iterable[Match], *, webhooks: Iterable[int] = ()
) -> list[NewAlert]:
    """Insert one alert per (watch, article); returns only the rows this call created.

    Idempotent: a match already alerted (redelivery, restart, re-enrichment that still
    matches) creates nothing. ``webhooks``: watch ids with a webhook, whose alerts start
    ``pending`` delivery. Caller commits.
    """
    hooked = set(webhooks)
    values = [
        {
            "watch_id": m.watch_id,
            "article_id": m.article_id,
            "matched_terms": list(m.terms),
            "matched_entities": list(m.entity_keys),
            "reason": m.reason,
            "delivery": "pending" if m.watch_id in hooked else "none",
        }
        for m in matches
    ]
    if not values:
        return []
    values.sort(key=lambda v: (v["watch_id"], v["article_id"]))  # lock order: no deadlocks
    rows = (
        await session.execute(
            insert(Alert)
            .values(values)
            .on_conflict_do_nothing(constraint="uq_alerts_watch_article")
            .returning(Alert.id, Alert.watch_id, Alert.article_id)
        )
    ).all()
    return [NewAlert(*row) for row in rows]


async def record_scans(session: AsyncSession, scans: Iterable[tuple[int, datetime | None]]) -> None:
    """Remember which enrichment of each article was matched (the newest wins). Caller commits."""
    values = [
        {"article_id": a, "enriched_at": e} for a, e in sorted(set(scans), key=lambda s: s[0])
    ]
    if not values:
        return
    stmt = insert(AlertScan).values(values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[AlertScan.article_id],
            set_={
                "enriched_at": func.greatest(AlertScan.enriched_at, stmt.excluded.enriched_at),
                "scanned_at": func.now(),
            },
        )
    )


async def mark_published(session: AsyncSession, alert_ids: Sequence[int]) -> None:
    if alert_ids:
        await session.execute(
            update(Alert)
            .where(Alert.id.in_(list(alert_ids)), Alert.published_at.is_(None))
            .values(published_at=func.now())
        )


async def record_delivery(
    session: AsyncSession,
    alert_id: int,
    *,
    state: str,
    attempts: int,
    status: int | None,
    error: str | None,
) -> None:
    """Final delivery state of an alert: delivered | failed | gone. Caller commits."""
    values: dict[str, Any] = {
        "delivery": state,
        "attempts": attempts,
        "last_status": status,
        "last_error": error,
    }
    if state == "delivered":
        values["delivered_at"] = func.now()
    await session.execute(update(Alert).where(Alert.id == alert_id).values(**values))


async def record_attempt(
    session: AsyncSession,
    watch_id: int,
    *,
    ok: bool,
    status: int | None,
    error: str | None,
    failures: int,
    next_delay_s: float | None,
) -> None:
    """The webhook destination's status on the watch after one attempt. Caller commits.

    Failures count up and the next attempt time is recorded; the watch stays active (a
    failing destination is visible in ``watch show``, never silently disabled).
    """
    now = datetime.now(UTC)
    values: dict[str, Any] = {"last_status": status}
    if ok:
        values.update(consecutive_failures=0, next_attempt_at=None, last_delivered_at=now)
    else:
        values.update(
            last_error=error,
            last_error_at=now,
            consecutive_failures=failures,
            next_attempt_at=now + timedelta(seconds=next_delay_s) if next_delay_s else None,
        )
    await session.execute(update(Watch).where(Watch.id == watch_id).values(**values))


@dataclass(frozen=True, slots=True)
class UnfinishedAlert:
    id: int
    unpublished: bool
    pending_delivery: bool
    destination: Destination | None  # the watch's webhook now (None: removed since)


async def unfinished_alerts(session: AsyncSession) -> list[UnfinishedAlert]:
    """Alerts not yet produced to the topic or still pending delivery (a restart resumes
    them), oldest first, with their watch's current webhook."""
    rows = (
        await session.execute(
            select(
                Alert.id,
                Alert.published_at.is_(None),
                Alert.delivery == "pending",
                Watch.webhook_url,
                Watch.webhook_secret,
            )
            .join(Watch, Watch.id == Alert.watch_id)
            .where((Alert.published_at.is_(None)) | (Alert.delivery == "pending"))
            .order_by(Alert.id)
        )
    ).all()
    return [
        UnfinishedAlert(alert_id, unpublished, pending, Destination(url, secret) if url else None)
        for alert_id, unpublished, pending, url, secret in rows
    ]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def unscanned_count(session: AsyncSession, *, since: datetime | None = None) -> int:
    """Articles stored or updated since *since* whose current enrichment the alerter has not
    matched yet, plus alerts (created since) not yet published or delivered: ``run --once``
    is done when this is 0."""
    row = (
        await session.execute(
            text(
                "SELECT (SELECT count(*) FROM articles a "
                "        LEFT JOIN alert_scans s ON s.article_id = a.id "
                "        WHERE a.updated_at >= :t AND (s.article_id IS NULL OR "
                "          (a.enriched_at IS NOT NULL AND "
                "           (s.enriched_at IS NULL OR s.enriched_at < a.enriched_at)))),"
                "       (SELECT count(*) FROM alerts WHERE created_at >= :t "
                "        AND (published_at IS NULL OR delivery = 'pending'))"
            ),
            {"t": since or _EPOCH},
        )
    ).one()
    return int(row[0]) + int(row[1])


@dataclass(frozen=True, slots=True)
class AlertProgress:
    """What ``newsflow run`` shows about alerts created since a time."""

    alerts: int
    delivered: int
    failed: int  # failed or gone
    pending: int  # :func:`unscanned_count`


async def alert_progress(session: AsyncSession, since: datetime) -> AlertProgress:
    counts = dict(
        (
            await session.execute(
                select(Alert.delivery, func.count())
                .where(Alert.created_at >= since)
                .group_by(Alert.delivery)
            )
        ).all()
    )
    return AlertProgress(
        alerts=sum(counts.values()),
        delivered=counts.get("delivered", 0),
        failed=counts.get("failed", 0) + counts.get("gone", 0),
        pending=await unscanned_count(session, since=since),
    )


async def try_query(
    session: AsyncSession,
    query: str,
    *,
    since: datetime,
    limit: int | None = None,
    curated: CuratedLookup | None = None,
) -> tuple[str, list[tuple[StoredArticle, Match]]]:
    """What *query* would have matched among articles stored since *since*, without saving.

    Runs the stream's matcher (:class:`~services.alerter.matcher.Matcher`) on the same
    :func:`load_articles` view, so it returns what the stream produced for a watch with this
    query. Returns the saved form of the query and (article, match) pairs in id order.
    """
    from services.alerter.matcher import Matcher

    saved = await prepare_query(session, query, curated=curated)
    matcher = Matcher([compile_watch(0, "test", saved)])
    found: list[tuple[StoredArticle, Match]] = []
    after = 0
    while True:
        ids = await article_ids_since(session, since, after_id=after)
        if not ids:
            break
        for stored in await load_articles(session, ids):
            for match in matcher.match(stored.doc):
                found.append((stored, match))
                if limit is not None and len(found) >= limit:
                    return saved, found
        after = ids[-1]
    return saved, found


async def recent_alerts(
    session: AsyncSession, since: datetime, *, limit: int = 5
) -> list[tuple[str, str, str]]:
    """(watch name, article title or URL, reason) of the latest alerts created since *since*."""
    rows = (
        await session.execute(
            select(Watch.name, func.coalesce(Article.title, Article.url), Alert.reason)
            .join(Watch, Watch.id == Alert.watch_id)
            .join(Article, Article.id == Alert.article_id)
            .where(Alert.created_at >= since)
            .order_by(Alert.id.desc())
            .limit(limit)
        )
    ).all()
    return [(name, title, reason) for name, title, reason in rows]
