"""A small sample news site served on loopback, for ``make demo`` and the end-to-end tests.

The articles (``demo_site/articles.json``) were written for this project. Each page wraps its
article in what real pages carry: navigation, a cookie banner, share bars, a captioned figure,
an ad block, a newsletter box, related links, a footer, JSON-LD and OpenGraph; and, as many
pages do, repeats the lead paragraph and ends with an "Advertisement" line.
"""

from __future__ import annotations

import html
import json
import os
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
#: The watch ``newsflow demo`` saves, so a new user sees an alert: an alias (PKK) resolved to
#: its canonical key, and a word, matched against every stored article.
DEMO_WATCH = ("demo: PKK in Baghdad talks", "entity:PKK AND Baghdad")


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


# --- the demo command ------------------------------------------------------------------------

#: The demo's home, inside the user's: its own database and broker, never the user's.
DEMO_HOME = "demo"
#: Settings the demo ignores from the environment: it always runs its own embedded stack.
DEMO_OVERRIDDEN = (
    "NEWSFLOW_DATABASE_URL",
    "NEWSFLOW_KAFKA_BOOTSTRAP",
    "NEWSFLOW_TOPIC_PREFIX",
    "NEWSFLOW_POLL_ONLY_FEEDS",
)
TOP_ENTITIES_SHOWN = 8


def demo_home(settings: Any) -> Path:
    return Path(settings.state_dir) / DEMO_HOME


def browse_commands(home: Path) -> list[str]:
    """The commands that open what the demo stored (its stack is stopped at the end)."""
    prefix = f"NEWSFLOW_HOME={home} newsflow"
    return [
        f"{prefix} stack up",
        f"{prefix} articles list",
        f"{prefix} watch list",
        f"{prefix} articles show 1",
        f"{prefix} entities list",
        f"{prefix} stories list",
        f"{prefix} stories show 1",  # a merged id follows its redirect
        f'{prefix} search "Kurdistan"',
        f"{prefix} stack down",
    ]


def _fresh_home(home: Path) -> None:
    """Stop a previous demo's stack and remove its data: every demo starts from nothing, so it
    stores the same articles every time."""
    import shutil

    from shared import stack
    from shared.run_lock import holder

    pid = holder(home)
    if pid is not None:
        from shared.errors import ConfigError

        raise ConfigError(
            f"another demo (pid {pid}) is running in {home}; wait for it or stop it first",
            kind="busy",
        )
    if home.exists():
        stack.down(home)
        shutil.rmtree(home)
    home.mkdir(parents=True)
    os.chmod(home, 0o755)  # the postgres user (when run as root) must reach its data dir


async def _stored(settings: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from services.cli.ops import read
    from shared.db.session import open_sessions
    from shared.runtime import resolve_database_url

    async with (
        open_sessions(resolve_database_url(settings), pool_size=1) as sessions,
        sessions() as session,
    ):
        articles = await read.list_articles(session, limit=50)
        entities = await read.list_entities(session, limit=TOP_ENTITIES_SHOWN)
    return articles, entities


def run_demo(settings: Any, *, timeout: float, as_json: bool) -> int:
    """``newsflow demo``: the sample site through the whole pipeline in the demo's own home.

    Returns the exit code of the run (0 when every article was stored or dead-lettered)."""
    import asyncio

    from rich.console import Console

    from services.cli.supervisor import Supervisor
    from shared import stack
    from shared.logs import configure_logging
    from shared.settings import load_settings

    console = Console(stderr=True)
    home = demo_home(settings)
    _fresh_home(home)
    # the demo's own settings: its home, its embedded stack, loopback allowed (the sample site)
    for name in DEMO_OVERRIDDEN:
        os.environ.pop(name, None)
    os.environ["NEWSFLOW_HOME"] = str(home)
    os.environ["NEWSFLOW_ALLOW_PRIVATE_NETWORKS"] = "true"
    os.environ.setdefault("NEWSFLOW_HOST_INTERVAL_S", "0.1")
    demo_settings = load_settings()
    configure_logging(level=demo_settings.log_level, fmt=demo_settings.log_format, service="demo")
    feeds = home / "feeds.txt"
    with DemoSite() as site:
        feeds.write_text(site.feed_url + "\n", encoding="utf-8")
        console.print(
            f"demo: sample site at {site.base} ({len(site.articles)} articles); "
            f"its own home {home} (your feeds and database are not touched)",
            soft_wrap=True,
        )
        supervisor = Supervisor(
            demo_settings,
            feeds_file=feeds,
            once=True,
            timeout=timeout,
            keep_stack=True,
            as_json=as_json,
            quiet_summary=as_json,
            watches=[DEMO_WATCH],
        )
        try:
            code = asyncio.run(supervisor.run())
            articles, entities = asyncio.run(_stored(demo_settings)) if code == 0 else ([], [])
        finally:
            stack.down(home)
    browse = browse_commands(home)
    if as_json:
        import json
        import sys

        sys.stdout.write(
            json.dumps(
                {
                    "home": str(home),
                    "summary": supervisor.summary,
                    "articles": [
                        {"id": a["id"], "title": a["title"], "top_entities": a["top_entities"]}
                        for a in articles
                    ],
                    "entities": [
                        {"key": e["key"], "name": e["name"], "articles": e["articles"]}
                        for e in entities
                    ],
                    "alerts": supervisor.summary.get("recent_alerts", []),
                    "browse": browse,
                },
                indent=2,
                ensure_ascii=False,
                default=str,
            )
            + "\n"
        )
        return code
    out = Console()
    if articles:
        out.print("\n[bold]The demo stored:[/]")
        for a in articles:
            out.print(f"  #{a['id']} {a['title']}", soft_wrap=True, highlight=False)
            if a["top_entities"]:
                out.print(f"      {', '.join(a['top_entities'])}", soft_wrap=True, highlight=False)
        out.print(
            "[bold]Top entities:[/] "
            + ", ".join(f"{e['name']} ({e['articles']})" for e in entities),
            soft_wrap=True,
            highlight=False,
        )
    out.print(
        "\n[bold]Browse it[/] (the demo's own stack, stopped now; its data is kept until "
        "the next demo):",
        highlight=False,
    )
    for command in browse:
        out.print(f"  {command}", soft_wrap=True, highlight=False, markup=False)
    return code
