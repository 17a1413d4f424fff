"""Feed administration: add (with discovery), import (OPML or text), list, remove.

Plain async functions over a session factory, so the CLI and tests share them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree.ElementTree import ParseError

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException
from protego import Protego
from sqlalchemy import delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.fetcher.feeds import COMMON_FEED_PATHS, discover_feed_links, parse_feed
from services.fetcher.service import Fetcher
from services.fetcher.urls import normalize_url
from shared.db.models import Feed
from shared.errors import NewsflowError, PermanentError

logger = logging.getLogger(__name__)

#: Stop probing common paths after this many working feeds.
MAX_COMMON_PATH_FEEDS = 2
#: Sitemaps taken from robots.txt `Sitemap:` lines (news sitemaps first).
MAX_ROBOTS_SITEMAPS = 3
ROBOTS_MAX_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class FeedStatus:
    id: int
    url: str
    title: str | None
    kind: str | None
    last_polled_at: datetime | None
    next_poll_at: datetime | None
    poll_interval_s: float
    last_status: int | None
    last_outcome: str | None
    consecutive_failures: int
    last_error: str | None
    items_seen: int
    items_new: int

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("last_polled_at", "next_poll_at"):
            if data[key] is not None:
                data[key] = data[key].isoformat()
        return data


@dataclass(frozen=True, slots=True)
class AddResult:
    requested: str
    feeds: tuple[str, ...]  # feed URLs stored for this request (after discovery)
    added: tuple[str, ...]  # of those, the ones that were new
    error: str | None = None


def read_feed_list(text: str) -> list[str]:
    """Feed URLs from an OPML document or a text file (one URL a line, ``#`` comments)."""
    stripped = text.lstrip()
    if stripped.startswith("<"):
        try:
            root = safe_et.fromstring(stripped.encode())
        except (ParseError, DefusedXmlException) as exc:
            raise ValueError(f"not a valid OPML file: {exc}") from exc
        urls = [
            el.get("xmlUrl") or el.get("xmlurl") or ""
            for el in root.iter()
            if isinstance(el.tag, str) and el.tag.lower() == "outline"
        ]
        return [u.strip() for u in urls if u.strip()]
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return [line for line in lines if line]


async def add_feeds(
    session_factory: async_sessionmaker[AsyncSession], urls: Sequence[str]
) -> list[tuple[str, bool]]:
    """Store feed URLs (normalised); ``(url, added)`` per URL, False if it already existed.

    New feeds are due at once. Raises ValueError for a URL that is not http(s).
    """
    normalised = list(dict.fromkeys(normalize_url(u) for u in urls))
    if not normalised:
        return []
    async with session_factory() as session, session.begin():
        stmt = (
            pg_insert(Feed)
            .values([{"url": u} for u in normalised])
            .on_conflict_do_nothing(index_elements=[Feed.url])
            .returning(Feed.url)
        )
        added = set((await session.execute(stmt)).scalars())
    return [(u, u in added) for u in normalised]


async def discover_feeds(fetcher: Fetcher, url: str) -> list[str]:
    """Feed URLs for ``url``: itself if it is a feed, else what its page advertises
    (``<link rel="alternate">``), else common feed paths that answer with a feed."""
    url = normalize_url(url)
    result = await fetcher.follow_stubs(await fetcher.get(url))  # a home page behind a refresh
    content_type = result.headers.get("content-type")
    try:
        parse_feed(result.body, url=result.final_url, content_type=content_type)
        return [normalize_url(result.final_url)]
    except PermanentError as exc:
        if exc.kind != "not_a_feed":
            raise
    candidates = discover_feed_links(result.body, base_url=result.final_url)
    found = [c for c in candidates if await _is_feed(fetcher, c)]
    if found:
        return found
    parts = urlsplit(result.final_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    for candidate in await robots_sitemaps(fetcher, origin):
        if await _is_feed(fetcher, candidate):
            found.append(candidate)
    if found:
        return found
    for path in COMMON_FEED_PATHS:
        candidate = normalize_url(origin + path)
        if await _is_feed(fetcher, candidate):
            found.append(candidate)
            if len(found) >= MAX_COMMON_PATH_FEEDS:
                break
    return found


async def robots_sitemaps(fetcher: Fetcher, origin: str) -> list[str]:
    """Sitemap URLs a site lists in its robots.txt (``Sitemap:`` lines, read by protego),
    news sitemaps first; [] when robots.txt is missing or unreadable."""
    try:
        result = await fetcher.get(
            origin + "/robots.txt", headers={"Accept": "text/plain"}, max_bytes=ROBOTS_MAX_BYTES
        )
    except NewsflowError as exc:
        logger.debug("no robots.txt origin=%s kind=%s", origin, exc.kind)
        return []
    text = result.body.decode("utf-8", errors="replace")
    urls: list[str] = []
    for raw in Protego.parse(text).sitemaps:
        try:
            urls.append(normalize_url(raw, base=origin + "/"))
        except ValueError:
            continue
    urls = list(dict.fromkeys(urls))
    urls.sort(key=lambda u: "news" not in u.lower())  # stable: news sitemaps first
    return urls[:MAX_ROBOTS_SITEMAPS]


async def _is_feed(fetcher: Fetcher, url: str) -> bool:
    try:
        result = await fetcher.get(url)
        parse_feed(
            result.body, url=result.final_url, content_type=result.headers.get("content-type")
        )
    except NewsflowError as exc:
        logger.debug("not a feed url=%s kind=%s", url, exc.kind)
        return False
    return True


async def add_with_discovery(
    session_factory: async_sessionmaker[AsyncSession], fetcher: Fetcher, urls: Sequence[str]
) -> list[AddResult]:
    """Add each URL, discovering feeds when it is a site's page. Never raises per URL."""
    results: list[AddResult] = []
    for raw in urls:
        try:
            feeds = await discover_feeds(fetcher, raw)
        except (NewsflowError, ValueError) as exc:
            detail = f"{exc.kind}: {exc.detail}" if isinstance(exc, NewsflowError) else str(exc)
            results.append(AddResult(raw, (), (), error=detail))
            continue
        if not feeds:
            results.append(
                AddResult(
                    raw,
                    (),
                    (),
                    error="no feed found (checked <link rel=alternate> and common paths)",
                )
            )
            continue
        stored = await add_feeds(session_factory, feeds)
        results.append(
            AddResult(raw, tuple(u for u, _ in stored), tuple(u for u, new in stored if new))
        )
    return results


async def list_feeds(session_factory: async_sessionmaker[AsyncSession]) -> list[FeedStatus]:
    async with session_factory() as session:
        feeds = (await session.execute(select(Feed).order_by(Feed.id))).scalars().all()
    return [
        FeedStatus(
            id=f.id,
            url=f.url,
            title=f.title,
            kind=f.kind,
            last_polled_at=f.last_polled_at,
            next_poll_at=f.next_poll_at,
            poll_interval_s=f.poll_interval_s,
            last_status=f.last_status,
            last_outcome=f.last_outcome,
            consecutive_failures=f.consecutive_failures,
            last_error=f.last_error,
            items_seen=f.items_seen,
            items_new=f.items_new,
        )
        for f in feeds
    ]


async def remove_feeds(
    session_factory: async_sessionmaker[AsyncSession], refs: Sequence[str]
) -> list[str]:
    """Remove feeds by id or URL; returns the URLs removed. Seen links are kept, so a
    re-added feed does not re-emit old articles."""
    ids = [int(r) for r in refs if r.isdigit()]
    urls = []
    for r in refs:
        if not r.isdigit():
            try:
                urls.append(normalize_url(r))
            except ValueError:
                urls.append(r)
    async with session_factory() as session, session.begin():
        stmt = delete(Feed).where(or_(Feed.id.in_(ids), Feed.url.in_(urls))).returning(Feed.url)
        return list((await session.execute(stmt)).scalars())


@dataclass(frozen=True, slots=True)
class ImportReport:
    added: int
    existing: int
    invalid: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.added} added, {self.existing} already present"
        if self.invalid:
            text += f", {len(self.invalid)} invalid ({', '.join(self.invalid[:3])}…)"
        return text


async def import_feeds_file(
    session_factory: async_sessionmaker[AsyncSession], path: Path
) -> ImportReport:
    """Add every feed URL listed in an OPML or text file (no discovery: the file lists feeds)."""
    urls = read_feed_list(await asyncio.to_thread(path.read_text, encoding="utf-8"))
    valid: list[str] = []
    invalid: list[str] = []
    for url in urls:
        try:
            valid.append(normalize_url(url))
        except ValueError:
            invalid.append(url)
    stored = await add_feeds(session_factory, valid)
    added = sum(1 for _, new in stored if new)
    return ImportReport(added=added, existing=len(stored) - added, invalid=tuple(invalid))
