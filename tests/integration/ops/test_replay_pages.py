"""The writer archives news.pages.v1; ``newsflow replay --from pages`` puts the exact record
back on the topic (re-parse without refetching)."""

from __future__ import annotations

import gzip
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from shared.kafka import make_producer
from shared.messages import Page
from shared.topology import PAGES
from tests.integration.writer.cli_helpers import newsflow_json, wait_rows
from tests.support.factories import T0
from tests.support.processes import service_env, workers

URLS = [f"https://news.example.com/2026/11/20/page-{n}" for n in range(3)]


def _page(url: str, *, minutes: int) -> Page:
    from datetime import timedelta

    return Page(
        url=url,
        final_url=url,
        host="news.example.com",
        status_code=200,
        content_type="text/html",
        html=f"<html><title>{url}</title><body><p>Kirkuk {minutes}</p></body></html>",
        discovered_at=T0,
        fetched_at=T0 + timedelta(minutes=minutes),
    )


async def _read_all(
    bootstrap: str, topic: str, expected: int
) -> list[tuple[bytes, dict[str, bytes]]]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    out: list[tuple[bytes, dict[str, bytes]]] = []
    try:
        for _ in range(40):
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                out += [(r.value, dict(r.headers)) for r in records]
            if len(out) >= expected:
                break
    finally:
        await consumer.stop()
    return out


async def test_pages_are_archived_and_replayed_byte_for_byte(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, tmp_path: Path
) -> None:
    env = service_env(
        bootstrap=kafka_bootstrap, database_url=database_url, prefix=topic_prefix, home=tmp_path
    )
    topic = topic_prefix + PAGES.name
    older = _page(URLS[0], minutes=0)
    pages = [_page(url, minutes=10 + n) for n, url in enumerate(URLS)]
    producer = make_producer(kafka_bootstrap)
    await producer.start()
    try:
        with workers(["writer"], env, tmp_path / "logs"):
            # page-0 twice: the newer fetch wins whatever order the partitions deliver in
            for page in [pages[0], older, *pages[1:]]:
                await producer.send_and_wait(topic, page.to_bytes(), key=page.host.encode())
            rows = await wait_rows(
                database_url,
                "SELECT url, fetched_at, payload_gz FROM pages ORDER BY url",
                lambda r: len(r) == 3,
                log_dir=tmp_path / "logs",
            )
    finally:
        await producer.stop()
    assert [r["url"] for r in rows] == URLS
    assert [gzip.decompress(r["payload_gz"]) for r in rows] == [p.to_bytes() for p in pages]

    sent = newsflow_json(env, "replay", "--from", "pages", "--since", "2026-11-20T09:05")
    assert sent["sent"] == 3 and sent["topic"] == topic
    assert sent["first"] == "2026-11-20T09:10:00+00:00"
    records = await _read_all(kafka_bootstrap, topic, expected=7)
    replayed = [value for value, headers in records if headers.get("newsflow-replay") == b"pages"]
    assert sorted(replayed) == sorted(p.to_bytes() for p in pages)
    assert len(records) == 7  # 4 originals + 3 replays, nothing else

    # a window with nothing in it sends nothing; a bad time says what it accepts
    assert newsflow_json(env, "replay", "--from", "pages", "--since", "2030-01-01")["sent"] == 0
