"""The fetcher's public surface, wired into faust by ``services/fetcher/app.py``.

One shared ``httpx.AsyncClient`` (opened in :meth:`Fetcher.start`) serves feed polls, robots.txt
and article pages, all through the SSRF-guarded transport and one per-host politeness limiter.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.fetcher import poll
from services.fetcher.charset import decode_html
from services.fetcher.fetch import (
    ACCEPT_ENCODING,
    HTML_ACCEPT,
    HttpResult,
    check_html_type,
    fetch_url,
    with_retries,
)
from services.fetcher.politeness import Politeness
from services.fetcher.robots import RobotsCache
from services.fetcher.stubs import MAX_STUB_BYTES, find_stub_target
from services.fetcher.transport import PerOriginTransport
from services.fetcher.urls import host_of
from shared.errors import PermanentError, TransientError
from shared.guard import Resolver, guarded_transport
from shared.messages import MAX_HTML_CHARS, Link, Page
from shared.settings import Settings

logger = logging.getLogger(__name__)

PollReport = poll.PollReport

#: Feeds and sitemaps may be bigger than article pages (a news sitemap lists 1000 URLs).
FEED_MAX_BYTES_FACTOR = 4
CONNECT_TIMEOUT_S = 10.0
KEEPALIVE_EXPIRY_S = 30.0
#: Poll feeds whose host is blocked for less than this anyway (the slot waits it out).
HOST_BLOCK_SKIP_S = 5.0


def build_transport(settings: Settings, *, resolver: Resolver | None = None) -> PerOriginTransport:
    """The fetcher's transport: per-origin pools of SSRF-guarded HTTP/1.1+HTTP/2 connections.

    ``resolver`` replaces DNS (benchmarks map many host names to one loopback server).
    """
    s = settings
    # Politeness caps in-flight requests per host; one spare connection covers robots.txt.
    per_origin = s.host_concurrency + 1
    limits = httpx.Limits(
        max_connections=per_origin,
        max_keepalive_connections=per_origin,
        keepalive_expiry=KEEPALIVE_EXPIRY_S,
    )
    ssl_context = httpx.create_ssl_context(trust_env=False)
    return PerOriginTransport(
        lambda: guarded_transport(
            allow_private=s.allow_private_networks,
            limits=limits,
            http2=True,
            resolver=resolver,
            ssl_context=ssl_context,
        ),
        max_origins=s.fetch_concurrency + s.poll_concurrency,
    )


class Fetcher:
    """Feed monitor and page fetcher. ``start()`` before use, ``stop()`` at shutdown."""

    def __init__(
        self,
        settings: Settings,
        *,
        session_factory: async_sessionmaker[AsyncSession],
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._session_factory = session_factory
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._politeness: Politeness | None = None
        self._robots: RobotsCache | None = None
        # Hosts that answered Retry-After since the last poll cycle; persisted to host_state
        # by the next poll so other workers slow down too.
        self._host_blocks: dict[str, tuple[datetime, str]] = {}
        self._rng = random.Random()
        #: One thread for big feed documents: off the event loop, one parse at a time
        #: (dateparser's caches are not documented as thread-safe).
        self._parse_executor: ThreadPoolExecutor | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        s = self._settings
        transport = self._transport or build_transport(s)
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(
                s.fetch_timeout_s, connect=min(CONNECT_TIMEOUT_S, s.fetch_timeout_s)
            ),
            headers={"User-Agent": s.user_agent, "Accept-Encoding": ACCEPT_ENCODING},
            follow_redirects=False,  # fetch_url follows them, re-checking every hop
            trust_env=False,  # an env proxy would bypass the connect-time SSRF check
        )
        self._politeness = Politeness(
            global_concurrency=s.fetch_concurrency + s.poll_concurrency,
            host_concurrency=s.host_concurrency,
            host_interval_s=s.host_interval_s,
        )
        self._robots = RobotsCache(self._get_robots, user_agent=s.user_agent)
        self._parse_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feed-parse")

    async def stop(self) -> None:
        if self._parse_executor is not None:
            self._parse_executor.shutdown(wait=False, cancel_futures=True)
            self._parse_executor = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def politeness(self) -> Politeness:
        if self._politeness is None:
            raise RuntimeError("Fetcher.start() was not called")
        return self._politeness

    def _require_client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise RuntimeError("Fetcher.start() was not called")
        return self._client

    # --- HTTP helpers ----------------------------------------------------------------------

    async def get(
        self, url: str, *, headers: dict[str, str] | None = None, max_bytes: int | None = None
    ) -> HttpResult:
        """One guarded, polite GET with redirects (no robots check, no retries).

        Used for feeds (subscribed explicitly by an operator, like a feed reader does) and
        feed discovery. Returns 2xx/304; raises TransientError/PermanentError otherwise.
        """
        s = self._settings
        return await fetch_url(
            self._require_client(),
            url,
            slot=self.politeness.slot,
            headers=headers,
            max_bytes=max_bytes or s.max_page_bytes * FEED_MAX_BYTES_FACTOR,
            max_redirects=s.max_redirects,
            timeout_s=s.fetch_timeout_s,
        )

    async def _get_robots(self, url: str) -> HttpResult:
        return await self.get(
            url, headers={"Accept": "text/plain"}, max_bytes=self._settings.max_page_bytes
        )

    async def _check_robots(self, url: str) -> None:
        if self._robots is None:
            raise RuntimeError("Fetcher.start() was not called")
        await self._robots.check(url)
        delay = await self._robots.crawl_delay(url)  # same cached entry, no second fetch
        if delay:
            self.politeness.set_min_interval(host_of(url), delay)

    def _note_retry_after(self, host: str, seconds: float, reason: str) -> None:
        self.politeness.block(host, seconds)
        until = datetime.now(UTC) + timedelta(seconds=seconds)
        previous = self._host_blocks.get(host)
        if previous is None or previous[0] < until:
            self._host_blocks[host] = (until, reason)

    # --- pages -----------------------------------------------------------------------------

    async def fetch(self, link: Link) -> Page:
        """Fetch an article page politely and safely.

        Raises PermanentError(kind=…) for DLQ-worthy failures (http_4xx, ssrf_blocked,
        too_large, wrong_type, redirect_loop, too_many_redirects, robots_disallowed, …) and
        TransientError only once retries are exhausted, or at once (kind ``host_blocked``,
        with ``retry_after``) when the host asked for a pause longer than
        ``fetch_max_retry_after_s``.
        """
        s = self._settings
        client = self._require_client()
        host = host_of(link.url)
        blocked = self.politeness.blocked_for(host)
        if blocked > s.fetch_max_retry_after_s:
            raise TransientError(
                f"{host} asked us to wait {blocked:.0f}s (Retry-After)",
                kind="host_blocked",
                retry_after=blocked,
            )
        robots = self._check_robots if s.respect_robots else None
        headers = {"Accept": HTML_ACCEPT}

        started = time.perf_counter()
        url = link.url
        visited = {url}
        chain: list[str] = []
        while True:
            hops_left = s.max_redirects - len(chain)

            async def attempt(url: str = url, hops_left: int = hops_left) -> HttpResult:
                return await fetch_url(
                    client,
                    url,
                    slot=self.politeness.slot,
                    headers=headers,
                    max_bytes=s.max_page_bytes,
                    max_redirects=hops_left,
                    timeout_s=s.fetch_timeout_s,
                    robots=robots,
                )

            result = await with_retries(
                attempt,
                attempts=s.fetch_attempts,
                backoff_base_s=s.fetch_backoff_base_s,
                backoff_max_s=s.fetch_backoff_max_s,
                max_retry_after_s=s.fetch_max_retry_after_s,
                on_retry_after=lambda sec: self._note_retry_after(host, sec, "page Retry-After"),
                rng=self._rng,
            )
            chain.extend(result.redirects)
            visited.update(result.redirects)
            check_html_type(result.content_type, result.body, result.final_url)
            html, charset, source = decode_html(result.body, result.headers.get("content-type"))
            stub = find_stub_target(html)
            if stub is None:
                break
            # A redirect stub (meta refresh / location.replace, no text): one more hop, under
            # the same limit and loop check as HTTP redirects, through the same guard.
            target = self._stub_hop(result.final_url, stub, visited=visited, chain=chain)
            chain.append(result.final_url)
            visited.add(target)
            url = target
        if len(html) > MAX_HTML_CHARS:
            raise PermanentError(
                f"{len(html)} characters exceed {MAX_HTML_CHARS}", kind="too_large"
            )
        return Page(
            url=link.url,
            final_url=result.final_url,
            host=host,
            status_code=result.status_code,
            content_type=result.content_type,
            charset=charset,
            charset_source=source,
            html=html,
            etag=result.headers.get("etag"),
            last_modified=result.headers.get("last-modified"),
            redirects=chain,
            feed_id=link.feed_id,
            feed_url=link.feed_url,
            entry=link.entry,
            discovered_at=link.discovered_at,
            fetched_at=datetime.now(UTC),
            elapsed_ms=(time.perf_counter() - started) * 1000.0,
        )

    async def follow_stubs(self, result: HttpResult) -> HttpResult:
        """*result*, or where its redirect stub leads: a feed URL or home page that answers a
        meta refresh / one-line ``location.replace`` with no text is followed like a redirect
        (same limit, loop check and guard; the next hops are never conditional)."""
        chain = list(result.redirects)
        visited = {result.url, *chain}
        while result.status_code == 200 and len(result.body) <= MAX_STUB_BYTES:
            lowered = result.body.lower()
            if b"refresh" not in lowered and b"location" not in lowered:
                break  # not even a candidate (feeds and sitemaps stop here)
            html, _charset, _source = decode_html(result.body, result.headers.get("content-type"))
            stub = find_stub_target(html)
            if stub is None:
                break
            target = self._stub_hop(result.final_url, stub, visited=visited, chain=chain)
            chain.append(result.final_url)
            visited.add(target)
            nxt = await self.get(target, headers={"Accept": poll.FEED_ACCEPT})
            chain.extend(nxt.redirects)
            result = HttpResult(
                url=result.url,
                final_url=nxt.final_url,
                status_code=nxt.status_code,
                headers=nxt.headers,
                body=nxt.body,
                redirects=chain,
                elapsed_ms=result.elapsed_ms + nxt.elapsed_ms,
                moved_permanently=False,
            )
        return result

    def _stub_hop(self, page_url: str, stub: str, *, visited: set[str], chain: list[str]) -> str:
        try:
            target = str(httpx.URL(page_url).join(stub).copy_with(fragment=None))
        except httpx.InvalidURL as exc:
            raise PermanentError(
                f"bad refresh target on {page_url}: {exc}", kind="bad_url"
            ) from exc
        if target in visited or target == page_url:
            raise PermanentError(
                f"redirect loop: {' -> '.join([*chain, page_url, target])}", kind="redirect_loop"
            )
        if len(chain) >= self._settings.max_redirects:
            raise PermanentError(
                f"more than {self._settings.max_redirects} redirects (refresh stub at {page_url})",
                kind="too_many_redirects",
            )
        logger.debug("following redirect stub from=%s to=%s", page_url, target)
        return target

    # --- feeds -----------------------------------------------------------------------------

    async def poll_due_feeds(
        self,
        *,
        send_links: Callable[[list[Link]], Awaitable[None]],
        now: datetime | None = None,
    ) -> PollReport:
        """Poll every feed due at ``now`` (default: the current time), in claimed batches.

        New, deduplicated links go to ``send_links`` before the batch's status is committed.
        One feed's failure is recorded in its row and never raised; database or
        ``send_links`` failures do raise (the batch rolls back, its leases expire and the
        feeds are polled again).
        """
        s = self._settings
        report = PollReport()
        started = time.perf_counter()
        at = now or datetime.now(UTC)
        for host, until in (await poll.load_host_blocks(self._session_factory, now=at)).items():
            self.politeness.block(host, (until - at).total_seconds())
        while True:
            at = now or datetime.now(UTC)
            feeds = await poll.claim_due_feeds(
                self._session_factory,
                now=at,
                limit=s.poll_batch_size,
                lease_s=s.poll_lease_s,
                only_ids=s.poll_only_feed_ids,
            )
            if not feeds:
                break
            results = await poll.gather_bounded(
                [functools.partial(self._poll_one, f, at) for f in feeds],
                limit=s.poll_concurrency,
            )
            blocks, self._host_blocks = self._host_blocks, {}
            try:
                await poll.record_poll(
                    self._session_factory,
                    results,
                    send_links=send_links,
                    settings=s,
                    now=at,
                    host_blocks=blocks,
                    rng=self._rng,
                )
            except BaseException:
                self._host_blocks.update(blocks)
                raise
            report.add(results)
            for r in results:
                level = logging.WARNING if r.outcome == "error" else logging.DEBUG
                logger.log(
                    level,
                    "feed %s feed_id=%s url=%s status=%s new=%s error=%s",
                    r.outcome,
                    r.feed.id,
                    r.feed.url,
                    r.status,
                    r.new_links,
                    r.error.kind if r.error else "-",
                )
            if len(feeds) < s.poll_batch_size:
                break
        report.elapsed_s = time.perf_counter() - started
        return report

    async def _poll_one(self, feed: poll.FeedState, now: datetime) -> poll.FeedResult:
        host = host_of(feed.url)
        blocked = self.politeness.blocked_for(host)
        if blocked > HOST_BLOCK_SKIP_S:
            return poll.FeedResult(feed, "host_blocked", retry_after_s=blocked)

        async def get(url: str, headers: dict[str, str]) -> HttpResult:
            return await self.follow_stubs(await self.get(url, headers=headers))

        result = await poll.fetch_feed(get, feed, now=now, executor=self._parse_executor)
        if result.error is not None and result.retry_after_s:
            self._note_retry_after(host, result.retry_after_s, f"feed {result.error.kind}")
        return result


@asynccontextmanager
async def running_fetcher(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Fetcher]:
    """A started :class:`Fetcher` on *sessions*, stopped on exit."""
    fetcher = Fetcher(settings, session_factory=sessions)
    await fetcher.start()
    try:
        yield fetcher
    finally:
        await fetcher.stop()


@asynccontextmanager
async def open_fetcher(settings: Settings) -> AsyncIterator[Fetcher]:
    """A started :class:`Fetcher` on its own database engine, stopped and disposed on exit."""
    from shared.db.session import open_sessions
    from shared.runtime import resolve_database_url

    async with (
        open_sessions(resolve_database_url(settings)) as sessions,
        running_fetcher(settings, sessions) as fetcher,
    ):
        yield fetcher


#: After a failed poll cycle (DB or broker away), wait this long before the next one.
POLL_ERROR_BACKOFF_S = 5.0
POLL_OUTCOMES = ("ok", "failed", "not_modified", "unchanged", "host_blocked")


async def poll_forever(
    fetcher: Fetcher,
    send_links: Callable[[list[Link]], Awaitable[None]],
    *,
    tick_s: float,
    should_stop: Callable[[], bool],
) -> None:
    """Poll due feeds every *tick_s* seconds until *should_stop()*; never raises (a failed
    cycle is logged and retried: the claimed feeds' leases expire and are polled again)."""
    from aiokafka.errors import KafkaError

    from shared.db.errors import is_transient_db_error
    from shared.metrics import FEED_POLLS

    while not should_stop():
        try:
            report = await fetcher.poll_due_feeds(send_links=send_links)
        except Exception as exc:
            if is_transient_db_error(exc) or isinstance(exc, KafkaError):
                # an outage (database or broker restarting): one line, no traceback
                logger.warning(
                    "poll cycle failed (%s: %s); retrying in %ss",
                    type(exc).__name__,
                    str(exc).splitlines()[0] if str(exc) else "",
                    POLL_ERROR_BACKOFF_S,
                )
            else:
                logger.exception("poll cycle failed; retrying in %ss", POLL_ERROR_BACKOFF_S)
            FEED_POLLS.labels("cycle_error").inc()
            await asyncio.sleep(POLL_ERROR_BACKOFF_S)
            continue
        for outcome in POLL_OUTCOMES:
            FEED_POLLS.labels(outcome).inc(getattr(report, outcome))
        await asyncio.sleep(tick_s)
