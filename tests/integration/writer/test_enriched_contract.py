"""Downstream view of news.enriched.v1: an independent client (confluent-kafka / librdkafka)
reads what the real enricher produced, and every record validates against the committed
JSON Schema. The records come from both entry points: fresh articles and a
``newsflow replay --from articles`` re-enrichment, which the writer then stores over the old
row (new enrichment, links replaced)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import jsonschema
from confluent_kafka import Consumer

from services.writer.articles import write_batch
from shared.db.session import create_engine, session_factory
from shared.kafka import make_producer
from shared.topology import ARTICLES, ENRICHED
from tests.integration.writer.cli_helpers import newsflow_json, wait_rows
from tests.support.factories import article, enriched, entity
from tests.support.processes import ROOT, logs, service_env, workers

SCHEMA = json.loads((ROOT / "docs" / "schemas" / "news.enriched.v1.json").read_text())
STORED_URL = "https://news.example.com/2026/11/20/strikes"
FRESH = [
    article(
        f"https://news.example.com/2026/11/21/fresh-{n}",
        body=f"Iraqi security forces arrested {n + 2} Islamic State suspects in Mosul, the "
        "Ministry of Interior in Baghdad said on Saturday.",
        title=f"Mosul arrests {n}",
    )
    for n in range(2)
]
CONSUME_TIMEOUT_S = 120


async def _seed(database_url: str) -> None:
    """A stored article enriched by an old model with a made-up entity."""
    old = enriched(article(STORED_URL), entities=[entity("ORG:stale", "ORG", "Stale", "Stale")])
    engine = create_engine(database_url, pool_size=1)
    try:
        await write_batch(session_factory(engine), [old])
    finally:
        await engine.dispose()


async def _produce_fresh(bootstrap: str, topic: str) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        for item in FRESH:
            await producer.send_and_wait(topic, item.to_bytes(), key=item.canonical_url.encode())
    finally:
        await producer.stop()


def _consume(bootstrap: str, topic: str, expected: int, log_dir: Path) -> list[Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"contract-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    messages: list[Any] = []
    deadline = time.monotonic() + CONSUME_TIMEOUT_S
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            assert message.error() is None, message.error()
            messages.append(message)
    finally:
        consumer.close()
    assert len(messages) == expected, f"got {len(messages)} of {expected}\n{logs(log_dir)}"
    return messages


def _run_example(name: str, bootstrap: str, topic: str) -> list[str]:
    """Run examples/NAME for three records; the titles it printed."""
    env = {
        "PATH": "/usr/bin:/bin",
        "KAFKA_BOOTSTRAP": bootstrap,
        "TOPIC": topic,
        "GROUP": f"example-{uuid.uuid4().hex[:8]}",
        "MAX_MESSAGES": "3",
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3 and all(re.search(r" \| .+ \([A-Z_]+\)", line) for line in lines)
    return sorted(line.split(" | ")[0] for line in lines)


def test_confluent_consumer_validates_enriched_records_against_the_schema(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, tmp_path: Path
) -> None:
    asyncio.run(_seed(database_url))
    env = service_env(
        bootstrap=kafka_bootstrap, database_url=database_url, prefix=topic_prefix, home=tmp_path
    )
    log_dir = tmp_path / "logs"
    with workers(["enricher", "writer"], env, log_dir):
        asyncio.run(_produce_fresh(kafka_bootstrap, topic_prefix + ARTICLES.name))
        sent = newsflow_json(env, "replay", "--from", "articles", "--since", "2020-01-01")
        assert sent["sent"] == 1 and sent["topic"] == topic_prefix + ARTICLES.name

        messages = _consume(kafka_bootstrap, topic_prefix + ENRICHED.name, 3, log_dir)
        validator = jsonschema.Draft202012Validator(SCHEMA)
        urls = []
        for message in messages:
            record = json.loads(message.value())
            errors = sorted(validator.iter_errors(record), key=str)
            assert not errors, [e.message for e in errors]
            # the key is the article's canonical URL: per-article ordering across partitions
            assert message.key().decode() == record["article"]["canonical_url"]
            assert record["schema_version"] == 1
            assert record["entities"], "the real model finds entities in every test article"
            urls.append(record["article"]["canonical_url"])
        assert sorted(urls) == sorted([STORED_URL, *(a.canonical_url for a in FRESH)])
        titles = sorted(json.loads(m.value())["article"]["title"] for m in messages)
        for example in ("consume_confluent.py", "consume_aiokafka.py"):
            assert _run_example(example, kafka_bootstrap, topic_prefix + ENRICHED.name) == titles

        # the writer stored the re-enrichment over the old row: new model, links replaced
        rows = asyncio.run(
            wait_rows(
                database_url,
                "SELECT a.canonical_url, a.enrichment->>'model' AS model, "
                "array_agg(e.key ORDER BY e.key) AS keys FROM articles a "
                "JOIN article_entities x ON x.article_id = a.id "
                "JOIN entities e ON e.id = x.entity_id GROUP BY a.id ORDER BY a.canonical_url",
                lambda r: len(r) == 3 and all(x["model"] != "test" for x in r),
                log_dir=log_dir,
            )
        )
    restored = next(r for r in rows if r["canonical_url"] == STORED_URL)
    assert "ORG:stale" not in restored["keys"]
    assert any(key.startswith("GPE:") for key in restored["keys"])
