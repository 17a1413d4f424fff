"""Two real parser workers (``newsflow worker parser``) on the broker and PostgreSQL:
pages in, articles with dedup status and dead letters out; redelivery is harmless."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.kafka import make_producer
from shared.messages import Article, DeadLetter, FeedEntry, Page
from shared.topology import ARTICLES, DLQ, PAGES
from tests.support.processes import logs, service_env, workers

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "parser"
WAIT_S = 120
PARTITIONS = 4  # what the topic_prefix fixture creates

TIGRIS_URL = (
    "https://www.tigrisreview.com/security/2026/11/18/turkish-jets-strike-pkk-northern-iraq"
)
MIRROR_URL = "https://www.tigrisreview.com/world/turkish-jets-strike-pkk-northern-iraq"
REWRITE_URL = "https://www.gulfdispatch.net/region/turkey-bombs-pkk-hideouts-northern-iraq"
ZAGROS_URL = (
    "https://zagrosdaily.com/news/iraq/iraqi-forces-dismantle-islamic-state-cell-in-kirkuk/"
)
SECTION_URL = "https://www.tigrisreview.com/security/"
TR_URL = "https://www.haberhatti.com.tr/gundem/msb-irakin-kuzeyinde-12-terorist-etkisiz-hale-getirildi-123456"


def _page(
    name: str, url: str, *, replace: dict[str, str] | None = None, errors: str = "strict"
) -> Page:
    html = (FIXTURES / name).read_bytes().decode("utf-8", errors)
    for old, new in (replace or {}).items():
        html = html.replace(old, new)
    now = datetime.now(UTC)
    return Page(
        url=url,
        final_url=url,
        host=urlsplit(url).hostname or "",
        status_code=200,
        charset="utf-8",
        html=html,
        entry=FeedEntry(published_at=datetime(2026, 11, 18, 5, 0, tzinfo=UTC)),
        discovered_at=now,
        fetched_at=now,
    )


async def _collect(
    bootstrap: str, prefix: str, *, articles: int, letters: int, log_dir: Path
) -> tuple[list[Article], list[DeadLetter]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        names = {prefix + ARTICLES.name: ARTICLES, prefix + DLQ.name: DLQ}
        consumer.assign([TopicPartition(t, p) for t in names for p in range(PARTITIONS)])
        await consumer.seek_to_beginning()
        got_articles: list[Article] = []
        got_letters: list[DeadLetter] = []
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if len(got_articles) >= articles and len(got_letters) >= letters:
                return got_articles, got_letters
            batches = await consumer.getmany(timeout_ms=500)
            for tp, records in batches.items():
                for record in records:
                    if names[tp.topic] is ARTICLES:
                        got_articles.append(Article.from_bytes(record.value))
                    else:
                        got_letters.append(DeadLetter.from_bytes(record.value))
        raise AssertionError(
            f"timed out with {len(got_articles)} articles, {len(got_letters)} letters\n{logs(log_dir)}"
        )
    finally:
        await consumer.stop()


async def test_two_parser_workers_dedup_and_dead_letter(
    kafka_bootstrap: str, database_url: str, topic_prefix: str, tmp_path: Path
) -> None:
    env = service_env(
        bootstrap=kafka_bootstrap, database_url=database_url, prefix=topic_prefix, home=tmp_path
    )
    log_dir = tmp_path / "logs"
    pages_topic = topic_prefix + PAGES.name
    producer = make_producer(kafka_bootstrap)
    await producer.start()

    async def send(page: Page, partition: int) -> None:
        await producer.send_and_wait(
            pages_topic, page.to_bytes(), key=page.host.encode(), partition=partition
        )

    original = _page("tigris_pkk_strikes.html", TIGRIS_URL)
    try:
        with workers(["parser", "parser"], env, log_dir):
            await send(original, 0)
            # the original is resolved first, so every copy below has something to point at
            [first], _ = await _collect(
                kafka_bootstrap, topic_prefix, articles=1, letters=0, log_dir=log_dir
            )
            assert (first.canonical_url, first.status) == (TIGRIS_URL, "ok")

            await send(
                _page("tigris_pkk_strikes.html", MIRROR_URL, replace={TIGRIS_URL: MIRROR_URL}), 1
            )
            await send(_page("gulfdispatch_pkk_strikes_rewrite.html", REWRITE_URL), 2)
            await send(_page("zagros_kirkuk_cell.html", ZAGROS_URL), 3)
            await send(original, 2)  # redelivered, to whichever worker owns partition 2
            await send(original, 3)
            await send(_page("tigris_security_section.html", SECTION_URL), 1)
            await send(
                _page("haberhatti_tr_cp1254_declared_utf8.html", TR_URL, errors="replace"), 0
            )
            # everything from the start: the first article, 5 more (2 are redeliveries), 2 letters
            got, letters = await _collect(
                kafka_bootstrap, topic_prefix, articles=6, letters=2, log_dir=log_dir
            )
    finally:
        await producer.stop()

    decisions = sorted({(a.canonical_url, a.status, a.duplicate_of) for a in got})
    assert decisions == sorted(
        [
            (TIGRIS_URL, "ok", None),  # the original and both redeliveries agree
            (MIRROR_URL, "duplicate", TIGRIS_URL),
            (REWRITE_URL, "near_duplicate", TIGRIS_URL),
            (ZAGROS_URL, "ok", None),
        ]
    )
    assert sum(a.canonical_url == TIGRIS_URL for a in got) == 3
    assert sorted((d.stage, d.error_kind, d.url) for d in letters) == [
        ("parse", "charset", TR_URL),
        ("parse", "not_article", SECTION_URL),
    ]
