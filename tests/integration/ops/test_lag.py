"""``newsflow lag`` on the real broker: a known backlog, batched so end_offsets would be wrong."""

from __future__ import annotations

from pathlib import Path

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from services.cli.ops.lag import consumer_lag
from shared.kafka import make_producer
from shared.topology import PAGES
from tests.integration.writer.cli_helpers import cli_env, newsflow_json

# partition -> record batches produced (Tansu's end_offsets answers "first offset of the last
# batch + 1", so several records per batch make it under-report)
BATCHES = {0: [10, 10, 5], 1: [7], 2: [], 3: [3]}
COMMITTED = {0: 10, 1: 7}  # partition 3 never committed: the group would start at 0
EXPECTED_LAG = {0: 15, 1: 0, 2: 0, 3: 3}
GROUP = "newsflow-parser"  # groups are namespaced by the topic prefix, like the services'


async def _produce(bootstrap: str, topic: str) -> None:
    producer = make_producer(bootstrap, linger_ms=50)
    await producer.start()
    try:
        for partition, batches in BATCHES.items():
            for size in batches:
                futures = [
                    await producer.send(topic, b'{"x": %d}' % i, partition=partition)
                    for i in range(size)
                ]
                await producer.flush()
                for future in futures:
                    await future
    finally:
        await producer.stop()


async def _commit(bootstrap: str, topic: str, group: str) -> None:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in COMMITTED]
        consumer.assign(tps)
        await consumer.commit(
            {TopicPartition(topic, p): OffsetAndMetadata(o, "") for p, o in COMMITTED.items()}
        )
    finally:
        await consumer.stop()


async def test_lag_reports_known_backlog_per_partition(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path
) -> None:
    topic = topic_prefix + PAGES.name
    await _produce(kafka_bootstrap, topic)
    group = topic_prefix + GROUP
    await _commit(kafka_bootstrap, topic, group)

    rows = await consumer_lag(kafka_bootstrap, prefix=topic_prefix, group_prefix=topic_prefix)
    parser = {r.partition: r for r in rows if r.group == group}
    assert {p: r.lag for p, r in parser.items()} == EXPECTED_LAG
    assert {p: r.end for p, r in parser.items()} == {p: sum(b) for p, b in BATCHES.items()}
    assert parser[3].committed is None and parser[0].committed == 10
    assert all(r.exact for r in rows)
    # the writer group reads pages too (archive) and never committed: the whole topic is lag
    writer_pages = [
        r for r in rows if r.group == topic_prefix + "newsflow-writer" and r.topic == PAGES.name
    ]
    assert sum(r.lag for r in writer_pages) == 35
    # other topics are empty: no lag anywhere else
    assert all(r.lag == 0 for r in rows if r.topic != PAGES.name)

    env = cli_env(
        database_url="postgresql+asyncpg://unused@127.0.0.1:1/x",
        home=tmp_path,
        bootstrap=kafka_bootstrap,
        prefix=topic_prefix,
    )
    report = newsflow_json(env, "lag")
    cli = {
        r["partition"]: r["lag"]
        for r in report["partitions"]
        if r["group"] == group and r["topic"] == PAGES.name
    }
    assert cli == EXPECTED_LAG
    assert report["totals"][group] == {PAGES.name: 18}
