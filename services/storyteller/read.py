"""Read side of stories (``newsflow stories list|show``, the demo): plain queries.

Shapes: :func:`list_stories` -> list of dicts (id, headline, first_seen, last_updated,
article_count, sources, languages, top_entities, first_report {article_id, url, source,
published_at}, articles [{article_id, url, source, role}]); :func:`show_story` -> one dict
with ``timeline`` (one page of members in publication order: time, source, role, title,
article id, URL, language, copy_of, pinned_at) and ``page`` {offset, limit, shown, total}, or
None. A merged story id resolves to the story it redirects to.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.entity_keys import KINDS, make_key

#: story ids are PostgreSQL bigints; an id outside this range names no story (asyncpg
#: raised a DBAPIError traceback for it)
MAX_STORY_ID = 2**63 - 1

#: surface form -> canonical key from the enricher's curated aliases, or None; passed in by
#: the CLI (a stage imports no other stage)
CuratedLookup = Callable[[str], str | None]

#: how many merge redirects are followed (a cycle cannot happen; this bounds a bad row)
MAX_REDIRECTS = 16
#: articles ``stories show`` lists unless asked for another page (a story can have hundreds)
DEFAULT_PAGE = 50

_LIST = text(
    "SELECT s.id, s.headline, s.first_seen, s.last_updated, s.article_count, s.sources,"
    " s.languages, s.top_entities, s.first_report_article_id, s.version"
    " FROM stories s WHERE s.merged_into IS NULL"
    " AND (CAST(:since AS timestamptz) IS NULL OR s.last_updated >= :since)"
    " AND cardinality(s.sources) >= :min_sources"
    " AND (CAST(:keys AS text[]) IS NULL OR EXISTS"
    " (SELECT 1 FROM story_keys k WHERE k.story_id = s.id AND k.key = ANY(:keys)))"
    " ORDER BY s.last_updated DESC, s.id DESC LIMIT :limit"
)
# The keys a user's --entity names, as `articles list --entity` reads it: a key (any case), a
# name or a surface form in entity_aliases (PKK), widened to the entity's whole merge family
# (story_keys may hold a key filed before a merge). Exact-key matching alone answered an
# alias with a silent empty list.
_ENTITY_KEYS = text(
    "WITH RECURSIVE roots(id, root, depth) AS ("
    " SELECT id, id, 0 FROM entities WHERE merged_into IS NULL"
    " UNION ALL SELECT e.id, r.root, r.depth + 1 FROM entities e"
    " JOIN roots r ON e.merged_into = r.id WHERE r.depth < 16),"
    " wanted AS ("
    " SELECT r.root FROM entities e JOIN roots r ON r.id = e.id"
    " WHERE lower(e.key) = lower(:ref) OR lower(e.name) = lower(:ref)"
    " UNION SELECT r.root FROM entity_aliases al JOIN roots r ON r.id = al.entity_id"
    " WHERE lower(al.alias) = lower(:ref))"
    " SELECT e.key FROM roots r JOIN entities e ON e.id = r.id"
    " WHERE r.root IN (SELECT root FROM wanted)"
)
_MEMBERS = text(
    "SELECT story_id, article_id, url, canonical_url, source, language, title, published_at,"
    " role, copy_of FROM story_articles WHERE story_id = ANY(CAST(:ids AS bigint[]))"
    " ORDER BY published_at, article_id"
)


async def _members(session: AsyncSession, ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        for row in await session.execute(_MEMBERS, {"ids": ids}):
            out[row.story_id].append(
                {
                    "article_id": row.article_id,
                    "url": row.url,
                    "canonical_url": row.canonical_url,
                    "source": row.source,
                    "language": row.language,
                    "title": row.title,
                    "published_at": row.published_at,
                    "role": row.role,
                    "copy_of": row.copy_of,
                }
            )
    return out


async def entity_keys(
    session: AsyncSession, ref: str, *, curated: CuratedLookup | None = None
) -> list[str]:
    """Every key *ref* names (key, name, stored or curated alias, with merge family).

    Always includes *ref* itself, so a key no entity row knows still matches as given.
    """
    ref = ref.strip()
    refs = {ref}
    # A key typed as shown (GPE:Türkiye, GPE:türkiye) is folded as the enricher builds keys:
    # lower() alone kept the diacritics and the Turkish dotted I, and matched nothing.
    kind, sep, name = ref.partition(":")
    if sep and kind.upper() in KINDS and name.strip():
        refs.add(make_key(kind.upper(), name))
    curated_key = curated(ref) if curated is not None else None
    if curated_key is not None:
        refs.add(curated_key)
    keys = set(refs)
    for one in refs:
        keys.update(row[0] for row in await session.execute(_ENTITY_KEYS, {"ref": one}))
    return sorted(keys)


def _first(members: list[dict[str, Any]]) -> dict[str, Any] | None:
    first = next((m for m in members if m["role"] == "first_report"), None)
    if first is None:
        return None
    return {k: first[k] for k in ("article_id", "url", "source", "published_at")}


async def list_stories(
    session: AsyncSession,
    *,
    since: datetime | None = None,
    entity: str | None = None,
    min_sources: int = 1,
    limit: int = 20,
    curated: CuratedLookup | None = None,
) -> list[dict[str, Any]]:
    """Live stories, most recently updated first (filters: since, entity, sources).

    *entity*: a key (any case), an entity name or an alias; a key no entity row knows is
    matched as given. *curated* resolves the enricher's curated aliases (PKK).
    """
    keys = None if entity is None else await entity_keys(session, entity, curated=curated)
    rows = (
        await session.execute(
            _LIST,
            {"since": since, "keys": keys, "min_sources": min_sources, "limit": limit},
        )
    ).all()
    members = await _members(session, [r.id for r in rows])
    return [
        {
            "id": r.id,
            "headline": r.headline,
            "first_seen": r.first_seen,
            "last_updated": r.last_updated,
            "article_count": r.article_count,
            "sources": list(r.sources),
            "languages": list(r.languages),
            "top_entities": r.top_entities,
            "version": r.version,
            "first_report": _first(members[r.id]),
            "articles": [
                {k: m[k] for k in ("article_id", "url", "source", "role")} for m in members[r.id]
            ],
        }
        for r in rows
    ]


async def show_story(
    session: AsyncSession, story_id: int, *, limit: int | None = DEFAULT_PAGE, offset: int = 0
) -> dict[str, Any] | None:
    """One story with a page of its timeline; a merged id is followed to its survivor.

    *limit*: members on the page (None: all); *offset*: members skipped (publication order).
    ``page.total`` is the story's article count, ``page.shown`` this page's. None when no
    story has this id (including ids outside 1..MAX_STORY_ID).
    """
    if not 1 <= story_id <= MAX_STORY_ID:
        return None
    redirected_from: list[int] = []
    row: Any = None
    for _ in range(MAX_REDIRECTS):
        row = (
            await session.execute(text("SELECT * FROM stories WHERE id = :id"), {"id": story_id})
        ).one_or_none()
        if row is None:
            return None
        if row.merged_into is None:
            break
        redirected_from.append(story_id)
        story_id = row.merged_into
    else:
        return None  # a redirect chain longer than any merge can make: a bad row
    params = {"id": row.id, "limit": limit, "offset": offset}
    timeline = [dict(m._mapping) for m in await session.execute(_PAGE, params)]
    total = await session.scalar(_COUNT, {"id": row.id})
    first = (await session.execute(_FIRST, {"id": row.id})).one_or_none()
    return {
        "id": row.id,
        "redirected_from": redirected_from,
        "headline": row.headline,
        "first_seen": row.first_seen,
        "last_updated": row.last_updated,
        "article_count": row.article_count,
        "sources": list(row.sources),
        "languages": list(row.languages),
        "top_entities": row.top_entities,
        "version": row.version,
        "pinned": row.pin is not None,
        "first_report": None if first is None else dict(first._mapping),
        "page": {"offset": offset, "limit": limit, "shown": len(timeline), "total": total},
        "timeline": timeline,
    }


_PAGE = text(
    "SELECT article_id, url, canonical_url, source, language, title, published_at, role,"
    " copy_of, pinned_at FROM story_articles WHERE story_id = :id"
    " ORDER BY published_at, article_id LIMIT :limit OFFSET :offset"
)
_COUNT = text("SELECT count(*) FROM story_articles WHERE story_id = :id")
_FIRST = text(
    "SELECT article_id, url, source, published_at FROM story_articles"
    " WHERE story_id = :id AND role = 'first_report' ORDER BY published_at, article_id LIMIT 1"
)
