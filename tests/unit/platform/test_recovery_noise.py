"""A broker lost during a recovery's re-drive is said once, not once per reconnect attempt."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest

from services.cli.ops.sink import KafkaSink
from services.cli.supervisor import quiet_broker_client


def test_the_kafka_client_is_quiet_during_a_recovery_and_heard_again_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # seen: ~1150 aiokafka error lines in 1 s when Tansu was killed again during the re-drive
    sender = logging.getLogger("aiokafka.producer.sender")
    caplog.set_level(logging.DEBUG)
    # the client's own level is set here too: an in-process CLI test earlier in the session
    # may have quietened library loggers globally (services.cli.main._quiet_libraries)
    caplog.set_level(logging.DEBUG, logger="aiokafka")
    level = logging.getLogger("aiokafka").level
    with quiet_broker_client():
        sender.error("Unable connect to node with id 111")
        logging.getLogger("services.cli.supervisor").warning("kafka is gone")
    sender.error("after the recovery")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["kafka is gone", "after the recovery"]
    assert logging.getLogger("aiokafka").level == level


class _LostBroker:
    """A producer whose every send fails once flushed (the broker died meanwhile)."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[Any]] = []

    async def send(self, topic: str, value: bytes, **_kw: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future

    async def flush(self) -> None:
        # aiokafka: flush() times out while each send then fails on its own
        for future in self.futures:
            future.set_exception(ConnectionError("node not ready"))
        raise TimeoutError("flush timed out")

    async def stop(self) -> None:
        return None


async def test_a_failed_flush_raises_once_and_leaves_no_unretrieved_future() -> None:
    unretrieved: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: unretrieved.append(context))
    sink = KafkaSink("127.0.0.1:1")
    sink._producer = _LostBroker()
    for n in range(4):
        await sink.send("t", key=None, value=b"%d" % n, headers=[])
    raised = 0
    try:
        await sink.flush()
    except (ConnectionError, TimeoutError):
        raised += 1
    assert raised == 1
    del sink
    gc.collect()
    await asyncio.sleep(0)
    assert unretrieved == []  # was: "Future exception was never retrieved" per send


async def test_a_producer_that_cannot_start_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    # a re-drive against a dead broker logged "Unclosed AIOKafkaProducer" at ERROR
    stopped: list[bool] = []

    class Unreachable:
        async def start(self) -> None:
            raise ConnectionError("Unable to bootstrap")

        async def stop(self) -> None:
            stopped.append(True)

    monkeypatch.setattr("shared.kafka.make_producer", lambda bootstrap: Unreachable())
    with pytest.raises(ConnectionError):
        async with KafkaSink("127.0.0.1:1"):
            pass
    assert stopped == [True]
