"""robots.txt, fetched once per host through the same guarded client, cached with a TTL.

RFC 9309 semantics: 4xx (incl. 404) means "no rules"; 5xx or an unreachable server means
"assume complete disallow for now", which here is a TransientError so the page is retried
later instead of being dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from protego import Protego

from services.fetcher.fetch import HttpResult
from services.fetcher.urls import host_of
from shared.errors import PermanentError, TransientError

logger = logging.getLogger(__name__)

ROBOTS_TTL_S = 24 * 3600.0
#: A failed robots.txt fetch is retried after this long, not on every page of the host.
ROBOTS_ERROR_TTL_S = 300.0
#: RFC 9309 lets crawlers stop parsing after 500 KiB.
MAX_ROBOTS_BYTES = 512 * 1024
MAX_CACHED_HOSTS = 20_000

#: ``url -> HttpResult`` fetcher for robots.txt (no robots check of its own, no redirects
#: beyond the client's bound); the Fetcher passes a guarded, polite function.
RobotsFetch = Callable[[str], Awaitable[HttpResult]]


class _Entry:
    __slots__ = ("error", "expires", "parser")

    def __init__(
        self, parser: Protego | None, error: TransientError | None, expires: float
    ) -> None:
        self.parser = parser
        self.error = error
        self.expires = expires


class RobotsCache:
    """Per-host robots.txt rules; concurrent pages of one host share a single fetch."""

    def __init__(
        self,
        fetch: RobotsFetch,
        *,
        user_agent: str,
        ttl_s: float = ROBOTS_TTL_S,
        max_hosts: int = MAX_CACHED_HOSTS,
    ) -> None:
        self._fetch = fetch
        # Protego matches the product token, e.g. "newsflow" from "newsflow/0.1 (+…)".
        self._agent = user_agent.split("/", 1)[0].split()[0] if user_agent.strip() else "*"
        self._ttl = ttl_s
        self._max = max_hosts
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[_Entry]] = {}

    async def check(self, url: str) -> None:
        """Return if ``url`` may be fetched; raise PermanentError(kind="robots_disallowed")."""
        entry = await self._entry(url)
        if entry.error is not None:
            raise TransientError(entry.error.detail, kind="robots_unavailable")
        if entry.parser is not None and not entry.parser.can_fetch(url, self._agent):
            raise PermanentError(f"robots.txt disallows {url}", kind="robots_disallowed")

    async def crawl_delay(self, url: str) -> float | None:
        entry = await self._entry(url)
        if entry.parser is None:
            return None
        delay = entry.parser.crawl_delay(self._agent)
        return float(delay) if delay is not None else None

    async def _entry(self, url: str) -> _Entry:
        host = host_of(url)
        entry = self._entries.get(host)
        if entry is not None and entry.expires > time.monotonic():
            self._entries.move_to_end(host)
            return entry
        task = self._inflight.get(host)
        if task is None:
            # The load runs as its own task: a caller that is cancelled (shutdown, a timeout
            # around one fetch) must not cancel the load other pages of the host wait for.
            task = asyncio.get_running_loop().create_task(self._load_and_store(host, url))
            self._inflight[host] = task
            task.add_done_callback(self._done)
        return await asyncio.shield(task)

    def _done(self, task: asyncio.Task[_Entry]) -> None:
        for host, pending in list(self._inflight.items()):
            if pending is task:
                del self._inflight[host]
        if not task.cancelled():
            task.exception()  # retrieved here, so an unawaited failure is not logged as lost

    async def _load_and_store(self, host: str, url: str) -> _Entry:
        entry = await self._load(url)
        self._entries[host] = entry
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return entry

    async def _load(self, url: str) -> _Entry:
        parts = urlsplit(url)
        robots_url = f"{parts.scheme}://{parts.netloc}/robots.txt"
        now = time.monotonic()
        try:
            result = await self._fetch(robots_url)
        except TransientError as exc:
            logger.info("robots unavailable url=%s kind=%s", robots_url, exc.kind)
            return _Entry(None, exc, now + ROBOTS_ERROR_TTL_S)
        except PermanentError as exc:
            if exc.kind == "ssrf_blocked":
                raise
            # 4xx, too large, redirect trouble: RFC 9309 treats an unavailable file as
            # "no restrictions".
            logger.info("robots absent url=%s kind=%s", robots_url, exc.kind)
            return _Entry(None, None, now + self._ttl)
        text = result.body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace")
        return _Entry(Protego.parse(text), None, now + self._ttl)
