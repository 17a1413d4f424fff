"""Faust wiring shared by the four services: one place for broker-dependent settings."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import faust

from shared import stack
from shared.messages import MAX_MESSAGE_BYTES, DeadLetter
from shared.settings import Settings
from shared.topology import BY_SERVICE, DLQ, TopicSpec, group_id

logger = logging.getLogger(__name__)


def create_app(service: str, settings: Settings, *, bootstrap: str) -> faust.App:
    """A faust app for *service*, tuned for at-least-once delivery on Tansu or Kafka.

    The app id is the consumer group: scale a service out by starting more workers.
    """
    datadir = Path(settings.state_dir, "faust", service)
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return faust.App(
        group_id(service, prefix=settings.topic_prefix),
        broker=f"kafka://{bootstrap}",
        autodiscover=False,
        datadir=str(datadir),
        key_serializer="raw",
        value_serializer="raw",  # payloads are our versioned JSON, decoded by the contracts
        store="memory://",  # no tables: PostgreSQL is the source of truth
        processing_guarantee="at_least_once",  # Tansu has no transactions
        topic_partitions=settings.topic_partitions,
        topic_allow_declare=True,  # only faust's own internal topics; ours are created up front
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_s,
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_heartbeat_interval=settings.heartbeat_interval_s,
        broker_commit_interval=settings.commit_interval_s,
        broker_request_timeout=max(40.0, settings.session_timeout_s * 2),
        broker_max_poll_interval=300.0,
        consumer_max_fetch_size=MAX_MESSAGE_BYTES,
        producer_compression_type="gzip",
        producer_max_request_size=MAX_MESSAGE_BYTES,
        producer_linger=0.02,
        producer_acks=-1,
        stream_wait_empty=False,
        # faust binds its web port even when disabled; a random free port per worker
        # avoids the 6066 clash between workers on one host.
        web_enabled=False,
        web_port=stack.free_port(),
        web_host="127.0.0.1",
    )


def stage_topics(app: faust.App, service: str, settings: Settings) -> dict[TopicSpec, Any]:
    """The faust topic of every input and output of *service* in :mod:`shared.topology`
    (optional inputs only when *settings* enable them), keyed by spec, prefixed names."""
    spec = BY_SERVICE[service]
    wanted = dict.fromkeys((*spec.inputs(settings), *spec.outputs))
    return {
        topic: app.topic(topic.full_name(settings.topic_prefix), key_type=bytes, value_type=bytes)
        for topic in wanted
    }


def dlq_topic(app: faust.App, settings: Settings) -> Any:
    return app.topic(DLQ.full_name(settings.topic_prefix), key_type=bytes, value_type=bytes)


async def send_all(app: faust.App, topic: Any, items: Iterable[tuple[str | None, bytes]]) -> None:
    """Produce every (key, value) and wait until the broker has them all.

    Waiting before the input is acked is what makes delivery at-least-once end to end.
    """
    futures = []
    for key, value in items:
        fut = await topic.send(key=key.encode() if key is not None else None, value=value)
        futures.append(fut)
    if futures:
        await app.producer.flush()
        await asyncio.gather(*futures)


async def send_dead_letters(app: faust.App, topic: Any, letters: Iterable[DeadLetter]) -> None:
    await send_all(app, topic, ((letter.stage, letter.to_bytes()) for letter in letters))


#: Allocations between young-generation collections (CPython's default is 700).
GC_YOUNG_THRESHOLD = 100_000
#: Young collections per middle one, middle per full one (defaults 10 and 10).
GC_OLDER_THRESHOLDS = (50, 1000)


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a long-running stream worker.

    Decoding a record builds ~150 objects that live until its batch is stored, so with
    CPython's defaults the collector ran ~100 times per writer batch and re-scanned the whole
    heap (faust, SQLAlchemy, buffered events) at each full pass: 55% of the writer's CPU
    (perf), 850 articles/s instead of 1,700 (``tests/bench/writer.py --service``). Objects
    that exist once the worker has started (modules, the app) are frozen out of every scan,
    and collections run ~140x less often; refcounting still frees all acyclic garbage at once.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *GC_OLDER_THRESHOLDS)


def run_worker(
    app: faust.App, *, loglevel: str = "info", on_ready: Callable[[], None] | None = None
) -> None:
    """Run *app* in this process until SIGINT/SIGTERM (what ``newsflow worker X`` does)."""
    from faust.worker import Worker

    class _Worker(Worker):
        async def on_startup_finished(self) -> None:
            await super().on_startup_finished()
            tune_gc()
            if on_ready is not None:
                on_ready()

    # override_logging=False keeps the structured handlers configure_logging installed.
    worker = _Worker(
        app, loglevel=loglevel, quiet=True, redirect_stdouts=False, override_logging=False
    )
    worker.spinner = None  # its terminal escape codes would garble merged logs
    worker.execute_from_commandline()
