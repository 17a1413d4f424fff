"""Read side of stories (``newsflow stories list|show``, the demo): plain queries.

Shapes: :func:`list_stories` -> list of dicts (id, headline, first_seen, last_updated,
article_count, sources, languages, top_entities, first_report {article_id, url, source,
published_at}, articles [{article_id, url, source, role}]); :func:`show_story` -> one dict
with ``timeline`` (every member in publication order: time, source, role, title, article id,
URL, language, copy_of) or None. A merged story id resolves to the story it redirects to.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

#: how many merge redirects are followed (a cycle cannot happen; this bounds a bad row)
MAX_REDIRECTS = 16

_LIST = text(
    "SELECT s.id, s.headline, s.first_seen, s.last_updated, s.article_count, s.sources,"
    " s.languages, s.top_entities, s.first_report_article_id, s.version"
    " FROM stories s WHERE s.merged_into IS NULL"
    " AND (CAST(:since AS timestamptz) IS NULL OR s.last_updated >= :since)"
    " AND cardinality(s.sources) >= :min_sources"
    " AND (CAST(:entity AS text) IS NULL OR EXISTS"
    " (SELECT 1 FROM story_keys k WHERE k.story_id = s.id AND k.key = :entity))"
    " ORDER BY s.last_updated DESC, s.id DESC LIMIT :limit"
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
) -> list[dict[str, Any]]:
    """Live stories, most recently updated first (filters: since, entity key, sources)."""
    rows = (
        await session.execute(
            _LIST,
            {"since": since, "entity": entity, "min_sources": min_sources, "limit": limit},
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


async def show_story(session: AsyncSession, story_id: int) -> dict[str, Any] | None:
    """One story with its timeline; a merged id is followed to its survivor."""
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
    members = (await _members(session, [row.id]))[row.id]
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
        "first_report": _first(members),
        "timeline": members,
    }
