"""One feed's poll (HTTP + parse, no database) against the loopback server."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.fetcher.fetch import HttpResult
from services.fetcher.poll import FeedResult, FeedState, fetch_feed
from services.fetcher.service import Fetcher
from tests.unit.fetcher.conftest import LoopbackServer

FIXTURES = Path(__file__).parents[2] / "fixtures" / "fetcher"
NOW = datetime(2026, 11, 22, 7, 0, tzinfo=UTC)


def _urlset(*locs: str) -> str:
    urls = "".join(f"<url><loc>{u}</loc></url>" for u in locs)
    return f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>'


async def _poll(fetcher: Fetcher, url: str, **state: Any) -> FeedResult:
    async def get(u: str, headers: dict[str, str]) -> HttpResult:
        return await fetcher.get(u, headers=headers)

    return await fetch_feed(get, FeedState(id=1, url=url, **state), now=NOW)


async def test_sitemap_index_expands_newest_children(server: LoopbackServer, make_fetcher) -> None:
    index = (
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        + "".join(
            f"<sitemap><loc>/sm-{d}.xml</loc><lastmod>2026-11-{d:02d}</lastmod></sitemap>"
            for d in range(1, 6)
        )
        + "</sitemapindex>"
    )
    server.static("/index.xml", index, content_type="application/xml")
    for d in range(1, 6):
        server.static(
            f"/sm-{d}.xml", _urlset(server.url(f"/a/{d}")), content_type="application/xml"
        )
    result = await _poll(await make_fetcher(), server.url("/index.xml"))
    assert result.outcome == "no_new" and result.parsed is not None
    assert [i.url for i in result.parsed.items] == [server.url(f"/a/{d}") for d in (5, 4, 3)]
    assert server.hits_for("/sm-1.xml") == []  # old children are not re-read every poll


async def test_feed_failures_are_returned_not_raised(server: LoopbackServer, make_fetcher) -> None:
    bomb = gzip.compress(b"<rss>" + b" " * (64 * 1024 * 1024), compresslevel=9)
    server.static(
        "/bomb.xml", bomb, content_type="application/rss+xml", headers={"Content-Encoding": "gzip"}
    )
    server.static(
        "/xxe.xml", (FIXTURES / "xxe.xml").read_bytes(), content_type="application/rss+xml"
    )
    fetcher = await make_fetcher(max_page_bytes=1024 * 1024)
    bombed = await _poll(fetcher, server.url("/bomb.xml"))
    assert (
        bombed.outcome == "error" and bombed.error is not None and bombed.error.kind == "too_large"
    )
    xxe = await _poll(fetcher, server.url("/xxe.xml"))
    assert xxe.outcome == "error" and xxe.error is not None and xxe.error.kind == "xxe"
    missing = await _poll(fetcher, server.url("/gone.xml"))
    assert (missing.outcome, missing.status) == ("error", 404)


async def test_malformed_feed_recovers_over_http(server: LoopbackServer, make_fetcher) -> None:
    server.static(
        "/broken.xml", (FIXTURES / "malformed.xml").read_bytes(), content_type="application/rss+xml"
    )
    result = await _poll(await make_fetcher(), server.url("/broken.xml"))
    assert result.outcome == "no_new" and result.parsed is not None
    assert len(result.parsed.items) >= 2 and result.parsed.recovered_error


async def test_cache_control_and_validators_are_kept(server: LoopbackServer, make_fetcher) -> None:
    server.static(
        "/rss.xml",
        (FIXTURES / "rss20.xml").read_bytes(),
        content_type="application/rss+xml",
        headers={
            "ETag": '"abc"',
            "Last-Modified": "Sun, 22 Nov 2026 06:00:00 GMT",
            "Cache-Control": "max-age=1200",
        },
    )
    result = await _poll(await make_fetcher(), server.url("/rss.xml"), etag='"old"')
    assert (result.etag, result.last_modified, result.cache_s) == (
        '"abc"',
        "Sun, 22 Nov 2026 06:00:00 GMT",
        1200,
    )
    assert server.hits_for("/rss.xml")[0].headers["If-None-Match"] == '"old"'
