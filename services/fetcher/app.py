"""Fetcher service: feeds (PostgreSQL) -> news.links.v1 -> news.pages.v1 (faust wiring only).

Two loops share one :class:`~services.fetcher.service.Fetcher` (one httpx client, one
politeness limiter): a poll task that claims due feeds (several fetcher workers split them
with ``SKIP LOCKED``) and an agent that fetches links concurrently, acking in offset order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust

from shared.db.session import create_engine, session_factory
from shared.dlq import dead_letter
from shared.errors import PermanentError, TransientError
from shared.faust_app import create_app, dlq_topic, send_all, send_dead_letters
from shared.messages import ContractError, Link, Page
from shared.metrics import FEED_POLLS, MESSAGES, STAGE_SECONDS
from shared.runtime import resolve_database_url
from shared.settings import Settings
from shared.stage import InOrderAcks
from shared.topology import LINKS, PAGES

logger = logging.getLogger(__name__)

SERVICE = "fetcher"
POLL_ERROR_BACKOFF_S = 5.0
#: Links waiting for their host's turn hold no connection, so more may be in flight than
#: there are connections; with a 1 s host interval 8x tripled throughput across 200 hosts.
IN_FLIGHT_PER_CONNECTION = 8
#: A host that asks for a long pause (Retry-After, 429) parks its links this long at most per
#: wait, up to PARK_ROUNDS times, before they are dead-lettered (replayable with `dlq replay`).
MAX_PARK_S = 600.0
PARK_ROUNDS = 3
SHUTDOWN_GRACE_S = 10.0


def build(settings: Settings, *, bootstrap: str) -> faust.App:
    from services.fetcher.service import Fetcher

    app = create_app(SERVICE, settings, bootstrap=bootstrap)
    links_name = settings.topic_prefix + LINKS.name
    links = app.topic(links_name, key_type=bytes, value_type=bytes)
    pages = app.topic(settings.topic_prefix + PAGES.name, key_type=bytes, value_type=bytes)
    dlq = dlq_topic(app, settings)

    class Shared:
        """The fetcher and its engine, opened by the first user and closed by the last."""

        users = 0
        lock = asyncio.Lock()
        fetcher: Fetcher
        engine = None

        @classmethod
        async def acquire(cls) -> Fetcher:
            async with cls.lock:
                if cls.users == 0:
                    cls.engine = create_engine(resolve_database_url(settings))
                    cls.fetcher = Fetcher(settings, session_factory=session_factory(cls.engine))
                    await cls.fetcher.start()
                cls.users += 1
                return cls.fetcher

        @classmethod
        async def release(cls) -> None:
            async with cls.lock:
                cls.users -= 1
                if cls.users == 0:
                    await cls.fetcher.stop()
                    if cls.engine is not None:
                        await cls.engine.dispose()

    async def send_links(batch: list[Link]) -> None:
        await send_all(app, links, ((link.host, link.to_bytes()) for link in batch))

    @app.task
    async def poll_feeds() -> None:
        fetcher = await Shared.acquire()
        try:
            while not app.should_stop:
                try:
                    report = await fetcher.poll_due_feeds(send_links=send_links)
                except Exception:
                    # DB or broker away: the claimed feeds' leases expire and are polled again.
                    logger.exception("poll cycle failed; retrying in %ss", POLL_ERROR_BACKOFF_S)
                    FEED_POLLS.labels("cycle_error").inc()
                    await asyncio.sleep(POLL_ERROR_BACKOFF_S)
                    continue
                for outcome in ("ok", "failed", "not_modified", "unchanged", "host_blocked"):
                    FEED_POLLS.labels(outcome).inc(getattr(report, outcome))
                await asyncio.sleep(settings.poll_tick_s)
        finally:
            await Shared.release()

    async def fetch_patiently(fetcher: Fetcher, link: Link) -> Page:
        """Fetch, waiting out a host's requested pause instead of dead-lettering at once.

        Only this link's task waits; other hosts' links keep flowing."""
        for _round in range(PARK_ROUNDS):
            try:
                return await fetcher.fetch(link)
            except TransientError as exc:
                if not exc.retry_after or app.should_stop:
                    raise
                wait = min(exc.retry_after, MAX_PARK_S)
                logger.info("host %s asked for %.0fs; parking %s", link.host, wait, link.url)
                MESSAGES.labels("fetch", "retry", exc.kind).inc()
                await asyncio.sleep(wait)
        return await fetcher.fetch(link)

    async def fetch_one(fetcher: Fetcher, raw: bytes) -> None:
        started = time.perf_counter()
        link: Link | None = None
        try:
            link = Link.from_bytes(raw)
            page = await fetch_patiently(fetcher, link)
        except Exception as exc:
            if not isinstance(exc, ContractError | PermanentError | TransientError):
                # a bug costs this link, not the worker; the DLQ keeps it for replay
                logger.exception("unexpected fetch error for %s", link.url if link else "?")
            letter = dead_letter(
                "fetch",
                exc,
                payload=raw,
                source_topic=links_name,
                key=link.host if link else None,
                url=link.url if link else None,
                attempt=link.attempt if link else 1,
                service=SERVICE,
            )
            await send_dead_letters(app, dlq, [letter])
            MESSAGES.labels("fetch", "dlq", letter.error_kind).inc()
            logger.debug("dlq stage=fetch kind=%s url=%s", letter.error_kind, letter.url)
            return
        finally:
            STAGE_SECONDS.labels("fetch").observe(time.perf_counter() - started)
        await send_all(app, pages, [(page.host, page.to_bytes())])
        MESSAGES.labels("fetch", "ok", "-").inc()
        logger.debug("ok stage=fetch url=%s status=%s", link.url, page.status_code)

    @app.agent(links)
    async def fetch_links(stream: Any) -> None:  # faust.Stream; StreamT lacks take_events/noack
        fetcher = await Shared.acquire()
        noack = stream.noack()
        acks = InOrderAcks(noack)
        slots = asyncio.Semaphore(settings.fetch_concurrency * IN_FLIGHT_PER_CONNECTION)
        running: set[asyncio.Task[None]] = set()

        def finished(task: asyncio.Task[None]) -> None:
            running.discard(task)
            if not task.cancelled() and task.exception() is not None:
                logger.error(
                    "fetch failed before its outcome was recorded; the link will be "
                    "redelivered: %r",
                    task.exception(),
                )

        async def handle(event: Any, token: list[Any]) -> None:
            raw = event.value if isinstance(event.value, bytes) else str(event.value).encode()
            try:
                await fetch_one(fetcher, raw)
            except BaseException:
                # cancelled at shutdown, or the broker refused the output: not acked, so the
                # link is redelivered (at-least-once); later offsets wait behind it.
                slots.release()
                raise
            slots.release()
            await acks.done(token)

        try:
            async for event in noack.events():
                await slots.acquire()  # backpressure: a bounded number of links in flight
                task = asyncio.create_task(handle(event, acks.track(event)))
                running.add(task)
                task.add_done_callback(finished)
        finally:
            if running:
                # finish what is quick; a link parked on a host's Retry-After is redelivered
                _done, parked = await asyncio.wait(running, timeout=SHUTDOWN_GRACE_S)
                for task in parked:
                    task.cancel()
                await asyncio.gather(*parked, return_exceptions=True)
            await Shared.release()

    return app
