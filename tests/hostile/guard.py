"""SSRF-guard cases, run in-process through the real ``Fetcher.fetch`` with the guard ON.

Why not in the pipeline run: that run must allow private networks, or the fetcher could not
reach the loopback corpus at all. Here the fetcher gets the production guard
(``guarded_transport(allow_private=False)``) with one change where the test needs it: in the
redirect case, one loopback address stands in for "a public site" (the predicate treats just
that address as public), so the first hop connects and the *redirect* hop is what the guard
must stop. The name-resolution cases use the real predicate and a resolver that answers a
public-looking name with a loopback address (what a hostile DNS record or rebinding does).
Each failure is turned into the dead letter the fetcher agent would send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from services.fetcher.service import Fetcher
from shared.dlq import build_dead_letter
from shared.errors import NewsflowError
from shared.guard import guarded_transport, is_blocked_ip, system_resolve
from shared.messages import Link
from shared.settings import Settings
from tests.hostile.site import Case, HostileSite, Response, article_html


def _public_redirects(case: Case, path: str) -> Response | None:
    if path == "/to-loopback":
        return Response(status=302, headers={"Location": "http://127.0.0.1:9/admin"})
    if path == "/to-metadata":
        return Response(status=301, headers={"Location": "http://169.254.169.254/latest/"})
    if path == "/to-ipv6-loopback":
        return Response(status=302, headers={"Location": "http://[::1]:9/"})
    if path == "/fine":
        return Response(body=article_html("A public page", ["Fine."]).encode())
    return None


GUARD_SITE = (Case("guard_public", "stands in for a public site", "page", _public_redirects),)


@dataclass
class GuardResult:
    name: str
    attack: str
    outcome: str
    blocked: bool


async def _attempt(fetcher: Fetcher, url: str) -> tuple[bool, str]:
    link = Link(url=url, host="x", discovered_at=datetime.now(UTC))
    try:
        page = await fetcher.fetch(link)
    except NewsflowError as exc:
        letter = build_dead_letter(
            "fetch", exc, payload=link.to_bytes(), source_topic="news.links.v1", url=url
        )
        blocked = letter.error_kind == "ssrf_blocked"
        return blocked, f"DLQ fetch/{letter.error_kind}: {letter.detail[:90]}"
    return False, f"FETCHED status {page.status_code} ({len(page.html)} chars)"


def _fetcher(
    settings: Settings,
    *,
    blocked: Callable[[str], bool],
    resolver: Any = None,
) -> Fetcher:
    transport = guarded_transport(
        allow_private=False,
        limits=httpx.Limits(max_connections=4),
        resolver=resolver,
        blocked=blocked,
    )
    return Fetcher(settings, session_factory=None, transport=transport)  # type: ignore[arg-type]


async def _run() -> list[GuardResult]:
    settings = Settings(
        allow_private_networks=False,
        fetch_attempts=1,
        fetch_timeout_s=5,
        respect_robots=False,
        host_interval_s=0,
    )
    results: list[GuardResult] = []
    with HostileSite(GUARD_SITE) as site:
        public = site.cases[0]

        def public_or_blocked(ip: str) -> bool:
            return ip != public.ip and is_blocked_ip(ip)

        async def hostile_dns(host: str, port: int) -> list[str]:
            if host.endswith(".test"):
                return [public.ip if host == "news.example.test" else "127.0.0.1"]
            return await system_resolve(host, port)

        cases: list[tuple[str, str, str, Callable[[str], bool], Any]] = [
            (
                "guard_control",
                "control: the stand-in public page is fetched",
                f"{public.base}/fine",
                public_or_blocked,
                None,
            ),
            (
                "guard_redirect_loopback",
                "public page 302 -> http://127.0.0.1/admin",
                f"{public.base}/to-loopback",
                public_or_blocked,
                None,
            ),
            (
                "guard_redirect_metadata",
                "public page 301 -> 169.254.169.254",
                f"{public.base}/to-metadata",
                public_or_blocked,
                None,
            ),
            (
                "guard_redirect_ipv6",
                "public page 302 -> http://[::1]/",
                f"{public.base}/to-ipv6-loopback",
                public_or_blocked,
                None,
            ),
            (
                "guard_dns_to_loopback",
                "name that resolves to 127.0.0.1 (hostile DNS)",
                f"http://evil-rebind.test:{public.port}/",
                is_blocked_ip,
                hostile_dns,
            ),
            (
                "guard_localhost",
                "http://localhost (system resolver)",
                f"http://localhost:{public.port}/",
                is_blocked_ip,
                None,
            ),
            (
                "guard_loopback_literal",
                "a 127.x address literal, production guard",
                f"{public.base}/fine",
                is_blocked_ip,
                None,
            ),
        ]
        for name, attack, url, predicate, resolver in cases:
            fetcher = _fetcher(settings, blocked=predicate, resolver=resolver)
            await fetcher.start()
            try:
                blocked, outcome = await _attempt(fetcher, url)
            finally:
                await fetcher.stop()
            results.append(GuardResult(name, attack, outcome, blocked))
    return results


def run_guard_cases() -> list[GuardResult]:
    return asyncio.run(_run())
