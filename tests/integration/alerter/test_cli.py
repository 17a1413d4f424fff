"""``newsflow watch`` as a user runs it (child processes) against a real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerter.service import WatchSet, match_batch
from services.writer.articles import write_batch
from tests.integration.writer.cli_helpers import cli_env, newsflow, newsflow_json
from tests.support.factories import article, enriched


async def test_watch_commands(
    database_url: str, tmp_path: Path, sessions: async_sessionmaker[AsyncSession]
) -> None:
    items = [
        enriched(article(f"https://news.example.com/{i}", title=title))
        for i, title in enumerate(["Clashes in Şırnak", "Talks in Ankara"])
    ]
    ids = sorted(((await write_batch(sessions, items)).article_ids or {}).values())
    env = cli_env(database_url=database_url, home=tmp_path)

    added = newsflow_json(env, "watch", "add", "pkk", "--query", "entity:PKK AND Sirnak")
    assert added["query"] == 'entity:"ORG:kurdistan workers party" AND Sirnak'
    assert added["paused"] is False and added["webhook_url"] is None

    bad = newsflow(env, "watch", "add", "bad", "--query", "Sirnak AND (PKK")
    assert bad.returncode == 2
    assert "unclosed parenthesis" in bad.stderr and "^" in bad.stderr

    private = newsflow(
        env, "watch", "add", "hook", "--query", "Sirnak", "--webhook", "http://127.0.0.1:9/x"
    )
    assert private.returncode == 2 and "NEWSFLOW_ALLOW_PRIVATE_NETWORKS" in private.stderr
    metadata = newsflow(
        {**env, "NEWSFLOW_ALLOW_PRIVATE_NETWORKS": "true"},
        "watch",
        "add",
        "hook",
        "--query",
        "Sirnak",
        "--webhook",
        "http://169.254.169.254/",
    )
    assert metadata.returncode == 2 and "metadata" in metadata.stderr
    hooked = newsflow_json(
        {**env, "NEWSFLOW_ALLOW_PRIVATE_NETWORKS": "true"},
        "watch",
        "add",
        "hook",
        "--query",
        "Şırnak",
        "--webhook",
        "http://127.0.0.1:9/x",
    )
    assert hooked["has_secret"] and hooked["secret"].startswith("whsec_")

    assert [w["name"] for w in newsflow_json(env, "watch", "list")] == ["hook", "pkk"]
    assert newsflow_json(env, "watch", "resume", "pkk")["paused"] is False
    edited = newsflow_json(env, "watch", "edit", "pkk", "--query", "title:Ankara")
    assert edited["query"] == "title:Ankara"

    tested = newsflow_json(env, "watch", "test", "--query", "Şırnak", "--since", "3650d")
    assert [m["article_id"] for m in tested["matches"]] == [ids[0]]
    assert tested["matches"][0]["matched_terms"] == ["sirnak"]

    # the stream produces the same set for a watch with that query
    batch = await match_batch(sessions, WatchSet(), ids)
    assert {a.article_id for a in batch.alerts if a.watch_name == "hook"} == {
        m["article_id"] for m in tested["matches"]
    }
    shown = newsflow_json(env, "watch", "show", "hook")
    assert shown["alerts"] == 1
    removed = newsflow_json(env, "watch", "remove", "hook")
    assert removed["name"] == "hook"
    assert newsflow(env, "watch", "show", "hook").returncode == 2
