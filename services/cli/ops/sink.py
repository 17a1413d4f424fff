"""Where replayed records go: a Kafka producer that waits for every delivery before returning."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Protocol

from shared.errors import ConfigError

logger = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]


class Sink(Protocol):
    async def send(self, topic: str, *, key: bytes | None, value: bytes, headers: Headers) -> None:
        """Queue one record."""

    async def flush(self) -> int:
        """Wait until every queued record is stored by the broker; returns how many."""


class KafkaSink:
    """``async with KafkaSink(bootstrap, topics=[...]) as sink``: fails fast on missing topics."""

    def __init__(self, bootstrap: str, *, topics: Iterable[str] = ()) -> None:
        self._bootstrap = bootstrap
        self._topics = sorted(set(topics))
        self._producer: Any = None
        self._futures: list[asyncio.Future[Any]] = []

    async def __aenter__(self) -> KafkaSink:
        from services.cli.ops.lag import topic_partitions
        from shared.kafka import make_producer

        if self._topics:
            found = await topic_partitions(self._bootstrap, self._topics)
            missing = [t for t in self._topics if t not in found]
            if missing:
                raise ConfigError(
                    f"topic(s) {', '.join(missing)} do not exist on {self._bootstrap}. Check "
                    "NEWSFLOW_TOPIC_PREFIX, or run 'newsflow topics create'."
                )
        self._producer = make_producer(self._bootstrap)
        try:
            await self._producer.start()
        except BaseException:
            # a broker that cannot be reached: close it here, or asyncio logs
            # "Unclosed AIOKafkaProducer" at ERROR level when it is collected
            await self._producer.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is None:
                await self.flush()
        finally:
            await self._producer.stop()
            self._drop_pending()

    async def send(self, topic: str, *, key: bytes | None, value: bytes, headers: Headers) -> None:
        self._futures.append(await self._producer.send(topic, value, key=key, headers=headers))

    async def flush(self) -> int:
        futures, self._futures = self._futures, []
        if futures:
            try:
                await self._producer.flush()
            finally:
                # gather every outcome, so a lost broker raises once here instead of asyncio
                # logging "Future exception was never retrieved" for each send later
                results = await asyncio.gather(*futures, return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                raise errors[0]
        return len(futures)

    def _drop_pending(self) -> None:
        """Retrieve what sends still pending after a failure ended (they are not retried)."""
        futures, self._futures = self._futures, []
        for future in futures:
            if not future.done():
                future.cancel()
            elif not future.cancelled():
                future.exception()  # marks it retrieved
