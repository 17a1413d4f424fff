"""Fetcher benchmarks on loopback (no internet): ``python -m tests.bench.fetcher``.

1. ``poll``: N feeds (default 1,000) of 20 items each; one full poll cycle (200 + parse + dedup
   insert + status update), then a second cycle where every feed answers 304. Reports the
   fetcher process's CPU seconds per feed and feeds per CPU-second (= feeds/s per core).
2. ``pages``: L links (default 10,000) across H host names (default 200, all mapped to one
   loopback server through the guarded transport's resolver); ~50 KB gzip'd article pages,
   robots.txt checked per host. Reports pages/s and CPU per page.

The HTTP server runs in a separate process so its CPU is not charged to the fetcher; both
share the machine's cores. PostgreSQL: ``NEWSFLOW_DATABASE_URL`` if set (migrated), else a
throwaway embedded cluster. ``send_links`` is an in-memory sink (Kafka is not measured here).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import multiprocessing
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from services.fetcher.service import Fetcher, build_transport
from shared.messages import Link
from shared.settings import Settings

ITEMS_PER_FEED = 20
PAGE_PARAGRAPHS = 120  # ~50 KB of HTML per article page
BENCH_DOMAIN = "bench.test"


# --- the loopback server (child process) ----------------------------------------------------


def _feed_body(i: int, port: int) -> bytes:
    items = "".join(
        f"<item><title>Feed {i} story {j}</title>"
        f"<link>http://feeds.{BENCH_DOMAIN}:{port}/a/{i}/{j}?utm_source=rss</link>"
        f"<guid>{i}-{j}</guid><pubDate>Sun, 22 Nov 2026 {j % 24:02d}:00:00 GMT</pubDate>"
        f"<description>&lt;p&gt;Summary of story {j} from feed {i}.&lt;/p&gt;</description></item>"
        for j in range(ITEMS_PER_FEED)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Bench feed {i}</title><link>http://feeds.{BENCH_DOMAIN}/</link>{items}"
        "</channel></rss>"
    ).encode()


def _page_body() -> bytes:
    # Random words from a news vocabulary: compresses ~5x like real pages, not 60x like a
    # repeated paragraph, so the client really reads and inflates ~50 KB per page.
    vocab = [
        "Turkish",
        "security",
        "forces",
        "said",
        "Sunday",
        "operation",
        "northern",
        "Iraq",
        "targeted",
        "positions",
        "near",
        "border",
        "according",
        "statement",
        "ministry",
        "Kurdistan",
        "Region",
        "Erbil",
        "Baghdad",
        "Syria",
        "Qamishli",
        "drone",
        "strike",
        "officials",
        "militants",
        "PKK",
        "SDF",
        "governor",
        "talks",
        "Ankara",
        "cooperation",
        "reported",
        "killed",
        "wounded",
        "villages",
        "mountains",
        "Duhok",
        "Sinjar",
        "Kirkuk",
        "agreement",
        "forces",
        "the",
        "a",
        "of",
        "and",
        "in",
    ]
    rng = random.Random(7)
    paras = "".join(
        "<p>" + " ".join(rng.choice(vocab) for _ in range(60)) + ".</p>"
        for _ in range(PAGE_PARAGRAPHS)
    )
    html = (
        '<!doctype html><html><head><meta charset="utf-8"><title>Bench article</title></head>'
        f"<body><article><h1>Headline</h1>{paras}</article></body></html>"
    )
    return html.encode()


def _serve(port_queue: Any) -> None:  # pragma: no cover - runs in the child process
    from aiohttp import web

    page_gz = gzip.compress(_page_body(), compresslevel=6)
    feeds: dict[int, bytes] = {}
    # Server-side politeness evidence per Host header: smallest gap between arrivals and
    # most requests in flight at once.
    last_arrival: dict[str, float] = {}
    min_gap: dict[str, float] = {}
    active: Counter[str] = Counter()
    peak: Counter[str] = Counter()

    async def feed(request: web.Request) -> web.Response:
        i = int(request.match_info["i"])
        etag = f'"f{i}"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        body = feeds.get(i)
        if body is None:
            body = feeds[i] = _feed_body(i, request.url.port or 80)
        return web.Response(
            body=body, headers={"Content-Type": "application/rss+xml", "ETag": etag}
        )

    async def page(request: web.Request) -> web.Response:
        host = request.host
        now = time.monotonic()
        if host in last_arrival:
            min_gap[host] = min(min_gap.get(host, 1e9), now - last_arrival[host])
        last_arrival[host] = now
        active[host] += 1
        peak[host] = max(peak[host], active[host])
        try:
            await asyncio.sleep(0)  # let concurrent requests of the host overlap if they can
            return web.Response(
                body=page_gz,
                headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"},
            )
        finally:
            active[host] -= 1

    async def stats(request: web.Request) -> web.Response:
        body = {
            "hosts": len(last_arrival),
            "min_gap_s": round(min(min_gap.values()), 4) if min_gap else None,
            "max_in_flight_per_host": max(peak.values()) if peak else 0,
        }
        last_arrival.clear()
        min_gap.clear()
        peak.clear()
        return web.json_response(body)

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/feed/{i}.xml", feed)
        app.router.add_get("/p/{n}", page)
        app.router.add_get("/__stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


class LoopbackServer:
    def __enter__(self) -> int:
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        self.proc = ctx.Process(target=_serve, args=(queue,), daemon=True)
        self.proc.start()
        self.port: int = queue.get(timeout=30)
        return self.port

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.join(timeout=10)


async def _loopback_resolver(host: str, port: int) -> list[str]:
    # Every bench host name is the same loopback server; politeness still sees 200 hosts.
    if host.endswith(BENCH_DOMAIN) or host == "127.0.0.1":
        return ["127.0.0.1"]
    raise OSError(f"bench resolver: unknown host {host}")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _settings(**overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "allow_private_networks": True,
        "fetch_timeout_s": 30.0,
        "host_interval_s": 0.0,
        "host_concurrency": 8,
        "fetch_concurrency": 128,
        "poll_concurrency": 64,
        "poll_batch_size": 250,
    }
    base.update(overrides)
    return Settings(**base)


def _transport(settings: Settings) -> httpx.AsyncBaseTransport:
    return build_transport(settings, resolver=_loopback_resolver)


# --- 1. poll cycle ------------------------------------------------------------------------


async def bench_poll(database_url: str, port: int, *, feeds: int) -> dict[str, Any]:
    from sqlalchemy import text

    from services.fetcher.admin import add_feeds
    from shared.db.session import create_engine, session_factory

    engine = create_engine(database_url, pool_size=4)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        await session.execute(text("TRUNCATE feeds, seen_links, host_state"))
    await add_feeds(
        sessions, [f"http://feeds.{BENCH_DOMAIN}:{port}/feed/{i}.xml" for i in range(feeds)]
    )
    settings = _settings()
    fetcher = Fetcher(settings, session_factory=sessions, transport=_transport(settings))
    await fetcher.start()
    sent: list[Link] = []

    async def sink(batch: list[Link]) -> None:
        sent.extend(batch)

    out: dict[str, Any] = {"feeds": feeds}
    try:
        for label, when in (("full", datetime.now(UTC)), ("not_modified", None)):
            if when is None:
                async with sessions() as session, session.begin():
                    await session.execute(
                        text("UPDATE feeds SET next_poll_at = now() - interval '1 second'")
                    )
            cpu0, wall0 = _cpu(), time.perf_counter()
            report = await fetcher.poll_due_feeds(send_links=sink)
            cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
            out[label] = {
                "polled": report.feeds,
                "failed": report.failed,
                "errors": dict(report.errors),
                "new_links": report.new_links,
                "not_modified": report.not_modified,
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                "cpu_ms_per_feed": round(cpu / max(report.feeds, 1) * 1000, 2),
                "feeds_per_cpu_s": round(report.feeds / cpu, 1) if cpu else None,
                "feeds_per_s_wall": round(report.feeds / wall, 1),
            }
    finally:
        await fetcher.stop()
        await engine.dispose()
    return out


# --- 2. pages -------------------------------------------------------------------------------


async def bench_pages(
    port: int, *, links: int, hosts: int, in_flight: int | None = None, **overrides: Any
) -> dict[str, Any]:
    settings = _settings(**overrides)
    fetcher = Fetcher(settings, session_factory=None, transport=_transport(settings))  # type: ignore[arg-type]
    await fetcher.start()
    now = datetime.now(UTC)
    todo = [
        Link(
            url=f"http://site-{n % hosts}.{BENCH_DOMAIN}:{port}/p/{n}",
            host=f"site-{n % hosts}",
            discovered_at=now,
        )
        for n in range(links)
    ]
    random.Random(1).shuffle(todo)
    # Links taken off the topic at once. Politeness bounds real network concurrency; links
    # waiting for their host's turn only hold one of these.
    in_flight = in_flight or settings.fetch_concurrency
    slots = asyncio.Semaphore(in_flight)
    outcomes: Counter[str] = Counter()
    nbytes = 0

    async def one(link: Link) -> None:
        nonlocal nbytes
        try:
            page = await fetcher.fetch(link)
            nbytes += len(page.html)
            outcomes["ok"] += 1
        except Exception as exc:  # counted, not raised: the bench reports every failure kind
            outcomes[getattr(exc, "kind", type(exc).__name__)] += 1
        finally:
            slots.release()

    cpu0, wall0 = _cpu(), time.perf_counter()
    tasks = []
    for link in todo:
        await slots.acquire()
        tasks.append(asyncio.create_task(one(link)))
    await asyncio.gather(*tasks)
    cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
    await fetcher.stop()
    async with httpx.AsyncClient() as plain:
        server_side = (await plain.get(f"http://127.0.0.1:{port}/__stats")).json()
    return {
        "server_side": server_side,
        "links": links,
        "hosts": hosts,
        "host_interval_s": settings.host_interval_s,
        "host_concurrency": settings.host_concurrency,
        "fetch_concurrency": settings.fetch_concurrency,
        "in_flight": in_flight,
        "outcomes": dict(outcomes),
        "wall_s": round(wall, 2),
        "pages_per_s": round(outcomes["ok"] / wall, 1),
        "cpu_s": round(cpu, 2),
        "cpu_ms_per_page": round(cpu / max(links, 1) * 1000, 3),
        "mb_html": round(nbytes / 1e6, 1),
    }


# --- entry point ----------------------------------------------------------------------------


def _database_url(stack_home: Path | None) -> tuple[str, Path | None]:
    url = os.environ.get("NEWSFLOW_DATABASE_URL")
    if url:
        return Settings(database_url=url).database_url or url, None
    from shared import stack
    from shared.db.migrate import upgrade

    home = stack_home or Path(tempfile.mkdtemp(prefix="newsflow-fetcher-bench-"))
    os.chmod(home, 0o755)
    result = stack.up(home, want_kafka=False)
    assert result.state.postgres is not None and result.state.postgres.endpoint
    url = result.state.postgres.endpoint
    upgrade(url)
    return url, home


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("which", nargs="*", help="poll and/or pages (default: both)")
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--links", type=int, default=10_000)
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--host-interval", type=float, default=0.0, help="politeness interval (s)")
    parser.add_argument("--host-concurrency", type=int, default=8)
    parser.add_argument("--fetch-concurrency", type=int, default=128)
    parser.add_argument("--in-flight", type=int, default=None, help="links awaited at once")
    args = parser.parse_args(argv)
    which = args.which or ["pages", "poll"]
    if set(which) - {"pages", "poll"}:
        parser.error("choose from: poll, pages")
    results: dict[str, Any] = {"cpus": os.cpu_count()}
    home: Path | None = None
    with LoopbackServer() as port:
        if "pages" in which:
            results["pages"] = asyncio.run(
                bench_pages(
                    port,
                    links=args.links,
                    hosts=args.hosts,
                    host_interval_s=args.host_interval,
                    host_concurrency=args.host_concurrency,
                    fetch_concurrency=args.fetch_concurrency,
                    in_flight=args.in_flight,
                )
            )
            print(json.dumps({"pages": results["pages"]}), file=sys.stderr)
        if "poll" in which:
            url, home = _database_url(None)
            try:
                results["poll"] = asyncio.run(bench_poll(url, port, feeds=args.feeds))
            finally:
                if home is not None:
                    from shared import stack

                    stack.down(home)
                    shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
