"""User aliases and merges (``newsflow entities alias add | merge | split``) loaded from the DB
as :class:`~services.enricher.canonical.Overrides` for the running enricher, and refreshed
periodically so curation reaches it without a restart. The enricher's hot path imports only
this module, not the curation commands (:mod:`services.enricher.admin`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from services.enricher.canonical import Overrides, fold, follow_merges, strip_articles
from shared.db.models import Entity, EntityAlias

if TYPE_CHECKING:
    from services.enricher.pipeline import Enricher

logger = logging.getLogger(__name__)

#: ``entity_aliases.source`` of an alias a user added.
USER_SOURCE = "user"


async def load_overrides(session: AsyncSession) -> Overrides:
    """User aliases and merges from the DB, ready for :class:`~.pipeline.Enricher`."""
    target = aliased(Entity)
    merge_rows = (
        await session.execute(
            select(Entity.key, target.key, target.name).join(
                target, Entity.merged_into == target.id
            )
        )
    ).all()
    alias_rows = (
        await session.execute(
            select(EntityAlias.alias, Entity.key, Entity.name)
            .join(Entity, EntityAlias.entity_id == Entity.id)
            .where(EntityAlias.source == USER_SOURCE)
            .order_by(EntityAlias.alias, Entity.key)
        )
    ).all()
    names: dict[str, str] = {}
    edges: dict[str, str] = {}
    for source_key, target_key, target_name in merge_rows:
        edges[source_key] = target_key
        names[target_key] = target_name
    aliases: dict[str, str] = {}
    for alias, key, name in alias_rows:
        folded = strip_articles(fold(alias))
        if not folded:
            continue
        if folded in aliases and aliases[folded] != key:
            logger.warning(
                "user alias %r points to %s and %s; keeping %s",
                alias,
                aliases[folded],
                key,
                aliases[folded],
            )
            continue
        aliases[folded] = key
        names[key] = name
    return Overrides(aliases=aliases, merges=follow_merges(edges), names=names)


#: Suggested period for :func:`refresh_overrides` in a running enricher.
DEFAULT_OVERRIDES_REFRESH_S = 60.0


async def refresh_overrides(session: AsyncSession, enricher: Enricher) -> bool:
    """Reload user aliases/merges into a running ``enricher``; True if they changed.

    Cheap (two indexed queries), so a service can call it every
    ``DEFAULT_OVERRIDES_REFRESH_S`` seconds or when told to (e.g. a control message).
    """
    overrides = await load_overrides(session)
    if overrides.digest == enricher.overrides.digest:
        return False
    enricher.set_overrides(overrides)
    return True


class OverridesRefresher:
    """Calls :func:`refresh_overrides` at most every *every_s* seconds (``maybe_refresh``);
    a failed refresh is logged and the enricher keeps its current overrides."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        enricher: Enricher,
        *,
        every_s: float = DEFAULT_OVERRIDES_REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._enricher = enricher
        self._every_s = every_s
        self._clock = clock
        self._at = clock()

    async def maybe_refresh(self) -> None:
        if self._clock() - self._at <= self._every_s:
            return
        self._at = self._clock()
        try:
            async with self._sessions() as session:
                if await refresh_overrides(session, self._enricher):
                    logger.info("entity overrides changed; reloaded")
        except Exception as exc:  # stale overrides beat a stalled stream
            logger.warning("could not refresh entity overrides: %s", exc)
