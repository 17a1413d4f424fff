"""``newsflow stories list|show|split|move|merge|publish`` as a user runs them, on stories made from a slice of the
evaluation set (one incident told by several outlets, another by fewer)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from services.storyteller.evaluate import load_set
from services.storyteller.store import assign_articles
from services.storyteller.text import E5Encoder
from services.writer.articles import write_batch
from shared.messages import StoryUpdate
from shared.topology import STORIES
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


async def _stories_topic(bootstrap: str, prefix: str) -> list[StoryUpdate]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        STORIES.full_name(prefix), bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[StoryUpdate] = []
    try:
        batch = await consumer.getmany(timeout_ms=3000)
        while batch:
            for messages in batch.values():
                records += [StoryUpdate.from_bytes(m.value) for m in messages]
            batch = await consumer.getmany(timeout_ms=1000)
    finally:
        await consumer.stop()
    return records


async def test_split_move_merge_and_pages_from_the_command_line(
    sessions, database_url: str, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    data = load_set()
    chosen = [a for a in data["articles"] if a["story"] in INCIDENTS]
    await write_batch(sessions, [enriched_from_eval(a) for a in chosen])
    async with sessions() as session:
        ids = list(
            (await session.execute(text("SELECT id FROM articles ORDER BY published_at, id")))
            .scalars()
            .all()
        )
    await assign_articles(sessions, ids, E5Encoder())
    env = cli_env(
        database_url=database_url, home=tmp_path, bootstrap=kafka_bootstrap, prefix=topic_prefix
    )
    biggest = max(newsflow_json(env, "stories", "list"), key=lambda s: s["article_count"])
    sid, total = biggest["id"], biggest["article_count"]
    members = [a["article_id"] for a in biggest["articles"]]

    # paging: a page, what is hidden and how to see it; JSON carries the page
    page = newsflow_json(env, "stories", "show", str(sid), "--limit", "2", "--offset", "1")
    assert page["page"] == {"offset": 1, "limit": 2, "shown": 2, "total": total}
    assert [m["article_id"] for m in page["timeline"]] == members[1:3]
    assert page["first_report"]["article_id"] == members[0]
    out = newsflow(env, "stories", "show", str(sid), "--limit", "2")
    assert out.returncode == 0 and f"{total - 2} not shown" in out.stderr
    assert "--offset 2" in out.stderr and str(members[0]) in out.stdout
    assert len(newsflow_json(env, "stories", "show", str(sid), "--all")["timeline"]) == total
    for bad in (["--limit", "0"], ["--limit", "-5"], ["--offset", "-1"], ["--offset", "1e3"]):
        refused = newsflow(env, "stories", "show", str(sid), *bad)
        assert refused.returncode == 2, bad

    # split: the new story, both cards, records on news.stories.v1
    moved = members[-2:]
    split = newsflow_json(env, "stories", "split", str(sid), *map(str, moved))
    new = split["other_id"]
    assert split["action"] == "split" and split["article_ids"] == sorted(moved)
    assert {s["id"]: s["article_count"] for s in split["stories"]} == {
        sid: total - 2,
        new: 2,
    }
    records = await _stories_topic(kafka_bootstrap, topic_prefix)
    # keyed by story id: order holds per story (partition), not across the two stories
    assert [r.kind for r in records if r.story_id == sid] == ["split", "story"]
    assert [r.kind for r in records if r.story_id == new] == ["story"]
    assert len(records) == 3
    shown = newsflow_json(env, "stories", "show", str(new))
    assert shown["pinned"] and all(m["pinned_at"] for m in shown["timeline"])
    text_out = newsflow(env, "stories", "show", str(new))
    assert "(moved)" in text_out.stdout and "corrected by hand" in text_out.stdout

    # refusals: exit 2, one line that says what to do
    refusals = {
        ("split", "987654321", "1"): "no story 987654321",
        ("split", str(new), str(members[0])): f"is in story #{sid}",
        ("split", str(new), *map(str, moved)): "leave at least one",
        ("move", str(moved[0]), "--to", str(new)): "already in story",
        ("merge", str(sid), str(sid)): "same story",
        ("split", str(sid), "9223372036854775808"): "",  # out of a bigint's range
    }
    for args, message in refusals.items():
        result = newsflow(env, "stories", *args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        if message:
            assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr

    # move one back, then merge by hand: the merged id points to the survivor
    back = newsflow_json(env, "stories", "move", str(moved[0]), "--to", str(sid))
    assert back["story_id"] == new and back["other_id"] == sid
    merged = newsflow_json(env, "stories", "merge", str(sid), str(new))
    assert (merged["story_id"], merged["other_id"]) == (new, sid)
    gone = newsflow(env, "stories", "split", str(new), str(moved[1]))
    assert gone.returncode == 2 and f"was merged into #{sid}" in gone.stderr
    assert newsflow_json(env, "stories", "show", str(sid))["page"]["total"] == total

    # the broker down: refused before anything changes
    down = cli_env(database_url=database_url, home=tmp_path, prefix=topic_prefix)
    refused = newsflow(down, "stories", "split", str(sid), str(moved[0]))
    assert refused.returncode == 2 and "cannot reach the broker" in refused.stderr
    assert newsflow_json(env, "stories", "show", str(sid))["page"]["total"] == total
    # publish sends the current state again
    again = newsflow_json(env, "stories", "publish", str(sid), str(new))
    assert again["published"] == [
        {"story_id": sid, "kind": "story"},
        {"story_id": new, "kind": "merged"},
    ]
