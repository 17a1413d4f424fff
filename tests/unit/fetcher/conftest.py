"""A real loopback HTTP server per test (aiohttp on 127.0.0.1, random port).

Tests register handlers per path; the server records every request with server-side
monotonic timestamps so politeness can be checked where it matters: at the server.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from aiohttp import web

from services.fetcher.service import Fetcher
from shared.messages import Link
from shared.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Hit:
    path: str
    start: float
    end: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class LoopbackServer:
    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.hits: list[Hit] = []
        self.port = 0
        self.in_flight = 0
        self.max_in_flight = 0

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def route(self, path: str, handler: Handler) -> None:
        self.routes[path] = handler

    def static(
        self,
        path: str,
        body: bytes | str,
        *,
        content_type: str = "text/html",
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body

        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(
                body=data,
                status=status,
                content_type=None,
                headers={"Content-Type": content_type, **(headers or {})},
            )

        self.route(path, handler)

    def hits_for(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        hit = Hit(request.path_qs, time.monotonic(), headers=dict(request.headers))
        self.hits.append(hit)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            handler = self.routes.get(request.path_qs) or self.routes.get(request.path)
            if handler is None:
                return web.Response(status=404, text="not found")
            return await handler(request)
        finally:
            self.in_flight -= 1
            hit.end = time.monotonic()


@pytest.fixture
async def server() -> AsyncIterator[LoopbackServer]:
    srv = LoopbackServer()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", srv._dispatch)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    srv.port = runner.addresses[0][1]
    try:
        yield srv
    finally:
        await runner.cleanup()


def make_settings(**overrides: object) -> Settings:
    base: dict[str, object] = {
        "allow_private_networks": True,
        "fetch_timeout_s": 2.0,
        "host_interval_s": 0.0,
        "host_concurrency": 4,
        "fetch_attempts": 3,
        "fetch_backoff_base_s": 0.05,
        "fetch_backoff_max_s": 0.2,
        "respect_robots": False,
        "database_url": None,
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


def link(url: str) -> Link:
    return Link(url=url, host=httpx.URL(url).host, discovered_at=datetime.now(UTC))


@pytest.fixture
async def make_fetcher() -> AsyncIterator[Callable[..., Awaitable[Fetcher]]]:
    started: list[Fetcher] = []

    async def factory(**overrides: object) -> Fetcher:
        # Page fetching never touches the database; a sessionmaker is only called by polls.
        fetcher = Fetcher(make_settings(**overrides), session_factory=None)  # type: ignore[arg-type]
        await fetcher.start()
        started.append(fetcher)
        return fetcher

    yield factory
    for f in started:
        await f.stop()
