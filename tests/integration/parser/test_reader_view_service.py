"""Issue 17 through real workers (``newsflow worker parser`` and ``enricher``) on the broker:
the article of each failing shape carries the exact body and fields a reader would expect, and
the enriched record never has the publisher's own name among its entities."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from services.enricher.canonical import fold
from shared.kafka import make_producer
from shared.messages import EnrichedArticle, RemovedSpan
from shared.topology import ENRICHED, PAGES
from tests.integration.parser.test_parser_service import PARTITIONS, WAIT_S, _collect, _page
from tests.support.processes import logs, service_env, workers
from tests.unit.parser.test_reader_view import (
    KHABUR_CAPTION,
    KIRKUK_BODY,
    KIRKUK_LEAD,
    KIRKUK_TITLE,
    KIRKUK_URL,
    NORTHGATE_BODY,
    NORTHGATE_URL,
)

CREDIT = "Kirkuk Post reporters saw the burnt-out vehicles at the scene."


async def _enriched(
    bootstrap: str, prefix: str, *, count: int, log_dir: Path
) -> list[EnrichedArticle]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        topic = prefix + ENRICHED.name
        consumer.assign([TopicPartition(topic, p) for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        got: list[EnrichedArticle] = []
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and len(got) < count:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                got.extend(EnrichedArticle.from_bytes(r.value) for r in records)
        assert len(got) >= count, f"timed out with {len(got)} enriched\n{logs(log_dir)}"
        return got
    finally:
        await consumer.stop()


async def test_reader_view_through_the_parser_worker(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, tmp_path: Path
) -> None:
    env = service_env(
        bootstrap=kafka_bootstrap, database_url=database_url, prefix=topic_prefix, home=tmp_path
    )
    log_dir = tmp_path / "logs"
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    try:
        with workers(["parser", "enricher"], env, log_dir):
            for partition, (name, url) in enumerate(
                [
                    ("northgate_zakho_water_plan.html", NORTHGATE_URL),
                    ("kirkuk_post_checkpoint.html", KIRKUK_URL),
                ]
            ):
                # the publisher named in its own copy: the enricher must not make it an entity
                page = _page(
                    name, url, replace={"<p>No group claimed": f"<p>{CREDIT} No group claimed"}
                )
                page = page.model_copy(
                    update={"entry": page.entry.model_copy(update={"published_at": None})}
                )
                await producer.send_and_wait(
                    topic_prefix + PAGES.name,
                    page.to_bytes(),
                    key=page.host.encode(),
                    partition=partition,
                )
            got, _ = await _collect(
                kafka_bootstrap, topic_prefix, articles=2, letters=0, log_dir=log_dir
            )
            enriched = await _enriched(kafka_bootstrap, topic_prefix, count=2, log_dir=log_dir)
    finally:
        await producer.stop()

    by_url = {a.canonical_url: a for a in got}
    northgate, kirkuk = by_url[NORTHGATE_URL], by_url[KIRKUK_URL]
    # 1: strong old date kept with its source; 2-4: body; 5: decoded title; 6: a person
    assert (northgate.published_at, northgate.published_source) == (
        datetime(2019, 3, 12, 5, 30, tzinfo=UTC),
        "jsonld",
    )
    assert northgate.body_text == NORTHGATE_BODY
    assert northgate.captions[0] == KHABUR_CAPTION
    assert RemovedSpan(text="Northgate Advertisment", reason="advertisement") in northgate.removed
    assert (
        northgate.title == "Zakho council’s water plan leaves villages dry as Duhok & Erbil argue"
    )
    assert (northgate.authors, northgate.author_kind) == (["Rebin Hassan"], "person")
    # 2, 3, 4, 7 on the second shape
    assert kirkuk.body_text == KIRKUK_BODY.replace("No group claimed", f"{CREDIT} No group claimed")
    assert RemovedSpan(text=KIRKUK_LEAD, reason="duplicate_paragraph") in kirkuk.removed
    assert (kirkuk.title, kirkuk.site_name) == (KIRKUK_TITLE, "The Kirkuk Post")
    # 7, enricher side: the site's name is no entity of its own articles
    for record in enriched:
        site = fold(record.article.site_name or "").removeprefix("the ")
        assert site
        assert not [e.name for e in record.entities if site in fold(e.name)], record.entities
        assert not [m.text for m in record.mentions if site in fold(m.text)]
