"""The analyst's commands against a real database: articles list/show, search, entities."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from services.writer.articles import write_batch
from shared.db.session import create_engine, session_factory
from shared.messages import RemovedSpan
from tests.integration.writer.cli_helpers import cli_env, newsflow, newsflow_json
from tests.support.factories import T0, article, enriched, entity

KIRKUK_URL = "https://news.example.com/2026/11/21/kirkuk"
KIRKUK_BODY = (
    "Iraqi counterterrorism units dismantled an Islamic State cell near Kirkuk on Friday.\n\n"
    "The Kurdistan Workers' Party denied any link to the cell, officials in Erbil said."
)


async def _seed(database_url: str) -> None:
    strikes = enriched(
        article(
            lead="Turkish jets hit PKK positions.",
            captions=["A Turkish F-16 at Incirlik air base."],
            removed=[RemovedSpan(text="Share on Facebook", reason="share_bar")],
            modified_at=T0 + timedelta(hours=2),
            modified_source="meta",
        )
    )
    kirkuk = enriched(
        article(
            KIRKUK_URL,
            body=KIRKUK_BODY,
            title="Iraqi forces dismantle cell near Kirkuk",
            published_at=T0 + timedelta(days=1),
        ),
        entities=[
            entity("GPE:iraq", "GPE", "Iraq", "Iraqi", salience=0.8),
            entity("GPE:kirkuk", "GPE", "Kirkuk", "Kirkuk", salience=0.7),
            entity(
                "ORG:kurdistan workers party",
                "ORG",
                "Kurdistan Workers' Party",
                "Kurdistan Workers' Party",
                salience=0.5,
            ),
        ],
    )
    engine = create_engine(database_url, pool_size=1)
    try:
        await write_batch(session_factory(engine), [strikes, kirkuk])
    finally:
        await engine.dispose()
    # the curator merged the spelled-out name into the acronym (newsflow entities merge)
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        await conn.execute("INSERT INTO feeds (id, url) VALUES (7, 'https://news.example.com/rss')")
        await conn.execute(f"UPDATE articles SET feed_id = 7 WHERE canonical_url = '{KIRKUK_URL}'")
        await conn.execute(
            "UPDATE entities SET merged_into = (SELECT id FROM entities WHERE key = 'ORG:pkk') "
            "WHERE key = 'ORG:kurdistan workers party'"
        )
    finally:
        await conn.close()


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    import asyncio

    asyncio.run(_seed(database_url))
    return cli_env(database_url=database_url, home=tmp_path)


def test_articles_show_json_has_text_provenance_cleaning_and_entities(env: dict[str, str]) -> None:
    shown = newsflow_json(env, "articles", "show", "https://news.example.com/2026/11/20/strikes")
    assert shown["title"] == "Türkiye strikes PKK targets in northern Iraq"
    assert shown["body_text"].startswith("Turkish forces struck PKK positions")
    assert shown["lead"] == "Turkish jets hit PKK positions."
    assert shown["captions"] == ["A Turkish F-16 at Incirlik air base."]
    assert shown["removed"] == [{"text": "Share on Facebook", "reason": "share_bar"}]
    meta = shown["metadata"]
    assert (meta["published_at"], meta["published_source"]) == (
        "2026-11-20T09:00:00+00:00",
        "jsonld",
    )
    assert (meta["modified_at"], meta["modified_source"]) == ("2026-11-20T11:00:00+00:00", "meta")
    assert meta["authors"] == ["Ayşe Yılmaz"] and meta["language"] == "en"
    assert shown["timeline"]["enriched_at"] == "2026-11-20T09:00:03+00:00"
    assert shown["enrichment"]["model"] == "test"
    by_key = {e["key"]: e for e in shown["entities"]}
    assert list(by_key) == [  # most salient first
        "GPE:turkiye",
        "ORG:pkk",
        "GPE:iraq",
        "PERSON:mohammed shia al sudani",
    ]
    iraq = by_key["GPE:iraq"]
    assert (iraq["mentions"], iraq["salience"]) == (2, 0.6)
    assert iraq["aliases"] == ["Iraq", "Iraqi"]
    body = shown["body_text"]
    assert all(body[s["start"] : s["end"]] == s["text"] for s in iraq["spans"])
    # the same article by id
    by_id = newsflow_json(env, "articles", "show", str(shown["id"]))
    assert by_id["canonical_url"] == shown["canonical_url"]


def test_articles_list_filters_by_entity_following_merges(env: dict[str, str]) -> None:
    everything = newsflow_json(env, "articles", "list")
    assert [a["canonical_url"] for a in everything] == [
        KIRKUK_URL,  # newest first
        "https://news.example.com/2026/11/20/strikes",
    ]
    assert everything[0]["top_entities"][0] == "Iraq"
    # PKK: its own article, and the Kirkuk one through the merged "Kurdistan Workers' Party"
    pkk = newsflow_json(env, "articles", "list", "--entity", "PKK")
    assert len(pkk) == 2
    kirkuk_only = newsflow_json(env, "articles", "list", "--entity", "GPE:kirkuk")
    assert [a["canonical_url"] for a in kirkuk_only] == [KIRKUK_URL]
    recent = newsflow_json(env, "articles", "list", "--since", "2026-11-21")
    assert [a["canonical_url"] for a in recent] == [KIRKUK_URL]
    for feed in ("7", "https://news.example.com/rss"):
        from_feed = newsflow_json(env, "articles", "list", "--feed", feed)
        assert [a["canonical_url"] for a in from_feed] == [KIRKUK_URL]
    assert newsflow_json(env, "articles", "list", "--entity", "nobody at all") == []


def test_search_ranks_and_highlights(env: dict[str, str]) -> None:
    hits = newsflow_json(env, "search", "Kirkuk cell")
    assert [h["canonical_url"] for h in hits] == [KIRKUK_URL]
    assert hits[0]["rank"] > 0
    assert "«Kirkuk»" in hits[0]["snippet"]
    # stemming on bodies ("positions" -> "position"); both bodies say "Iraqi"
    assert len(newsflow_json(env, "search", "position")) == 1
    both = newsflow_json(env, "search", "Iraqi")
    assert len(both) == 2 and both[0]["rank"] >= both[1]["rank"]
    assert newsflow_json(env, "search", "Kirkuk -cell") == []


def test_entities_list_and_show(env: dict[str, str]) -> None:
    top = newsflow_json(env, "entities", "list")
    counts = {e["key"]: (e["articles"], e["mentions"]) for e in top}
    assert counts["GPE:iraq"] == (2, 3)
    assert counts["ORG:pkk"] == (2, 2)  # the merged entity's link counts for PKK
    assert "ORG:kurdistan workers party" not in counts
    assert top[0]["key"] in {"GPE:iraq", "ORG:pkk"}
    pkk = next(e for e in top if e["key"] == "ORG:pkk")
    assert pkk["aliases"] == ["Kurdistan Workers' Party", "PKK"]
    window = newsflow_json(env, "entities", "list", "--since", "2026-11-21")
    assert {e["key"]: e["articles"] for e in window}["GPE:iraq"] == 1  # Kirkuk article only
    assert "GPE:turkiye" not in {e["key"] for e in window}
    gpe = newsflow_json(env, "entities", "list", "--kind", "gpe")
    assert {e["kind"] for e in gpe} == {"GPE"}
    shown = newsflow_json(env, "entities", "show", "ORG:pkk")
    assert shown["articles"] == 2
    assert [m["key"] for m in shown["merged_from"]] == ["ORG:kurdistan workers party"]
    assert {a["canonical_url"] for a in shown["recent_articles"]} == {
        KIRKUK_URL,
        "https://news.example.com/2026/11/20/strikes",
    }
    assert "GPE:iraq" in [r["key"] for r in shown["related"]]
    merged = newsflow_json(env, "entities", "show", "Kurdistan Workers' Party")
    assert merged["merged_into"]["key"] == "ORG:pkk"


def test_missing_article_says_what_to_do(env: dict[str, str]) -> None:
    result = newsflow(env, "articles", "show", "https://nowhere.example/x", "--json")
    assert result.returncode == 2
    assert "no stored article" in result.stderr and "newsflow search" in result.stderr


def test_human_output_renders(env: dict[str, str]) -> None:
    for args, expected in (
        (("articles", "show", KIRKUK_URL), "Iraqi forces dismantle cell near Kirkuk"),
        (("articles", "list", "--limit", "1"), "Kirkuk"),
        (("search", "Kirkuk"), "Kirkuk"),
        (("entities", "list", "--kind", "GPE"), "GPE:iraq"),
        (("entities", "show", "GPE:iraq"), "2 articles, 3 mentions"),
    ):
        result = newsflow(env, *args)
        assert result.returncode == 0, result.stderr
        assert expected in result.stdout, (args, result.stdout)
