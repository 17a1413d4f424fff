"""Read side: what the pipeline caught, as plain dicts (the CLI prints them or dumps JSON).

Entity merges (``entities.merged_into``, made by ``newsflow entities merge``) are followed
here: a merged entity's links count for the entity it was merged into, however long the
chain, so readers agree with what newly enriched articles produce.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db.models import search_config_sql

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 20
SNIPPET_OPTIONS = (
    "MaxFragments=2, MaxWords=24, MinWords=8, StartSel=«, StopSel=», FragmentDelimiter= … "
)
#: Search configs for query parsing. The tsvector indexes titles with 'simple' (names are not
#: stemmed) and bodies in their language's configuration (shared.db.models
#: SEARCH_CONFIG_BY_LANGUAGE); the query is parsed in each and OR-ed, so "strikes" finds a
#: title word "strikes" and an English body stem "strike", "operasyon" a Turkish
#: "operasyonunda" and "عملية" an Arabic "العملية".
SEARCH_CONFIGS = ("simple", "english", "turkish", "arabic")

# every entity with the entity its links count for (root of its merge chain)
_ROOTS = """
WITH RECURSIVE roots(id, root, depth) AS (
    SELECT id, id, 0 FROM entities WHERE merged_into IS NULL
    UNION ALL
    SELECT e.id, r.root, r.depth + 1 FROM entities e JOIN roots r ON e.merged_into = r.id
    WHERE r.depth < 16
)
"""

_ARTICLE_SUMMARY = """
    a.id, a.canonical_url, a.title, a.host, a.site_name, a.published_at, a.published_source,
    a.language, a.status, a.word_count, a.feed_id, a.stored_at
"""


def _ref_is_id(ref: str) -> bool:
    return ref.isdigit()


async def _entity_ids(session: AsyncSession, ref: str) -> list[int]:
    """Ids of the entity *ref* names (id, key, name or alias) plus everything merged into it."""
    rows = await session.execute(
        text(
            _ROOTS
            + """
        , wanted AS (
            SELECT r.root FROM entities e JOIN roots r ON r.id = e.id
            WHERE (CAST(:as_id AS bigint) IS NOT NULL AND e.id = :as_id) OR e.key = :ref
               OR lower(e.key) = lower(:ref) OR lower(e.name) = lower(:ref)
            UNION
            SELECT r.root FROM entity_aliases al JOIN roots r ON r.id = al.entity_id
            WHERE lower(al.alias) = lower(:ref)
        )
        SELECT r.id FROM roots r WHERE r.root IN (SELECT root FROM wanted)
        """
        ),
        {"ref": ref, "as_id": int(ref) if _ref_is_id(ref) else None},
    )
    return [r[0] for r in rows]


async def list_articles(
    session: AsyncSession,
    *,
    since: datetime | None = None,
    feed: str | None = None,
    entity: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """Newest first (published time, else stored time). *feed*: feed id or URL; *entity*:
    entity id, key, name or alias. Each row has its top entities by salience."""
    where = ["TRUE"]
    params: dict[str, Any] = {"limit": limit}
    if since is not None:
        where.append("coalesce(a.published_at, a.stored_at) >= :since")
        params["since"] = since
    if feed is not None:
        if feed.isdigit():
            where.append("a.feed_id = :feed_id")
            params["feed_id"] = int(feed)
        else:
            where.append("a.feed_id IN (SELECT id FROM feeds WHERE url = :feed_url)")
            params["feed_url"] = feed
    if entity is not None:
        ids = await _entity_ids(session, entity)
        if not ids:
            return []
        where.append(
            "EXISTS (SELECT 1 FROM article_entities x WHERE x.article_id = a.id "
            "AND x.entity_id = ANY(:entity_ids))"
        )
        params["entity_ids"] = ids
    rows = await session.execute(
        text(
            f"""
            SELECT {_ARTICLE_SUMMARY},
                   (SELECT count(*) FROM article_entities x WHERE x.article_id = a.id) AS entities,
                   ARRAY(SELECT e.name FROM article_entities x JOIN entities e ON e.id = x.entity_id
                         WHERE x.article_id = a.id
                         ORDER BY x.salience DESC, x.mentions DESC, e.key LIMIT 5) AS top_entities
            FROM articles a
            WHERE {" AND ".join(where)}
            ORDER BY coalesce(a.published_at, a.stored_at) DESC, a.id DESC
            LIMIT :limit
            """
        ),
        params,
    )
    return [dict(r._mapping) for r in rows]


async def show_article(session: AsyncSession, ref: str) -> dict[str, Any] | None:
    """Everything stored about one article (by id, canonical URL, fetched URL or final URL):
    clean text, metadata with provenance, removed spans, captions, entities with mentions."""
    params: dict[str, Any] = {"ref": ref, "as_id": int(ref) if _ref_is_id(ref) else None}
    row = (
        await session.execute(
            text(
                """
                SELECT a.*, f.url AS feed_url FROM articles a
                LEFT JOIN feeds f ON f.id = a.feed_id
                WHERE (CAST(:as_id AS bigint) IS NOT NULL AND a.id = :as_id)
                   OR a.canonical_url = :ref OR a.url = :ref OR a.final_url = :ref
                ORDER BY (a.canonical_url = :ref) DESC, a.id
                LIMIT 1
                """
            ),
            params,
        )
    ).first()
    if row is None:
        return None
    a = dict(row._mapping)
    links = await session.execute(
        text(
            """
            SELECT e.id, e.key, e.kind, e.name, x.mentions, x.salience
            FROM article_entities x JOIN entities e ON e.id = x.entity_id
            WHERE x.article_id = :id
            ORDER BY x.salience DESC, x.mentions DESC, e.key
            """
        ),
        {"id": a["id"]},
    )
    # mentions carry the key the enricher emitted; map each key to the linked entity (merges)
    mention_keys = sorted({m.get("entity_key") for m in a["mentions"] or [] if m.get("entity_key")})
    key_to_root: dict[str, int] = {}
    if mention_keys:
        key_rows = await session.execute(
            text(
                _ROOTS + "SELECT e.key, r.root FROM entities e JOIN roots r ON r.id = e.id "
                "WHERE e.key = ANY(:keys)"
            ),
            {"keys": mention_keys},
        )
        key_to_root = {k: root for k, root in key_rows}
    entities = []
    for link in links:
        spans = [
            {k: m.get(k) for k in ("text", "start", "end", "field")}
            for m in a["mentions"] or []
            if key_to_root.get(m.get("entity_key", "")) == link.id
            or m.get("entity_key") == link.key
        ]
        entities.append(
            {
                "id": link.id,
                "key": link.key,
                "kind": link.kind,
                "name": link.name,
                "mentions": link.mentions,
                "salience": link.salience,
                "aliases": sorted({s["text"] for s in spans}),
                "spans": spans,
            }
        )
    return {
        "id": a["id"],
        "canonical_url": a["canonical_url"],
        "url": a["url"],
        "final_url": a["final_url"],
        "host": a["host"],
        "status": a["status"],
        "title": a["title"],
        "lead": a["lead"],
        "body_text": a["body_text"],
        "captions": a["captions"],
        "removed": a["removed"],
        "metadata": {
            "authors": a["authors"],
            "site_name": a["site_name"],
            "language": a["language"],
            "published_at": a["published_at"],
            "published_source": a["published_source"],
            "modified_at": a["modified_at"],
            "modified_source": a["modified_source"],
            "top_image": a["top_image"],
            "paywalled": a["paywalled"],
            "word_count": a["word_count"],
            "extraction": a["extraction"],
            "content_hash": a["content_hash"],
            "duplicate_of": a["duplicate_of"],
            "similarity": a["similarity"],
            "feed_id": a["feed_id"],
            "feed_url": a["feed_url"],
        },
        "timeline": {
            "discovered_at": a["discovered_at"],
            "fetched_at": a["fetched_at"],
            "parsed_at": a["parsed_at"],
            "enriched_at": a["enriched_at"],
            "stored_at": a["stored_at"],
            "updated_at": a["updated_at"],
        },
        "enrichment": a["enrichment"],
        "entities": entities,
    }


async def search(
    session: AsyncSession, query: str, *, limit: int = DEFAULT_LIMIT
) -> list[dict[str, Any]]:
    """Full text over ``articles.search`` (GIN), ranked by ``ts_rank_cd``; web-search syntax:
    ``"exact phrase"``, ``or``, ``-excluded``."""
    tsquery = " || ".join(f"websearch_to_tsquery('{c}', :q)" for c in SEARCH_CONFIGS)
    config = search_config_sql("a.language")  # snippets highlight in the body's language
    rows = await session.execute(
        text(
            f"""
            WITH q AS (SELECT ({tsquery}) AS query)
            SELECT {_ARTICLE_SUMMARY},
                   ts_rank_cd(a.search, q.query) AS rank,
                   ts_headline({config}, a.body_text, q.query, :opts) AS snippet
            FROM articles a, q
            WHERE a.search @@ q.query
            ORDER BY rank DESC, coalesce(a.published_at, a.stored_at) DESC, a.id DESC
            LIMIT :limit
            """
        ),
        {"q": query, "limit": limit, "opts": SNIPPET_OPTIONS},
    )
    return [dict(r._mapping) for r in rows]


async def list_entities(
    session: AsyncSession,
    *,
    kind: str | None = None,
    since: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[dict[str, Any]]:
    """Top entities by number of articles (then mentions), merges folded into their target."""
    params: dict[str, Any] = {"limit": limit, "kind": kind.upper() if kind else None}
    article_filter = "TRUE"
    if since is not None:
        # counts over the window only: "who was in the news since T"
        article_filter = "coalesce(a.published_at, a.stored_at) >= :since"
        params["since"] = since
    rows = await session.execute(
        text(
            _ROOTS
            + f"""
            , counts AS (
                SELECT r.root AS id, count(DISTINCT x.article_id) AS articles,
                       sum(x.mentions) AS mentions,
                       max(coalesce(a.published_at, a.stored_at)) AS last_seen
                FROM article_entities x
                JOIN roots r ON r.id = x.entity_id
                JOIN articles a ON a.id = x.article_id
                WHERE {article_filter}
                GROUP BY r.root
            )
            SELECT e.id, e.key, e.kind, e.name, c.articles, c.mentions, c.last_seen,
                   ARRAY(SELECT DISTINCT al.alias FROM entity_aliases al
                         JOIN roots r2 ON r2.id = al.entity_id
                         WHERE r2.root = e.id ORDER BY al.alias) AS aliases
            FROM counts c JOIN entities e ON e.id = c.id
            WHERE CAST(:kind AS text) IS NULL OR e.kind = :kind
            ORDER BY c.articles DESC, c.mentions DESC, e.key
            LIMIT :limit
            """
        ),
        params,
    )
    return [dict(r._mapping) for r in rows]


async def show_entity(
    session: AsyncSession, ref: str, *, articles: int = DEFAULT_LIMIT
) -> dict[str, Any] | None:
    """One entity (by id, key, name or alias): aliases with source, merges, counts, its most
    recent articles and the entities it most often appears with."""
    params: dict[str, Any] = {"ref": ref, "as_id": int(ref) if _ref_is_id(ref) else None}
    row = (
        await session.execute(
            text(
                """
                SELECT e.* FROM entities e
                WHERE (CAST(:as_id AS bigint) IS NOT NULL AND e.id = :as_id)
                   OR e.key = :ref OR lower(e.key) = lower(:ref) OR lower(e.name) = lower(:ref)
                ORDER BY (e.key = :ref) DESC, (e.merged_into IS NULL) DESC, e.id
                LIMIT 1
                """
            ),
            params,
        )
    ).first()
    if row is None:
        alias_hit = (
            await session.execute(
                text(
                    "SELECT e.* FROM entity_aliases al JOIN entities e ON e.id = al.entity_id "
                    "WHERE lower(al.alias) = lower(:ref) ORDER BY e.id LIMIT 1"
                ),
                params,
            )
        ).first()
        if alias_hit is None:
            return None
        row = alias_hit
    entity = dict(row._mapping)
    ids = await _entity_ids(session, str(entity["id"]))
    root = (
        await session.execute(
            text(
                _ROOTS
                + "SELECT e.id, e.key, e.name FROM roots r JOIN entities e ON e.id = r.root WHERE r.id = :id"
            ),
            {"id": entity["id"]},
        )
    ).first()
    group = {"ids": ids, "limit": articles}
    counts = (
        await session.execute(
            text(
                "SELECT count(DISTINCT article_id) AS articles, coalesce(sum(mentions), 0) AS mentions "
                "FROM article_entities WHERE entity_id = ANY(:ids)"
            ),
            group,
        )
    ).one()
    aliases = await session.execute(
        text(
            "SELECT DISTINCT alias, source FROM entity_aliases WHERE entity_id = ANY(:ids) "
            "ORDER BY alias, source"
        ),
        group,
    )
    merged_from = await session.execute(
        text("SELECT id, key, name FROM entities WHERE merged_into = :id ORDER BY key"),
        {"id": entity["id"]},
    )
    recent = await session.execute(
        text(
            f"""
            SELECT {_ARTICLE_SUMMARY}, sum(x.mentions) AS mentions, max(x.salience) AS salience
            FROM article_entities x JOIN articles a ON a.id = x.article_id
            WHERE x.entity_id = ANY(:ids)
            GROUP BY a.id
            ORDER BY coalesce(a.published_at, a.stored_at) DESC, a.id DESC
            LIMIT :limit
            """
        ),
        group,
    )
    related = await session.execute(
        text(
            _ROOTS
            + """
            SELECT e.id, e.key, e.kind, e.name, count(DISTINCT y.article_id) AS articles
            FROM article_entities x
            JOIN article_entities y ON y.article_id = x.article_id
            JOIN roots r ON r.id = y.entity_id
            JOIN entities e ON e.id = r.root
            WHERE x.entity_id = ANY(:ids) AND NOT (y.entity_id = ANY(:ids))
            GROUP BY e.id
            ORDER BY articles DESC, e.key
            LIMIT 10
            """
        ),
        group,
    )
    return {
        "id": entity["id"],
        "key": entity["key"],
        "kind": entity["kind"],
        "name": entity["name"],
        "created_at": entity["created_at"],
        "updated_at": entity["updated_at"],
        "merged_into": (
            {"id": root.id, "key": root.key, "name": root.name}
            if root is not None and root.id != entity["id"]
            else None
        ),
        "merged_from": [dict(r._mapping) for r in merged_from],
        "articles": counts.articles,
        "mentions": counts.mentions,
        "aliases": [dict(r._mapping) for r in aliases],
        "recent_articles": [dict(r._mapping) for r in recent],
        "related": [dict(r._mapping) for r in related],
    }
