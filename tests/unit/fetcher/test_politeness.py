"""Per-host politeness, checked with the server's own clock."""

from __future__ import annotations

import asyncio
import itertools
import time

from aiohttp import web

from services.fetcher.service import Fetcher, build_transport
from tests.unit.fetcher.conftest import LoopbackServer, link, make_settings

ARTICLE = "<html><body>ok</body></html>"


async def test_host_concurrency_and_interval_hold_at_the_server(
    server: LoopbackServer, make_fetcher
) -> None:
    async def slowish(request: web.Request) -> web.Response:
        # One long request keeps a slot busy while the others flow through the second one.
        await asyncio.sleep(1.0 if request.query.get("i") == "0" else 0.1)
        return web.Response(text=ARTICLE, content_type="text/html")

    server.route("/p", slowish)
    fetcher = await make_fetcher(host_concurrency=2, host_interval_s=0.2, fetch_concurrency=32)
    # Warm both connections first: a first request's connection setup delays its arrival and
    # would make the server see a shorter first gap than the client actually left.
    await asyncio.gather(*(fetcher.fetch(link(server.url(f"/p?w={i}"))) for i in range(2)))
    server.hits.clear()
    server.max_in_flight = 0
    await asyncio.gather(*(fetcher.fetch(link(server.url(f"/p?i={i}"))) for i in range(8)))
    starts = sorted(h.start for h in server.hits)
    assert len(starts) == 8
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    # Never two arrivals closer than the interval (10 ms allowed for loopback jitter).
    assert min(gaps) >= 0.19, gaps
    assert server.max_in_flight <= 2
    assert server.max_in_flight == 2  # ...and the limit is actually used, not serialised


async def test_slow_host_does_not_stall_other_hosts(server: LoopbackServer, make_fetcher) -> None:
    async def very_slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)
        return web.Response(text=ARTICLE, content_type="text/html")

    server.route("/slow", very_slow)
    server.static("/fast", ARTICLE)
    # Same server, two host names: politeness is per host name, not per IP.
    fetcher = await make_fetcher(host_concurrency=1, host_interval_s=0.0, fetch_concurrency=4)
    slow = [asyncio.create_task(fetcher.fetch(link(server.url(f"/slow?i={i}")))) for i in range(3)]
    await asyncio.sleep(0.05)
    fast_url = server.url("/fast").replace("127.0.0.1", "localhost")
    started = time.perf_counter()
    for i in range(5):
        await fetcher.fetch(link(f"{fast_url}?i={i}"))
    assert time.perf_counter() - started < 1.0  # the slow host's queue held nothing global
    await asyncio.gather(*slow)
    slow_hits = sorted(h.start for h in server.hits if h.path.startswith("/slow"))
    assert all(b - a >= 1.4 for a, b in itertools.pairwise(slow_hits))  # one at a time


async def test_robots_crawl_delay_widens_the_host_interval(
    server: LoopbackServer, make_fetcher
) -> None:
    server.static("/robots.txt", "User-agent: *\nCrawl-delay: 0.5\n", content_type="text/plain")
    server.static("/c", ARTICLE)
    fetcher = await make_fetcher(respect_robots=True, host_interval_s=0.0, host_concurrency=4)
    await asyncio.gather(*(fetcher.fetch(link(server.url(f"/c?i={i}"))) for i in range(3)))
    starts = sorted(h.start for h in server.hits if h.path.startswith("/c"))
    assert all(b - a >= 0.45 for a, b in itertools.pairwise(starts))


async def test_interval_counts_from_the_actual_send(server: LoopbackServer) -> None:
    # The first connection is slow to set up (slow DNS here; a busy event loop or a far
    # server in production). The second request must not overtake it or arrive within the
    # interval of it, although its turn was scheduled 0.2 s after the first one's.
    lookups = 0

    async def slow_first(host: str, port: int) -> list[str]:
        nonlocal lookups
        lookups += 1
        if lookups == 1:
            await asyncio.sleep(0.25)  # lands the send just after the next turn
        return ["127.0.0.1"]

    async def slow_page(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)  # keeps the first connection busy: the second needs its own
        return web.Response(text=ARTICLE, content_type="text/html")

    server.route("/s", slow_page)
    settings = make_settings(host_concurrency=2, host_interval_s=0.2)
    fetcher = Fetcher(
        settings,
        session_factory=None,  # type: ignore[arg-type]  # page fetches never use the DB
        transport=build_transport(settings, resolver=slow_first),
    )
    await fetcher.start()
    try:
        await asyncio.gather(
            *(fetcher.fetch(link(f"http://a.test:{server.port}/s?i={i}")) for i in range(2))
        )
    finally:
        await fetcher.stop()
    first, second = sorted(h.start for h in server.hits)
    assert second - first >= 0.19
