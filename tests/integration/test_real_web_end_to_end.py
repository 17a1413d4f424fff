"""`newsflow run --once` on feeds that the real web gets wrong (issue 12), through all four
services into PostgreSQL: a pubDate with a colon in its offset, a JSON Feed poisoned with NUL,
a feed served with a false Content-Encoding, and an item that links to a redirect stub.
The run must finish, and every feed's status and every article must be right."""

from __future__ import annotations

import asyncio
import html
import json
import threading
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg

from services.cli.demo import load_articles
from tests.support.processes import newsflow


def article_page(article: dict[str, Any], url: str) -> str:
    # No date anywhere on the page: the stored date must be the feed's.
    paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in article["paragraphs"])
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(article['title'])}</title>"
        f'<link rel="canonical" href="{url}"></head><body><main><article>'
        f"<h1>{html.escape(article['title'])}</h1>{paragraphs}</article></main></body></html>"
    )


class Site:
    """Loopback site: three feeds, three article pages and one redirect stub."""

    def __init__(self) -> None:
        self.articles = load_articles()[:3]
        self.published = (datetime.now(UTC) - timedelta(days=2)).replace(
            hour=7, minute=0, second=0, microsecond=0
        )
        self.routes: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, slug: str) -> str:
        return f"{self.base}/articles/{slug}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body, headers = site.routes.get(self.path, (b"not found", {"status": "404"}))
                self.send_response(int(headers.get("status", "200")))
                for name, value in headers.items():
                    if name != "status":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        return Handler

    def build(self) -> None:
        alpha, bravo, charlie = self.articles
        slugs = ("alpha", "bravo", "charlie")
        for article, slug in zip(self.articles, slugs, strict=True):
            self.routes[f"/articles/{slug}"] = (
                article_page(article, self.url(slug)).encode(),
                {"Content-Type": "text/html; charset=utf-8"},
            )
        # 3. the feed links to an alert-service stub that forwards with a meta refresh
        self.routes["/alert/1"] = (
            f'<html><head><meta http-equiv="refresh" content="0;url={self.url("alpha")}">'
            "</head><body></body></html>".encode(),
            {"Content-Type": "text/html"},
        )
        # 1. pubDate with a colon in the offset: 10:00 +03:00 is 07:00 UTC
        local = self.published.astimezone(timezone(timedelta(hours=3)))
        pub = local.strftime("%a, %d %b %Y %H:%M:%S +03:00")
        tz_feed = (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>TZ wire</title>'
            f"<item><title>{html.escape(alpha['title'])}</title>"
            f"<link>{self.base}/alert/1</link><pubDate>{pub}</pubDate></item></channel></rss>"
        )
        self.routes["/feeds/tz.xml"] = (tz_feed.encode(), {"Content-Type": "application/rss+xml"})
        # 2. a JSON Feed whose title ends in an escaped NUL (PostgreSQL refuses it)
        poison = json.dumps(
            {
                "version": "https://jsonfeed.org/version/1.1",
                "title": "Alerts\u0000",
                "items": [
                    {"id": "b\u0000", "url": self.url("bravo"), "title": bravo["title"] + "\u0000"}
                ],
            }
        )
        self.routes["/feeds/poison.json"] = (
            poison.encode(),
            {"Content-Type": "application/feed+json"},
        )
        # 4. Content-Encoding: gzip over a plain body
        gz_feed = (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>Lying wire</title>'
            f"<item><title>{html.escape(charlie['title'])}</title>"
            f"<link>{self.url('charlie')}</link></item></channel></rss>"
        )
        self.routes["/feeds/gz.xml"] = (
            gz_feed.encode(),
            {"Content-Type": "application/rss+xml", "Content-Encoding": "gzip"},
        )

    def __enter__(self) -> Site:
        self.build()
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


async def _rows(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


def test_run_once_finishes_with_a_poisoned_feed_and_stores_every_article_right(
    loopback_run_env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    with Site() as site:
        feeds = tmp_path / "feeds.txt"
        feeds.write_text(
            "\n".join(f"{site.base}/feeds/{n}" for n in ("tz.xml", "poison.json", "gz.xml")) + "\n"
        )
        result = newsflow(
            "run",
            "--once",
            "--feeds",
            str(feeds),
            "--json",
            "--timeout",
            "240",
            env=loopback_run_env,
        )
    assert result.returncode == 0, result.stderr[-6000:]
    summary = json.loads(result.stdout)
    assert summary["links_discovered"] == 3
    assert summary["articles_stored"] == 3, summary
    assert summary["pending"] == 0 and summary["dead_letters"] == 0

    feeds_rows = asyncio.run(
        _rows(database_url, "SELECT url, title, last_outcome, last_error FROM feeds")
    )
    by_feed = {r["url"].rsplit("/", 1)[-1]: r for r in feeds_rows}
    assert {name: r["last_outcome"] for name, r in by_feed.items()} == {
        "tz.xml": "new",
        "poison.json": "new",
        "gz.xml": "new",
    }
    assert by_feed["poison.json"]["title"] == "Alerts"
    assert "cleaned text" in (by_feed["poison.json"]["last_error"] or "")

    articles = asyncio.run(
        _rows(
            database_url,
            "SELECT url, final_url, canonical_url, title, published_at, published_source "
            "FROM articles",
        )
    )
    by_url = {r["canonical_url"]: r for r in articles}
    assert set(by_url) == {site.url(s) for s in ("alpha", "bravo", "charlie")}
    alpha = by_url[site.url("alpha")]
    assert alpha["url"] == f"{site.base}/alert/1" and alpha["final_url"] == site.url("alpha")
    assert alpha["published_source"] == "feed"
    assert alpha["published_at"] == site.published  # 10:00 +03:00 stored as 07:00 UTC
    assert "\x00" not in (by_url[site.url("bravo")]["title"] or "")
