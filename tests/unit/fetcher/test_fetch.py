"""Page fetching against a real loopback server: statuses, retries, caps, types, charsets."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import time
from datetime import UTC, datetime

import brotli
import pytest
from aiohttp import web

from shared.errors import PermanentError, TransientError
from shared.messages import FeedEntry, Link, Page
from tests.unit.fetcher.conftest import LoopbackServer, link

ARTICLE = "<html><head><title>t</title></head><body><p>Ankara said on Sunday</p></body></html>"


async def test_ok_page_with_header_charset(server: LoopbackServer, make_fetcher) -> None:
    server.static("/a", ARTICLE, content_type="text/html; charset=utf-8")
    fetcher = await make_fetcher()
    page = await fetcher.fetch(link(server.url("/a")))
    assert page.status_code == 200
    assert "Ankara said" in page.html
    assert (page.charset, page.charset_source) == ("utf-8", "header")
    assert page.final_url == server.url("/a")
    ua = server.hits_for("/a")[0].headers["User-Agent"]
    assert ua.startswith("newsflow/")


async def test_meta_charset_used_when_header_has_none(server: LoopbackServer, make_fetcher) -> None:
    body = '<html><head><meta charset="windows-1254"></head><body>Şırnak’ta operasyon</body></html>'
    server.static("/tr", body.encode("cp1254"), content_type="text/html")
    page = await (await make_fetcher()).fetch(link(server.url("/tr")))
    assert page.charset_source == "meta"
    assert "Şırnak" in page.html


async def test_charset_sniffed_without_header_or_meta(server: LoopbackServer, make_fetcher) -> None:
    text = "Güvenlik kaynakları, Irak'ın kuzeyinde düzenlenen operasyonda çok sayıda hedefin "
    body = f"<html><body><p>{text * 20}</p></body></html>".encode("cp1254")
    server.static("/s", body, content_type="text/html")
    page = await (await make_fetcher()).fetch(link(server.url("/s")))
    assert page.charset_source == "sniffed"
    assert "kaynakları" in page.html


async def test_gzip_and_brotli_bodies_are_decoded(server: LoopbackServer, make_fetcher) -> None:
    server.static("/gz", gzip.compress(ARTICLE.encode()), headers={"Content-Encoding": "gzip"})
    server.static("/br", brotli.compress(ARTICLE.encode()), headers={"Content-Encoding": "br"})
    fetcher = await make_fetcher()
    assert "Ankara" in (await fetcher.fetch(link(server.url("/gz")))).html
    assert "Ankara" in (await fetcher.fetch(link(server.url("/br")))).html


async def test_429_with_retry_after_is_waited_out(server: LoopbackServer, make_fetcher) -> None:
    calls = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            return web.Response(status=429, headers={"Retry-After": "1"})
        return web.Response(text=ARTICLE, content_type="text/html")

    server.route("/busy", handler)
    page = await (await make_fetcher()).fetch(link(server.url("/busy")))
    hits = server.hits_for("/busy")
    assert page.status_code == 200 and len(hits) == 2
    assert hits[1].start - hits[0].start >= 0.95  # server-side: the pause was honoured


async def test_long_retry_after_blocks_only_that_host(server: LoopbackServer, make_fetcher) -> None:
    server.route("/x", lambda r: _resp(429, {"Retry-After": "3600"}))
    server.static("/other", ARTICLE)
    fetcher = await make_fetcher()
    with pytest.raises(TransientError) as err:
        await fetcher.fetch(link(server.url("/x")))
    assert err.value.retry_after == 3600
    # Same host: refused at once without a request. Another host name (localhost resolves
    # to the same server): unaffected.
    with pytest.raises(TransientError) as again:
        await fetcher.fetch(link(server.url("/other")))
    assert again.value.kind == "host_blocked"
    assert len(server.hits_for("/other")) == 0
    other = server.url("/other").replace("127.0.0.1", "localhost")
    assert (await fetcher.fetch(link(other))).status_code == 200


async def _resp(status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, headers=headers or {})


async def test_5xx_streak_backs_off_then_recovers(server: LoopbackServer, make_fetcher) -> None:
    calls = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        if calls <= 3:
            return web.Response(status=503)
        return web.Response(text=ARTICLE, content_type="text/html")

    server.route("/flaky", handler)
    fetcher = await make_fetcher(
        fetch_attempts=4, fetch_backoff_base_s=0.1, fetch_backoff_max_s=1.0
    )
    page = await fetcher.fetch(link(server.url("/flaky")))
    assert page.status_code == 200
    hits = server.hits_for("/flaky")
    assert len(hits) == 4
    gaps = [b.start - a.start for a, b in itertools.pairwise(hits)]
    # equal-jitter backoff: at least half of 0.1, 0.2, 0.4 s, measured at the server
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2, gaps


async def test_5xx_forever_raises_transient_after_bounded_attempts(
    server: LoopbackServer, make_fetcher
) -> None:
    server.route("/down", lambda r: _resp(502))
    fetcher = await make_fetcher(fetch_attempts=3)
    with pytest.raises(TransientError) as err:
        await fetcher.fetch(link(server.url("/down")))
    assert err.value.kind == "http_502"
    assert len(server.hits_for("/down")) == 3


async def test_404_is_permanent(server: LoopbackServer, make_fetcher) -> None:
    with pytest.raises(PermanentError) as err:
        await (await make_fetcher()).fetch(link(server.url("/missing")))
    assert err.value.kind == "http_404"
    assert len(server.hits_for("/missing")) == 1  # not retried


async def test_redirect_loop_is_detected(server: LoopbackServer, make_fetcher) -> None:
    server.route("/a", lambda r: _resp(302, {"Location": "/b"}))
    server.route("/b", lambda r: _resp(301, {"Location": server.url("/a")}))
    with pytest.raises(PermanentError) as err:
        await (await make_fetcher()).fetch(link(server.url("/a")))
    assert err.value.kind == "redirect_loop"
    assert len(server.hits) == 2


async def test_redirects_are_followed_and_bounded(server: LoopbackServer, make_fetcher) -> None:
    for i in range(6):
        server.static(f"/r{i}", b"", status=302, headers={"Location": f"/r{i + 1}"})
    server.static("/r6", ARTICLE)
    fetcher = await make_fetcher(max_redirects=6)
    page = await fetcher.fetch(link(server.url("/r0")))
    assert page.final_url == server.url("/r6") and len(page.redirects) == 6
    strict = await make_fetcher(max_redirects=3)
    with pytest.raises(PermanentError) as err:
        await strict.fetch(link(server.url("/r0")))
    assert err.value.kind == "too_many_redirects"


async def test_gzip_bomb_fails_fast(server: LoopbackServer, make_fetcher) -> None:
    bomb = gzip.compress(b"\0" * (200 * 1024 * 1024), compresslevel=9)  # ~200 KB on the wire
    server.static("/bomb", bomb, headers={"Content-Encoding": "gzip"})
    fetcher = await make_fetcher(max_page_bytes=1024 * 1024)
    started = time.perf_counter()
    with pytest.raises(PermanentError) as err:
        await fetcher.fetch(link(server.url("/bomb")))
    assert err.value.kind == "too_large"
    assert time.perf_counter() - started < 2.0


async def test_oversized_streamed_page_is_cut(server: LoopbackServer, make_fetcher) -> None:
    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/html"})
        resp.enable_chunked_encoding()  # no Content-Length: only the streaming cap can stop it
        await resp.prepare(request)
        chunk = b"<p>" + b"x" * 65536 + b"</p>"
        for _ in range(200):  # 13 MB if nobody stops reading
            await resp.write(chunk)
        return resp

    server.route("/big", endless)
    fetcher = await make_fetcher(max_page_bytes=512 * 1024)
    with pytest.raises(PermanentError) as err:
        await fetcher.fetch(link(server.url("/big")))
    assert err.value.kind == "too_large"


async def test_content_length_over_cap_is_refused_before_reading(
    server: LoopbackServer, make_fetcher
) -> None:
    server.static("/cl", b"x" * (600 * 1024))
    fetcher = await make_fetcher(max_page_bytes=512 * 1024)
    with pytest.raises(PermanentError) as err:
        await fetcher.fetch(link(server.url("/cl")))
    assert err.value.kind == "too_large" and "Content-Length" in err.value.detail


async def test_slow_server_hits_the_timeout(server: LoopbackServer, make_fetcher) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/html"})
        await resp.prepare(request)
        for _ in range(50):  # drips a byte every 0.1 s: no single read ever times out
            await resp.write(b"<")
            await asyncio.sleep(0.1)
        return resp

    server.route("/slow", slow)
    fetcher = await make_fetcher(fetch_timeout_s=0.5, fetch_attempts=2)
    started = time.perf_counter()
    with pytest.raises(TransientError) as err:
        await fetcher.fetch(link(server.url("/slow")))
    assert err.value.kind == "timeout"
    assert time.perf_counter() - started < 2.5
    assert len(server.hits_for("/slow")) == 2


async def test_wrong_content_type(server: LoopbackServer, make_fetcher) -> None:
    server.static("/doc.pdf", b"%PDF-1.7 ...", content_type="application/pdf")
    with pytest.raises(PermanentError) as err:
        await (await make_fetcher()).fetch(link(server.url("/doc.pdf")))
    assert err.value.kind == "wrong_type"


async def test_robots_disallow(server: LoopbackServer, make_fetcher) -> None:
    server.static("/robots.txt", "User-agent: *\nDisallow: /private/\n", content_type="text/plain")
    server.static("/private/x", ARTICLE)
    server.static("/public/y", ARTICLE)
    fetcher = await make_fetcher(respect_robots=True)
    with pytest.raises(PermanentError) as err:
        await fetcher.fetch(link(server.url("/private/x")))
    assert err.value.kind == "robots_disallowed"
    assert server.hits_for("/private/x") == []
    assert (await fetcher.fetch(link(server.url("/public/y")))).status_code == 200
    assert len(server.hits_for("/robots.txt")) == 1  # cached per host


async def test_missing_robots_allows_everything(server: LoopbackServer, make_fetcher) -> None:
    server.static("/p", ARTICLE)
    fetcher = await make_fetcher(respect_robots=True)
    assert (await fetcher.fetch(link(server.url("/p")))).status_code == 200


async def test_robots_single_flight_survives_a_cancelled_caller(
    server: LoopbackServer, make_fetcher
) -> None:
    async def slow_robots(request: web.Request) -> web.Response:
        await asyncio.sleep(0.3)
        return web.Response(text="User-agent: *\nDisallow: /no\n", content_type="text/plain")

    server.route("/robots.txt", slow_robots)
    server.static("/yes", ARTICLE)
    fetcher = await make_fetcher(respect_robots=True)
    tasks = [asyncio.create_task(fetcher.fetch(link(server.url(f"/yes?i={i}")))) for i in range(5)]
    await asyncio.sleep(0.05)
    tasks[0].cancel()
    results = await asyncio.gather(*tasks[1:])
    assert all(page.status_code == 200 for page in results)
    assert len(server.hits_for("/robots.txt")) == 1


async def test_brotli_bomb_and_deflate_variants(server: LoopbackServer, make_fetcher) -> None:
    import zlib

    server.static(
        "/br-bomb",
        brotli.compress(b"\0" * (100 * 1024 * 1024), quality=5),
        headers={"Content-Encoding": "br"},
    )
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    server.static(
        "/raw-deflate",
        raw.compress(ARTICLE.encode()) + raw.flush(),
        headers={"Content-Encoding": "deflate"},
    )
    server.static(
        "/zlib-deflate", zlib.compress(ARTICLE.encode()), headers={"Content-Encoding": "deflate"}
    )
    fetcher = await make_fetcher(max_page_bytes=1024 * 1024)
    with pytest.raises(PermanentError) as err:
        await fetcher.fetch(link(server.url("/br-bomb")))
    assert err.value.kind == "too_large"
    for path in ("/raw-deflate", "/zlib-deflate"):
        assert "Ankara" in (await fetcher.fetch(link(server.url(path)))).html


async def test_redirect_to_another_scheme_is_refused(server: LoopbackServer, make_fetcher) -> None:
    server.route("/go", lambda r: _resp(302, {"Location": "file:///etc/passwd"}))
    with pytest.raises(PermanentError) as err:
        await (await make_fetcher()).fetch(link(server.url("/go")))
    assert err.value.kind == "ssrf_blocked"


async def test_page_carries_link_context_and_round_trips(
    server: LoopbackServer, make_fetcher
) -> None:
    server.route("/short", lambda r: _resp(301, {"Location": "/story"}))
    server.static(
        "/story", ARTICLE, content_type="text/html; charset=utf-8", headers={"ETag": '"p1"'}
    )
    entry = FeedEntry(title="Strike near Sinjar", summary="s", guid="g-1")
    src = Link(
        url=server.url("/short"),
        host="127.0.0.1",
        feed_id=7,
        feed_url="https://feeds.example/rss",
        entry=entry,
        discovered_at=datetime(2026, 11, 22, 7, tzinfo=UTC),
    )
    page = await (await make_fetcher()).fetch(src)
    assert (page.url, page.final_url, page.redirects) == (src.url, server.url("/story"), [src.url])
    assert (page.feed_id, page.feed_url, page.entry, page.etag) == (7, src.feed_url, entry, '"p1"')
    assert page.discovered_at == src.discovered_at and page.fetched_at >= src.discovered_at
    assert Page.from_bytes(page.to_bytes()) == page


def test_windows_1254_page_declared_utf8_is_decoded_as_1254() -> None:
    from services.fetcher.charset import decode_html

    text = (
        "<html><head><meta charset='utf-8'></head><body><p>Türkiye'nin güneydoğusunda, Şırnak "
        "ilinde düzenlenen operasyonda PKK'lı teröristler etkisiz hale getirildi. Milli Savunma "
        "Bakanlığı açıklama yaptı.</p></body></html>"
    )
    decoded, charset, source = decode_html(text.encode("cp1254"), "text/html; charset=utf-8")
    assert (charset, source) == ("cp1254", "sniffed")
    assert "Şırnak ilinde" in decoded and "\ufffd" not in decoded
    # a page that really is UTF-8 keeps its declared charset
    assert decode_html(text.encode(), "text/html; charset=utf-8")[1:] == ("utf-8", "header")
