"""A small sample news site served on loopback, for ``make demo`` and the end-to-end tests.

The articles (``demo_site/articles.json``) were written for this project. Each page wraps its
article in what real pages carry: navigation, a cookie banner, share bars, a captioned figure,
an ad block, a newsletter box, related links, a footer, JSON-LD and OpenGraph; and, as many
pages do, repeats the lead paragraph and ends with an "Advertisement" line.
"""

from __future__ import annotations

import html
import json
import threading
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from functools import cached_property
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SITE_DIR = Path(__file__).resolve().parent / "demo_site"
SITE_NAME = "Demo Wire"


def load_articles() -> list[dict[str, Any]]:
    return json.loads((SITE_DIR / "articles.json").read_text(encoding="utf-8"))


def render_article(article: dict[str, Any], base: str) -> str:
    e = html.escape
    url = f"{base}/{article['slug']}"
    paragraphs = article["paragraphs"]
    body = [f"<p>{e(paragraphs[0])}</p>"]  # the standfirst, repeated below as many sites do
    body += [f"<p>{e(p)}</p>" for p in paragraphs]
    ld = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article["title"],
        "datePublished": article["published"],
        "author": {"@type": "Person", "name": article["author"]},
        "publisher": {"@type": "Organization", "name": SITE_NAME},
        "mainEntityOfPage": url,
        "image": f"{base}/img/{article['slug'].rsplit('/', 1)[-1]}.jpg",
        "isAccessibleForFree": True,
    }
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{e(article["title"])} | {SITE_NAME}</title>
<link rel="canonical" href="{url}">
<meta property="og:title" content="{e(article["title"])}">
<meta property="og:site_name" content="{SITE_NAME}">
<meta property="og:type" content="article">
<meta property="og:image" content="{ld["image"]}">
<meta name="author" content="{e(article["author"])}">
<script type="application/ld+json">{json.dumps(ld)}</script>
</head><body>
<div class="cookie-banner">We use cookies to improve your experience. <button>Accept all</button></div>
<header><nav><a href="/">Home</a> <a href="/world">World</a> <a href="/middle-east">Middle East</a>
<a href="/security">Security</a> <a href="/opinion">Opinion</a></nav></header>
<main><article>
<h1>{e(article["title"])}</h1>
<div class="byline">{e(article["author"])} · <time datetime="{article["published"]}">{article["published"][:10]}</time></div>
<div class="share-bar">Share on Facebook Share on X Share on WhatsApp Copy link</div>
<figure><img src="{ld["image"]}" alt=""><figcaption>{e(article["caption"])}</figcaption></figure>
<div class="article-body">
{chr(10).join(body)}
<div class="ad-slot">Advertisement</div>
</div>
<aside class="newsletter">Sign up for our Middle East briefing newsletter. <input type="email"> Subscribe</aside>
<section class="related"><h2>Related stories</h2><ul>
<li><a href="/2026/10/01/older-story">Iraq and Türkiye discuss water and security</a></li>
<li><a href="/2026/09/12/another-story">Coalition marks anniversary of Baghouz battle</a></li></ul></section>
</article></main>
<footer>© 2026 {SITE_NAME}. All rights reserved. About us · Contact · Privacy policy</footer>
<p>Advertisement</p>
</body></html>"""


def render_feed(articles: list[dict[str, Any]], base: str) -> str:
    items = []
    for article in articles:
        published = format_datetime(
            datetime.fromisoformat(article["published"].replace("Z", "+00:00"))
        )
        items.append(
            f"<item><title>{html.escape(article['title'])}</title>"
            # tracking parameters as real feeds add them; the fetcher strips them
            f"<link>{base}/{article['slug']}?utm_source=rss&amp;utm_medium=feed</link>"
            f"<guid>{base}/{article['slug']}</guid><pubDate>{published}</pubDate>"
            f"<description>{html.escape(article['paragraphs'][0])}</description></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
        f"<title>{SITE_NAME}: Middle East</title><link>{base}/</link>"
        f"<description>Sample feed</description><ttl>15</ttl>{''.join(items)}</channel></rss>"
    )


@dataclass
class DemoSite:
    """A threaded HTTP server for the sample site; use as a context manager."""

    host: str = "127.0.0.1"
    port: int = 0

    @cached_property
    def articles(self) -> list[dict[str, Any]]:
        return load_articles()

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.server.server_address[1]}"

    @property
    def feed_url(self) -> str:
        return f"{self.base}/feed.xml"

    def __enter__(self) -> DemoSite:
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0].strip("/")
                if path == "feed.xml":
                    self._send(render_feed(site.articles, site.base), "application/rss+xml")
                    return
                if path == "robots.txt":
                    self._send("User-agent: *\nAllow: /\n", "text/plain")
                    return
                for article in site.articles:
                    if article["slug"] == path:
                        self._send(render_article(article, site.base), "text/html; charset=utf-8")
                        return
                self.send_error(404)

            def _send(self, text: str, content_type: str) -> None:
                data = text.encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self.server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
