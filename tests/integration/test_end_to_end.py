"""`newsflow run --once` on a loopback feed: every article goes through all four services
into PostgreSQL, then the run exits 0 with a summary."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg

from services.cli.demo import DemoSite
from tests.support.processes import newsflow


async def _rows(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


def test_run_once_stores_every_article_with_entities(
    loopback_run_env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    with DemoSite() as site:
        feeds = tmp_path / "feeds.txt"
        feeds.write_text(f"# sample\n{site.feed_url}\n")
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
    assert summary["links_discovered"] == len(site.articles)
    assert summary["articles_stored"] == len(site.articles)
    assert summary["pending"] == 0 and summary["dead_letters"] == 0
    # run --once ends only when every stored article has its story
    assert summary["articles_without_story"] == 0
    for service in ("fetcher", "parser", "enricher", "writer", "storyteller"):
        assert summary["startup_s"][service] > 0

    articles = asyncio.run(
        _rows(database_url, "SELECT url, canonical_url, title, body_text FROM articles")
    )
    by_url = {r["canonical_url"]: r for r in articles}
    expected = {f"{site.base}/{a['slug']}": a for a in site.articles}
    assert set(by_url) == set(expected)  # tracking parameters stripped, canonical URLs
    for url, article in expected.items():
        row = by_url[url]
        assert row["title"] == article["title"]
        body = row["body_text"]
        assert body.count(article["paragraphs"][0]) == 1  # the repeated lead is cut once
        assert article["paragraphs"][-1] in body
        assert "Advertisement" not in body and "Subscribe" not in body
    links = asyncio.run(
        _rows(
            database_url,
            ("SELECT e.key FROM article_entities ae JOIN entities e ON e.id = ae.entity_id"),
        )
    )
    keys = {r["key"] for r in links}
    assert {"GPE:turkiye", "GPE:iraq"} <= keys, keys
    stories = asyncio.run(
        _rows(
            database_url,
            "SELECT a.canonical_url, s.story_id FROM articles a"
            " JOIN story_articles s ON s.article_id = a.id",
        )
    )
    story_of = {r["canonical_url"]: r["story_id"] for r in stories}
    assert set(story_of) == set(expected)
    # two write-ups of the Sulaimani drone strike: one story; the other incidents apart
    sulaimani = {story_of[u] for u in expected if "sulaimani" in u}
    assert len(sulaimani) == 1
    assert len(set(story_of.values())) == len(expected) - 1
    assert {s["articles"] for s in summary["top_stories"]} == {1, 2}
