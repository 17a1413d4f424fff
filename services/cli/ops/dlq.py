"""Dead letters: what failed, grouped for an operator, and re-injection once the cause is fixed.

``replay_dead_letters`` sends each letter's payload back to the topic it was read from
(under the current ``topic_prefix``), increments its attempt (in the record when its contract
has an ``attempt`` field, and always in the ``newsflow-attempt`` header), and sets
``dead_letters.replayed_at`` in the same transaction that selected it, after the broker has
confirmed the send. Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so two operators
replaying at once do not send a letter twice. A letter that fails again comes back as a new
dead letter with the higher attempt.

Letters whose payload was too large to inline carry only ``payload_ref``; they are rebuilt
from the page archive (``news.pages.v1``) or the articles table (``news.articles.v1``) when a
copy is stored there, and otherwise skipped with the reason.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.cli.ops.replay import article_record, page_record
from services.cli.ops.sink import Headers, Sink
from shared.db import models
from shared.dlq import ATTEMPT_HEADER
from shared.topology import ALL_TOPICS, ARTICLES, DLQ, PAGES, TopicSpec

logger = logging.getLogger(__name__)

LETTER_HEADER = "newsflow-dead-letter-id"
REPLAY_HEADER = "newsflow-replay"


@dataclass(frozen=True, slots=True)
class DlqGroup:
    stage: str
    error_kind: str
    count: int
    pending: int
    first_failed_at: datetime
    last_failed_at: datetime
    #: the latest letter of the group: id, url, detail, failed_at, attempt, source_topic
    latest: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class LetterReplay:
    id: int
    stage: str
    error_kind: str
    url: str | None
    topic: str | None
    #: replayed | skipped | would_replay (dry run)
    status: str
    attempt: int | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def dlq_summary(
    session: AsyncSession,
    *,
    stage: str | None = None,
    since: datetime | None = None,
    include_replayed: bool = True,
) -> list[DlqGroup]:
    """Dead letters grouped by (stage, error kind), most frequent first."""
    dl = models.DeadLetter
    filters: list[Any] = []
    if stage:
        filters.append(dl.stage == stage)
    if since:
        filters.append(dl.failed_at >= since)
    if not include_replayed:
        filters.append(dl.replayed_at.is_(None))
    groups = (
        await session.execute(
            select(
                dl.stage,
                dl.error_kind,
                func.count().label("n"),
                func.count().filter(dl.replayed_at.is_(None)).label("pending"),
                func.min(dl.failed_at).label("first"),
                func.max(dl.failed_at).label("last"),
            )
            .where(*filters)
            .group_by(dl.stage, dl.error_kind)
        )
    ).all()
    latest_rows = (
        await session.execute(
            select(
                dl.stage,
                dl.error_kind,
                dl.id,
                dl.url,
                dl.detail,
                dl.failed_at,
                dl.attempt,
                dl.source_topic,
            )
            .where(*filters)
            .ext(distinct_on(dl.stage, dl.error_kind))
            .order_by(dl.stage, dl.error_kind, dl.failed_at.desc(), dl.id.desc())
        )
    ).all()
    latest = {
        (r.stage, r.error_kind): {
            "id": r.id,
            "url": r.url,
            "detail": r.detail,
            "failed_at": r.failed_at,
            "attempt": r.attempt,
            "source_topic": r.source_topic,
        }
        for r in latest_rows
    }
    out = [
        DlqGroup(
            stage=g.stage,
            error_kind=g.error_kind,
            count=g.n,
            pending=g.pending,
            first_failed_at=g.first,
            last_failed_at=g.last,
            latest=latest[(g.stage, g.error_kind)],
        )
        for g in groups
    ]
    return sorted(out, key=lambda g: (-g.count, g.stage, g.error_kind))


#: Dead letters deleted per transaction by :func:`prune_dead_letters` (payloads are up to
#: 256 KB each; short transactions keep the writer's inserts flowing).
PRUNE_CHUNK = 2000


@dataclass(frozen=True, slots=True)
class PrunedGroup:
    stage: str
    error_kind: str
    count: int
    #: how many of them had not been replayed (only with ``include_pending``)
    pending: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def prune_dead_letters(
    sessions: async_sessionmaker[AsyncSession],
    *,
    before: datetime,
    stage: str | None = None,
    include_pending: bool = False,
    dry_run: bool = False,
) -> list[PrunedGroup]:
    """Delete dead letters that failed before *before*, grouped by (stage, kind) in the result.

    Only letters already replayed are deleted, unless *include_pending*: a letter nobody has
    replayed yet is a failure someone may still want to fix. Deletes go in chunks of
    :data:`PRUNE_CHUNK`, each its own transaction, oldest first.
    """
    dl = models.DeadLetter
    filters: list[Any] = [dl.failed_at < before]
    if stage:
        filters.append(dl.stage == stage)
    if not include_pending:
        filters.append(dl.replayed_at.is_not(None))
    counts: dict[tuple[str, str], list[int]] = {}
    if dry_run:
        async with sessions() as session:
            for group in await session.execute(
                select(
                    dl.stage,
                    dl.error_kind,
                    func.count(),
                    func.count().filter(dl.replayed_at.is_(None)),
                )
                .where(*filters)
                .group_by(dl.stage, dl.error_kind)
            ):
                counts[(group[0], group[1])] = [group[2], group[3]]
        return _pruned_groups(counts)
    while True:
        async with sessions() as session, session.begin():
            chosen = (
                select(dl.id)
                .where(*filters)
                .order_by(dl.failed_at, dl.id)
                .limit(PRUNE_CHUNK)
                .with_for_update(skip_locked=True)
            )
            rows = (
                await session.execute(
                    delete(dl)
                    .where(dl.id.in_(chosen.scalar_subquery()))
                    .returning(dl.stage, dl.error_kind, dl.replayed_at)
                )
            ).all()
        for r in rows:
            total = counts.setdefault((r.stage, r.error_kind), [0, 0])
            total[0] += 1
            total[1] += r.replayed_at is None
        if len(rows) < PRUNE_CHUNK:
            break
    if counts:
        logger.info(
            "pruned dead letters before=%s count=%s",
            before.isoformat(),
            sum(c for c, _p in counts.values()),
        )
    return _pruned_groups(counts)


def _pruned_groups(counts: dict[tuple[str, str], list[int]]) -> list[PrunedGroup]:
    return sorted(
        (
            PrunedGroup(stage, kind, count, pending)
            for (stage, kind), (count, pending) in counts.items()
        ),
        key=lambda g: (-g.count, g.stage, g.error_kind),
    )


async def load_dead_letter(session: AsyncSession, letter_id: int) -> dict[str, Any] | None:
    """One dead letter with its full detail and payload (what ``dlq replay`` would send)."""
    letter = await session.get(models.DeadLetter, letter_id)
    if letter is None:
        return None
    return {c.name: getattr(letter, c.name) for c in models.DeadLetter.__table__.c}


def topic_of(source_topic: str | None) -> TopicSpec | None:
    """The topic spec a (possibly prefixed) source topic name refers to."""
    if not source_topic:
        return None
    for spec in ALL_TOPICS:
        if source_topic == spec.name or source_topic.endswith("." + spec.name):
            return spec
    return None


def _key_from(spec: TopicSpec, record: dict[str, Any]) -> bytes | None:
    value = record.get("article", {}).get(spec.key) if "article" in record else record.get(spec.key)
    return str(value).encode() if value is not None else None


async def _stored_copy(
    session: AsyncSession, spec: TopicSpec, letter: models.DeadLetter
) -> tuple[bytes | None, str | None]:
    """(payload, None) rebuilt from stored data, or (None, why not)."""
    ref = letter.url or letter.payload_ref
    if spec is PAGES:
        gz = await session.scalar(
            select(models.Page.payload_gz).where(
                or_(models.Page.url == ref, models.Page.url == letter.payload_ref)
            )
        )
        if gz is None:
            return None, (
                f"payload too large to inline and {ref} is not in the page archive "
                "(NEWSFLOW_WRITER_ARCHIVE_PAGES off, or never archived); it must be fetched again"
            )
        return page_record(gz), None
    if spec is ARTICLES:
        row = (
            await session.execute(
                select(models.Article).where(
                    or_(
                        models.Article.canonical_url == letter.key,
                        models.Article.url == ref,
                        models.Article.canonical_url == ref,
                    )
                )
            )
        ).scalar_one_or_none()
        if row is None:
            return None, (
                f"payload too large to inline and {ref} is not in the articles table; "
                "replay its page instead: 'newsflow replay --from pages'"
            )
        record = article_record({c.name: getattr(row, c.name) for c in models.Article.__table__.c})
        return record.to_bytes(), None
    return None, (
        f"payload too large to inline and {spec.name} records are not stored anywhere; "
        "re-run the stage before it ('newsflow replay --from pages')"
    )


async def _build(
    session: AsyncSession, letter: models.DeadLetter, prefix: str
) -> tuple[str, bytes | None, bytes, Headers, int] | str:
    """(topic, key, value, headers, attempt) to send, or the reason it cannot be replayed."""
    spec = topic_of(letter.source_topic)
    if spec is None:
        return (
            f"no known source topic ({letter.source_topic!r}); a {letter.stage} failure "
            "is not a record that can be re-sent"
        )
    if spec is DLQ:
        return "a failure to store a dead letter itself; its payload is not a pipeline record"
    if letter.payload is not None:
        payload: bytes = letter.payload.encode()
    else:
        rebuilt, why = await _stored_copy(session, spec, letter)
        if rebuilt is None:
            return why or "no payload"
        payload = rebuilt
    attempt = letter.attempt + 1
    key = letter.key.encode() if letter.key is not None else None
    try:
        record = orjson.loads(payload)
    except orjson.JSONDecodeError:
        record = None  # an invalid record is sent as it was: the consumer's contract decides
    if isinstance(record, dict):
        if "attempt" in spec.model.model_fields:
            attempt = max(attempt, int(record.get("attempt") or 1) + 1)
            record["attempt"] = attempt
            payload = orjson.dumps(record)
        if key is None:
            key = _key_from(spec, record)
    headers: Headers = [
        (REPLAY_HEADER, b"dlq"),
        (ATTEMPT_HEADER, str(attempt).encode()),
        (LETTER_HEADER, str(letter.id).encode()),
    ]
    return spec.full_name(prefix), key, payload, headers, attempt


def _outcome(
    letter: models.DeadLetter,
    *,
    topic: str | None,
    status: str,
    attempt: int | None = None,
    reason: str | None = None,
) -> LetterReplay:
    return LetterReplay(
        id=letter.id,
        stage=letter.stage,
        error_kind=letter.error_kind,
        url=letter.url,
        topic=topic,
        status=status,
        attempt=attempt,
        reason=reason,
    )


async def replay_dead_letters(
    sessions: async_sessionmaker[AsyncSession],
    sink: Sink | None,
    *,
    prefix: str = "",
    stage: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
    ids: list[int] | None = None,
) -> list[LetterReplay]:
    """Re-send not-yet-replayed dead letters (oldest first) and mark them replayed.

    ``sink=None`` is a dry run: nothing is sent or marked. Letters that cannot be rebuilt are
    reported as ``skipped`` with the reason and stay pending.
    """
    dl = models.DeadLetter
    query = select(dl).where(dl.replayed_at.is_(None)).order_by(dl.failed_at, dl.id)
    if stage:
        query = query.where(dl.stage == stage)
    if since:
        query = query.where(dl.failed_at >= since)
    if ids:
        query = query.where(dl.id.in_(ids))
    if limit:
        query = query.limit(limit)
    results: list[LetterReplay] = []
    async with sessions() as session, session.begin():
        letters = (await session.execute(query.with_for_update(skip_locked=True))).scalars().all()
        sent_ids: list[int] = []
        for letter in letters:
            built = await _build(session, letter, prefix)
            if isinstance(built, str):
                results.append(_outcome(letter, topic=None, status="skipped", reason=built))
                continue
            topic, key, value, headers, attempt = built
            if sink is not None:
                await sink.send(topic, key=key, value=value, headers=headers)
                sent_ids.append(letter.id)
            status = "replayed" if sink is not None else "would_replay"
            results.append(_outcome(letter, topic=topic, status=status, attempt=attempt))
        if sink is not None and sent_ids:
            await sink.flush()  # the broker has them all before we mark them
            await session.execute(
                update(dl).where(dl.id.in_(sent_ids)).values(replayed_at=datetime.now(UTC))
            )
            logger.info("replayed %s dead letters", len(sent_ids))
    return results
