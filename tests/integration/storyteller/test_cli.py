"""``newsflow stories list|show`` as a user runs them, on stories made from a slice of the
evaluation set (one incident told by several outlets, another by fewer)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from services.storyteller.evaluate import load_set
from services.storyteller.store import assign_articles
from services.storyteller.text import E5Encoder
from services.writer.articles import write_batch
from tests.integration.writer.cli_helpers import cli_env, newsflow, newsflow_json
from tests.support.stories import enriched_from_eval

INCIDENTS = ("pkk-van", "pkk-siirt", "makhmour-strike")


async def test_stories_list_and_show(sessions, database_url: str, tmp_path: Path) -> None:
    data = load_set()
    chosen = [a for a in data["articles"] if a["story"] in INCIDENTS]
    await write_batch(sessions, [enriched_from_eval(a) for a in chosen])
    async with sessions() as session:
        rows = (
            await session.execute(text("SELECT id FROM articles ORDER BY published_at, id"))
        ).all()
    await assign_articles(sessions, [r.id for r in rows], E5Encoder())
    env = cli_env(database_url=database_url, home=tmp_path)

    listed = newsflow_json(env, "stories", "list")
    assert len(listed) >= 3
    assert sum(s["article_count"] for s in listed) == len(chosen)
    biggest = max(listed, key=lambda s: s["article_count"])
    assert biggest["first_report"]["url"].startswith("https://")
    assert all({"article_id", "url", "source", "role"} <= set(a) for a in biggest["articles"])

    # filters: an entity key only one incident has; a minimum of outlets
    van = newsflow_json(env, "stories", "list", "--entity", "GPE:van")
    assert van and all("GPE:van" in {e["key"] for e in s["top_entities"]} for s in van)
    # an alias, a name or a key in another case names the same entity (was: silently empty)
    pkk = newsflow_json(env, "stories", "list", "--entity", "ORG:kurdistan workers party")
    assert pkk
    for ref in ("PKK", "org:Kurdistan Workers Party", "  GPE:van "):
        same = newsflow_json(env, "stories", "list", "--entity", ref)
        expected = van if "van" in ref else pkk
        assert [s["id"] for s in same] == [s["id"] for s in expected], ref
    wide = newsflow_json(env, "stories", "list", "--min-sources", "5")
    assert wide and all(len(s["sources"]) >= 5 for s in wide)
    assert newsflow_json(env, "stories", "list", "--since", "2030-01-01") == []

    shown = newsflow_json(env, "stories", "show", str(biggest["id"]))
    timeline = shown["timeline"]
    assert len(timeline) == biggest["article_count"]
    assert timeline[0]["role"] == "first_report"
    assert [m["published_at"] for m in timeline] == sorted(m["published_at"] for m in timeline)
    assert all(m["url"] and m["article_id"] for m in timeline)

    text_out = newsflow(env, "stories", "show", str(biggest["id"]))
    assert text_out.returncode == 0 and "first_report" in text_out.stdout
    missing = newsflow(env, "stories", "show", "999999")
    assert missing.returncode != 0 and "no story" in missing.stderr
