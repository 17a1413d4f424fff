"""User curation of entities in the DB: aliases, merges, splits (``newsflow entities ...``).

The running enricher reads the result through :mod:`services.enricher.overrides`.

Semantics (all reversible, nothing is deleted from ``article_entities``):

* ``add_alias(ENTITY, ALIAS)``: ALIAS (any spelling) resolves to ENTITY in every article
  enriched from now on; stored in ``entity_aliases`` with ``source='user'``.
* ``merge_entities(A, B)``: A becomes a redirect to B (``entities.merged_into``). New articles
  emit B's key wherever they would have emitted A's; existing links to A stay and readers
  follow ``merged_into`` (``newsflow reenrich`` rewrites them if wanted).
* ``split_entity(A)``: undoes a merge of A. ``split_entity(A, aliases=[...], into=C)`` moves
  those surface forms from A to C (created if new), so they resolve to C from now on.

ENTITY references are a key (``GPE:turkiye``; ``GPE:Türkiye`` is normalised to it) or an
exact display name. A key not yet in the DB is created (name from the curated data, the
``name`` argument or the key), since curated entities exist before their first article.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.enricher.canonical import (
    KINDS,
    fold,
    load_curated,
    make_key,
    split_key,
    strip_articles,
)
from services.enricher.overrides import USER_SOURCE, load_overrides, refresh_overrides
from shared.db.models import ArticleEntity, Entity, EntityAlias
from shared.errors import PermanentError

logger = logging.getLogger(__name__)


class AdminError(PermanentError):
    """A curation request that cannot be done as asked; the message says why."""

    kind = "entity_admin"


@dataclass(frozen=True, slots=True)
class EntityInfo:
    id: int
    key: str
    kind: str
    name: str
    created: bool = False


@dataclass(frozen=True, slots=True)
class EntitySummary:
    key: str
    kind: str
    name: str
    merged_into: str | None
    articles: int
    aliases: tuple[tuple[str, str], ...]  # (alias, source)


@dataclass(frozen=True, slots=True)
class AliasChange:
    entity: EntityInfo
    alias: str


@dataclass(frozen=True, slots=True)
class MergeChange:
    source: EntityInfo
    target: EntityInfo


@dataclass(frozen=True, slots=True)
class SplitChange:
    source: EntityInfo
    target: EntityInfo | None
    unmerged: bool
    moved: tuple[str, ...]


# --- references ----------------------------------------------------------------------------


def _as_key(ref: str) -> str | None:
    kind, sep, rest = ref.partition(":")
    if sep and kind.upper() in KINDS and rest.strip():
        return make_key(kind.upper(), rest)
    return None


def _info(entity: Entity, *, created: bool = False) -> EntityInfo:
    return EntityInfo(entity.id, entity.key, entity.kind, entity.name, created)


async def find_entity(
    session: AsyncSession, ref: str, *, create: bool = False, name: str | None = None
) -> EntityInfo:
    """The entity a user means by ``ref`` (key or exact name); raises :class:`AdminError`."""
    key = _as_key(ref)
    if key is not None:
        row = (await session.execute(select(Entity).where(Entity.key == key))).scalar_one_or_none()
        if row is not None:
            return _info(row)
        if not create:
            raise AdminError(f"no entity with key {key!r}")
        kind, rest = split_key(key)
        curated = load_curated().entities.get(key)
        display = name or (curated.name if curated else rest)
        # ON CONFLICT: the writer may create the same key concurrently
        await session.execute(
            insert(Entity)
            .values(key=key, kind=kind, name=display)
            .on_conflict_do_nothing(index_elements=[Entity.key])
        )
        row = (await session.execute(select(Entity).where(Entity.key == key))).scalar_one()
        return _info(row, created=True)
    rows = (
        (
            await session.execute(
                select(Entity)
                .where(func.lower(Entity.name) == ref.strip().lower())
                .order_by(Entity.key)
            )
        )
        .scalars()
        .all()
    )
    if not rows:
        raise AdminError(
            f"no entity named {ref!r}; give its key instead (KIND:name, e.g. GPE:turkiye)"
        )
    if len(rows) > 1:
        keys = ", ".join(row.key for row in rows)
        raise AdminError(f"{ref!r} names several entities ({keys}); give the key")
    return _info(rows[0])


DEFAULT_SHOW_LIMIT = 20
MAX_ALIASES_SHOWN = 12


async def find_entities(
    session: AsyncSession, query: str, *, limit: int = DEFAULT_SHOW_LIMIT
) -> list[EntitySummary]:
    """Entities whose key, name or an alias matches ``query`` (a key, or a name fragment),
    most-linked first: what a user looks at before ``alias add``/``merge``/``split``."""
    key = _as_key(query)
    pattern = f"%{query.strip()}%"
    alias_hit = select(EntityAlias.entity_id).where(EntityAlias.alias.ilike(pattern))
    condition = (
        (Entity.key == key)
        if key is not None
        else Entity.name.ilike(pattern) | Entity.key.ilike(pattern) | Entity.id.in_(alias_hit)
    )
    target = aliased(Entity)
    links = (
        select(func.count())
        .select_from(ArticleEntity)
        .where(ArticleEntity.entity_id == Entity.id)
        .scalar_subquery()
    )
    rows = (
        await session.execute(
            select(Entity.id, Entity.key, Entity.kind, Entity.name, target.key, links)
            .outerjoin(target, Entity.merged_into == target.id)
            .where(condition)
            .order_by(links.desc(), Entity.key)
            .limit(limit)
        )
    ).all()
    out = []
    for entity_id, entity_key, kind, name, merged_key, articles in rows:
        aliases = (
            await session.execute(
                select(EntityAlias.alias, EntityAlias.source)
                .where(EntityAlias.entity_id == entity_id)
                .order_by(EntityAlias.source != USER_SOURCE, EntityAlias.alias)
                .limit(MAX_ALIASES_SHOWN)
            )
        ).all()
        out.append(
            EntitySummary(
                entity_key,
                kind,
                name,
                merged_key,
                int(articles or 0),
                tuple((a, s) for a, s in aliases),
            )
        )
    return out


# --- commands ------------------------------------------------------------------------------


async def add_alias(
    session: AsyncSession, entity: str, alias: str, *, name: str | None = None
) -> AliasChange:
    """Attach ``alias`` to ``entity`` as a user alias (idempotent). Caller commits."""
    alias = " ".join(alias.split())
    if not strip_articles(fold(alias)):
        raise AdminError(f"alias {alias!r} has no letters or digits")
    info = await find_entity(session, entity, create=True, name=name)
    await session.execute(
        insert(EntityAlias)
        .values(entity_id=info.id, alias=alias, source=USER_SOURCE)
        .on_conflict_do_update(
            index_elements=[EntityAlias.entity_id, EntityAlias.alias],
            set_={"source": USER_SOURCE},
        )
    )
    logger.info("entity alias added entity=%s alias=%r", info.key, alias)
    return AliasChange(info, alias)


async def merge_entities(
    session: AsyncSession, source: str, target: str, *, allow_kind_change: bool = False
) -> MergeChange:
    """Make ``source`` a redirect to ``target``. Caller commits."""
    src = await find_entity(session, source)
    dst = await find_entity(session, target, create=True)
    if src.id == dst.id:
        raise AdminError(f"{src.key} cannot be merged into itself")
    if src.kind != dst.kind and not allow_kind_change:
        raise AdminError(
            f"{src.key} is {src.kind} and {dst.key} is {dst.kind}; "
            "distinct kinds stay distinct (pass --force to merge anyway)"
        )
    # refuse a cycle: walk the target's redirect chain
    current: int | None = dst.id
    seen: set[int] = set()
    while current is not None and current not in seen:
        if current == src.id:
            raise AdminError(f"{dst.key} is already merged into {src.key}; split it first")
        seen.add(current)
        current = (
            await session.execute(select(Entity.merged_into).where(Entity.id == current))
        ).scalar_one_or_none()
    await session.execute(
        update(Entity).where(Entity.id == src.id).values(merged_into=dst.id, updated_at=func.now())
    )
    logger.info("entity merged source=%s target=%s", src.key, dst.key)
    return MergeChange(src, dst)


async def split_entity(
    session: AsyncSession,
    entity: str,
    *,
    aliases: tuple[str, ...] | list[str] = (),
    into: str | None = None,
    name: str | None = None,
) -> SplitChange:
    """Undo a merge of ``entity``, or move ``aliases`` from it to ``into``. Caller commits."""
    src = await find_entity(session, entity)
    if not aliases:
        if into is not None:
            raise AdminError("--into needs at least one --alias to move")
        merged_into = (
            await session.execute(select(Entity.merged_into).where(Entity.id == src.id))
        ).scalar_one()
        if merged_into is None:
            raise AdminError(
                f"{src.key} is not merged into anything; to move surface forms to another "
                "entity give --alias ... --into KIND:name"
            )
        await session.execute(
            update(Entity)
            .where(Entity.id == src.id)
            .values(merged_into=None, updated_at=func.now())
        )
        logger.info("entity unmerged entity=%s", src.key)
        return SplitChange(src, None, True, ())
    if into is None:
        raise AdminError("moving aliases needs --into ENTITY (a key creates it)")
    dst = await find_entity(session, into, create=True, name=name)
    if dst.id == src.id:
        raise AdminError("--into is the same entity")
    moved: list[str] = []
    for alias in aliases:
        alias = " ".join(alias.split())
        await session.execute(
            delete(EntityAlias).where(
                EntityAlias.entity_id == src.id,
                func.lower(EntityAlias.alias) == alias.lower(),
            )
        )
        await session.execute(
            insert(EntityAlias)
            .values(entity_id=dst.id, alias=alias, source=USER_SOURCE)
            .on_conflict_do_update(
                index_elements=[EntityAlias.entity_id, EntityAlias.alias],
                set_={"source": USER_SOURCE},
            )
        )
        moved.append(alias)
    logger.info("entity split source=%s target=%s aliases=%s", src.key, dst.key, moved)
    return SplitChange(src, dst, False, tuple(moved))


__all__ = [
    "AdminError",
    "add_alias",
    "find_entities",
    "find_entity",
    "load_overrides",
    "merge_entities",
    "refresh_overrides",
    "split_entity",
]
