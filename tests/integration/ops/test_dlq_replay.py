"""A record the database rejects is dead-lettered by the writer; after the fault is removed,
``newsflow dlq replay`` re-sends it and it is stored (real broker, DB and writer worker)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from shared.kafka import make_producer
from shared.topology import ENRICHED
from tests.integration.writer.cli_helpers import db_rows, newsflow_json, wait_rows
from tests.support.factories import article, enriched
from tests.support.processes import service_env, workers

POISON_URL = "https://news.example.com/2026/11/20/poison"
GOOD_URL = "https://news.example.com/2026/11/20/good"

# the injected fault: PostgreSQL rejects one article (as a bad value or constraint would)
FAULT = (
    "CREATE FUNCTION reject_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "IF NEW.canonical_url LIKE '%/poison' THEN "
    "RAISE EXCEPTION 'injected fault for %', NEW.canonical_url; END IF; RETURN NEW; END $$",
    "CREATE TRIGGER reject_poison BEFORE INSERT OR UPDATE ON articles "
    "FOR EACH ROW EXECUTE FUNCTION reject_poison()",
)
FIX = ("DROP TRIGGER reject_poison ON articles", "DROP FUNCTION reject_poison()")


async def _sql(database_url: str, *statements: str) -> None:
    for statement in statements:
        await db_rows(database_url, statement)


async def test_dlq_replay_recovers_a_record_after_the_fault_is_removed(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, tmp_path: Path
) -> None:
    await _sql(database_url, *FAULT)
    await _sql(database_url, f"INSERT INTO seen_links (url) VALUES ('{POISON_URL}')")
    env = service_env(
        bootstrap=kafka_bootstrap, database_url=database_url, prefix=topic_prefix, home=tmp_path
    )
    log_dir = tmp_path / "logs"
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    try:
        with workers(["writer"], env, log_dir):
            for url in (GOOD_URL, POISON_URL):  # one partition: same batch, good one first
                record = enriched(article(url))
                await producer.send_and_wait(
                    topic_prefix + ENRICHED.name, record.to_bytes(), key=url.encode(), partition=0
                )
            # the good record is stored despite sharing a batch with the poison one
            await wait_rows(
                database_url,
                "SELECT canonical_url FROM articles",
                lambda rows: [r["canonical_url"] for r in rows] == [GOOD_URL],
                log_dir=log_dir,
            )
            letters = await wait_rows(
                database_url,
                "SELECT stage, error_kind, source_topic, payload, replayed_at FROM dead_letters",
                lambda rows: len(rows) == 1,
                log_dir=log_dir,
            )
            assert letters[0]["stage"] == "store"
            assert letters[0]["error_kind"] == "db_P0001"  # raise_exception
            assert letters[0]["source_topic"] == topic_prefix + ENRICHED.name
            assert letters[0]["payload"] is not None
            links = await db_rows(database_url, "SELECT url, outcome FROM seen_links ORDER BY url")
            # the writer upserts link outcomes (a link may reach it before the fetcher's row)
            assert {r["url"]: r["outcome"] for r in links} == {
                GOOD_URL: "stored",
                POISON_URL: "dead_letter",
            }

            listed = newsflow_json(env, "dlq", "list", "--stage", "store")
            assert [(g["stage"], g["error_kind"], g["count"], g["pending"]) for g in listed] == [
                ("store", "db_P0001", 1, 1)
            ]
            assert "injected fault" in listed[0]["latest"]["detail"]
            assert listed[0]["latest"]["url"] == POISON_URL
            shown = newsflow_json(env, "dlq", "show", str(listed[0]["latest"]["id"]))
            assert shown["url"] == POISON_URL and shown["replayed_at"] is None
            assert json.loads(shown["payload"])["article"]["canonical_url"] == POISON_URL

            # replayed before the fix: it fails again and comes back with the next attempt
            # (carried by the newsflow-attempt header, the contract has no attempt field)
            replayed = newsflow_json(env, "dlq", "replay", "--stage", "store")
            assert [(r["status"], r["attempt"]) for r in replayed] == [("replayed", 2)]
            letters = await wait_rows(
                database_url,
                "SELECT attempt, replayed_at FROM dead_letters ORDER BY attempt",
                lambda rows: len(rows) == 2,
                log_dir=log_dir,
            )
            assert [r["attempt"] for r in letters] == [1, 2]
            assert letters[0]["replayed_at"] is not None and letters[1]["replayed_at"] is None

            await _sql(database_url, *FIX)  # the operator fixes the cause
            replayed = newsflow_json(env, "dlq", "replay", "--stage", "store")
            assert [(r["status"], r["topic"], r["attempt"]) for r in replayed] == [
                ("replayed", topic_prefix + ENRICHED.name, 3)
            ]
            await wait_rows(
                database_url,
                "SELECT canonical_url FROM articles ORDER BY canonical_url",
                lambda rows: [r["canonical_url"] for r in rows] == [GOOD_URL, POISON_URL],
                log_dir=log_dir,
            )
            await asyncio.sleep(1)  # nothing else may arrive: no new dead letter
            after = await db_rows(database_url, "SELECT replayed_at FROM dead_letters")
            assert len(after) == 2 and all(r["replayed_at"] is not None for r in after)
            assert await db_rows(database_url, "SELECT outcome FROM seen_links") == [
                {"outcome": "stored"},
                {"outcome": "stored"},
            ]
            assert newsflow_json(env, "dlq", "list", "--pending") == []
            assert newsflow_json(env, "dlq", "replay") == []  # nothing left to replay
    finally:
        await producer.stop()
