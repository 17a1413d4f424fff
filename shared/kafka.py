"""Admin and producer helpers around aiokafka, shaped for both Tansu and Apache Kafka."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.structs import TopicPartition

from shared.messages import MAX_MESSAGE_BYTES
from shared.topology import ALL_TOPICS, TopicSpec

logger = logging.getLogger(__name__)

ADMIN_TIMEOUT_MS = 15_000
#: Compress batches on the wire: raw HTML shrinks ~5x and Tansu stores batches as sent.
COMPRESSION = "gzip"
PRODUCER_LINGER_MS = 20


async def create_topics(
    bootstrap: str,
    *,
    partitions: int,
    replication: int = 1,
    specs: Iterable[TopicSpec] = ALL_TOPICS,
    prefix: str = "",
) -> dict[str, str]:
    """Create every topic with explicit partitions. Idempotent: returns name -> created|exists."""
    specs = list(specs)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=ADMIN_TIMEOUT_MS)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        outcome: dict[str, str] = {}
        wanted = []
        for spec in specs:
            name = spec.full_name(prefix)
            if name in existing:
                outcome[name] = "exists"
            else:
                wanted.append(NewTopic(name, partitions, replication, topic_configs=spec.configs))
        if wanted:
            try:
                response = await admin.create_topics(wanted, timeout_ms=ADMIN_TIMEOUT_MS)
            except TopicAlreadyExistsError:
                response = None
            errors = {}
            if response is not None:
                for item in getattr(response, "topic_errors", []):
                    name, code = item[0], item[1]
                    if code not in (0, 36):  # 36 = TOPIC_ALREADY_EXISTS (a racing creator)
                        errors[name] = code
            if errors:
                raise RuntimeError(f"create_topics failed: {errors}")
            for topic in wanted:
                outcome[topic.name] = "created"
        return outcome
    finally:
        await admin.close()


async def check_reachable(bootstrap: str) -> None:
    """Connect to the broker at *bootstrap* and close again.

    Raises aiokafka's ``KafkaConnectionError`` (or ``OSError``) when no broker answers, for
    callers that want to say so before starting something long-running."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=ADMIN_TIMEOUT_MS)
    try:
        await admin.start()
    finally:
        await admin.close()


async def describe_topics(bootstrap: str, *, prefix: str = "") -> list[dict[str, Any]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=ADMIN_TIMEOUT_MS)
    await admin.start()
    try:
        names = sorted(n for n in await admin.list_topics() if n.startswith(prefix))
        described = await admin.describe_topics(names) if names else []
        out = []
        for item in described:
            out.append({"topic": item["topic"], "partitions": len(item["partitions"])})
        return out
    finally:
        await admin.close()


async def committed_offsets(
    bootstrap: str, group: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """Committed offsets of *group*. ``partitions=`` is required: Tansu drops the connection
    when asked for all of a group's offsets."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=ADMIN_TIMEOUT_MS)
    await admin.start()
    try:
        result = await admin.list_consumer_group_offsets(group, partitions=partitions)
        return {
            tp: meta.offset for tp, meta in result.items() if meta is not None and meta.offset >= 0
        }
    finally:
        await admin.close()


def make_producer(bootstrap: str, **overrides: Any) -> AIOKafkaProducer:
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "compression_type": COMPRESSION,
        "linger_ms": PRODUCER_LINGER_MS,
        "max_request_size": MAX_MESSAGE_BYTES,
        "acks": "all",
        # Tansu has no idempotent producer; duplicates are absorbed by idempotent writes.
        "enable_idempotence": False,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)
