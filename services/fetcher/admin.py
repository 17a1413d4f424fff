"""Feed administration: add (with discovery), import (OPML or text), list, remove.

Plain async functions over a session factory, so the CLI and tests share them.
"""

from __future__ import annotations

import asyncio
import logging
import re
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
from sqlalchemy import delete, func, or_, select, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.fetcher.feeds import COMMON_FEED_PATHS, discover_feed_links, parse_feed
from services.fetcher.service import Fetcher
from services.fetcher.urls import normalize_url
from shared.db.models import Feed
from shared.errors import NewsflowError, PermanentError
from shared.guard import is_blocked_ip, is_metadata_ip

logger = logging.getLogger(__name__)

#: Stop probing common paths after this many working feeds.
MAX_COMMON_PATH_FEEDS = 2
#: Sitemaps taken from robots.txt `Sitemap:` lines (news sitemaps first).
MAX_ROBOTS_SITEMAPS = 3
ROBOTS_MAX_BYTES = 512 * 1024
#: A feed URL typed without a scheme (``example.com/rss``) is taken as https.
DEFAULT_SCHEME = "https://"
#: Error kinds of `feeds add` where storing the URL unchecked can still be right (the site
#: is down or blocks us for now); not for SSRF refusals or pages without a feed.
NO_DISCOVER_HINT_KINDS = ("network", "timeout", "too_many_redirects")
_HAS_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:(?!\d)")
NO_DISCOVER_HINT = "to store it without checking, use 'newsflow feeds add --no-discover URL'"


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


def no_discover_hint(raw: str) -> str:
    """What to try when checking *raw* failed on the network: store it unchecked and, for a
    URL typed without a scheme (https:// was assumed), write http:// for a site without TLS."""
    if _HAS_SCHEME.match(raw.strip()):
        return NO_DISCOVER_HINT
    return f"{DEFAULT_SCHEME} was assumed: write http://{raw.strip()} for a site without TLS; {NO_DISCOVER_HINT}"


def feed_url(raw: str) -> str:
    """A feed URL as typed, normalised; ``example.com/rss`` means ``https://example.com/rss``.

    Raises ValueError for anything that is not an http(s) URL then."""
    text = raw.strip()
    if not _HAS_SCHEME.match(text):
        host = text.split("/", 1)[0]
        if "." in host or host.startswith("[") or host.split(":", 1)[0] == "localhost":
            text = DEFAULT_SCHEME + text
    return normalize_url(text)


def refusal(url: str, *, allow_private: bool) -> str | None:
    """Why the SSRF guard will refuse this feed for sure (a literal address it blocks), else
    None. Host names are checked when fetched: their addresses can change."""
    host = urlsplit(url).hostname or ""
    try:
        blocked_metadata = is_metadata_ip(host)
        blocked = blocked_metadata or (not allow_private and is_blocked_ip(host))
    except ValueError:  # a host name, not an address
        return None
    if blocked_metadata:
        return "a cloud metadata endpoint, refused whatever the settings"
    if blocked:
        return "a private address; set NEWSFLOW_ALLOW_PRIVATE_NETWORKS=true to allow it"
    return None


def check_feed_urls(
    urls: Sequence[str], *, allow_private: bool
) -> tuple[list[str], list[tuple[str, str]]]:
    """``(valid normalised URLs, (url, reason) for the others)``, in input order."""
    valid: list[str] = []
    invalid: list[tuple[str, str]] = []
    for raw in urls:
        try:
            url = feed_url(raw)
        except ValueError as exc:
            invalid.append((raw, str(exc)))
            continue
        why = refusal(url, allow_private=allow_private)
        if why:
            invalid.append((raw, why))
        else:
            valid.append(url)
    return list(dict.fromkeys(valid)), invalid


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
    url = feed_url(url)
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
            if isinstance(exc, NewsflowError) and (
                exc.kind in NO_DISCOVER_HINT_KINDS or exc.kind.startswith("http_")
            ):
                detail += f" ({no_discover_hint(raw)})"
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
    invalid: tuple[tuple[str, str], ...] = ()  # (url as listed, why it was refused)
    urls: tuple[str, ...] = ()  # every valid feed the file lists, normalised

    def __str__(self) -> str:
        text = f"{self.added} added, {self.existing} already present"
        if self.invalid:
            shown = "; ".join(f"{url}: {why}" for url, why in self.invalid[:INVALID_SHOWN])
            more = "; …" if len(self.invalid) > INVALID_SHOWN else ""
            text += f", {len(self.invalid)} refused ({shown}{more})"
        return text


#: Refused lines quoted in an import report.
INVALID_SHOWN = 3


def read_feed_file(path: Path) -> list[str]:
    """The feed URLs listed in *path* (OPML or text). Raises ValueError with a message for a
    file that is missing, a directory, unreadable, not UTF-8 or not valid OPML."""
    if not path.exists():
        raise ValueError(f"feeds file {path} does not exist")
    if path.is_dir():
        raise ValueError(f"feeds file {path} is a directory, not a file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"feeds file {path} is not UTF-8 text ({exc.reason})") from exc
    except OSError as exc:
        raise ValueError(f"cannot read feeds file {path}: {exc.strerror or exc}") from exc
    return read_feed_list(text)


async def import_feeds_file(
    session_factory: async_sessionmaker[AsyncSession], path: Path, *, allow_private: bool = True
) -> ImportReport:
    """Add every feed URL listed in an OPML or text file (no discovery: the file lists feeds).

    Raises ValueError for a file that cannot be read (see :func:`read_feed_file`)."""
    urls = await asyncio.to_thread(read_feed_file, path)
    valid, invalid = check_feed_urls(urls, allow_private=allow_private)
    stored = await add_feeds(session_factory, valid)
    added = sum(1 for _, new in stored if new)
    return ImportReport(
        added=added,
        existing=len(stored) - added,
        invalid=tuple(invalid),
        urls=tuple(u for u, _ in stored),
    )


async def poll_now(
    session_factory: async_sessionmaker[AsyncSession],
    refs: Sequence[str] = (),
    *,
    every: bool = False,
) -> list[tuple[int, str]]:
    """Make feeds due now (by id or URL, or *every* feed); ``(id, url)`` of those marked.

    A running fetcher picks them up at its next tick (NEWSFLOW_POLL_TICK_S)."""
    condition: Any
    if every:
        condition = true()
    else:
        ids = [int(r) for r in refs if r.strip().isdigit()]
        urls = []
        for r in refs:
            if not r.strip().isdigit():
                try:
                    urls.append(feed_url(r))
                except ValueError:
                    urls.append(r)
        condition = or_(Feed.id.in_(ids), Feed.url.in_(urls))
    async with session_factory() as session, session.begin():
        rows = await session.execute(
            update(Feed)
            .where(condition)
            .values(next_poll_at=func.now())
            .returning(Feed.id, Feed.url)
        )
        return sorted((r.id, r.url) for r in rows)


def unmatched_refs(refs: Sequence[str], marked: Sequence[tuple[int, str]]) -> list[str]:
    """The *refs* (ids or URLs, as given to :func:`poll_now`) that matched none of the
    ``(id, url)`` feeds it marked, in the order given."""
    ids = {str(feed_id) for feed_id, _ in marked}
    urls = {url for _, url in marked}
    missing = []
    for ref in refs:
        key = ref.strip()
        if key.isdigit():
            if str(int(key)) not in ids:
                missing.append(ref)
            continue
        try:
            url = feed_url(ref)
        except ValueError:
            url = ref
        if url not in urls:
            missing.append(ref)
    return missing


async def feed_ids(
    session_factory: async_sessionmaker[AsyncSession], urls: Sequence[str]
) -> list[int]:
    """Ids of the stored feeds with these (normalised) URLs."""
    if not urls:
        return []
    async with session_factory() as session:
        rows = await session.execute(select(Feed.id).where(Feed.url.in_(list(urls))))
        return sorted(rows.scalars())
