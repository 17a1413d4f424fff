"""The one per-record outcome path every stage shares: decode, run, and end each record as
output or as a dead letter, counted and logged the same way (``ok | dlq`` lines, metrics).

An exception never escapes to faust (which would ack and lose the message). A stage describes
where its records come from once (:class:`StageInput`); then :func:`decode_events`,
:func:`run_each` / :func:`run_batch` (sync work on a batch), :func:`process_one` (async work
on one raw record) and :func:`run_concurrently` (many in flight, acked in offset order) all
end a record through :func:`record_ok` or :func:`record_failed`, the only places an outcome
is counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, TypeVar

from shared.dlq import attempt_from_headers, build_dead_letter
from shared.errors import NewsflowError
from shared.messages import ContractError, DeadLetter, Stage
from shared.metrics import MESSAGES, STAGE_SECONDS
from shared.topology import BY_SERVICE

logger = logging.getLogger(__name__)

M = TypeVar("M")
R = TypeVar("R")


class Decoded(NamedTuple, Generic[M]):
    """One record as read: its raw bytes (kept for the DLQ), the decoded contract, and the
    delivery attempt from its ``newsflow-attempt`` header (1 unless replayed)."""

    raw: bytes
    item: M
    attempt: int = 1


def _none(_item: Any) -> None:
    return None


@dataclass(frozen=True, slots=True)
class StageInput:
    """Where a stage's records come from, and how a dead letter names one: the *stage* label,
    the prefixed *source_topic*, the *service*, and the record's URL and key (for logs and the
    dead letter) read from a decoded record."""

    stage: Stage
    source_topic: str
    service: str
    url_of: Callable[[Any], str | None] = _none
    key_of: Callable[[Any], str | None] = _none

    @classmethod
    def of(
        cls,
        service: str,
        prefix: str,
        *,
        url_of: Callable[[Any], str | None] = _none,
        key_of: Callable[[Any], str | None] = _none,
    ) -> StageInput:
        """The main input of *service* in :mod:`shared.topology`, under topic *prefix*."""
        spec = BY_SERVICE[service]
        assert spec.main_input is not None, f"{service} has no input topic"
        return cls(spec.stage, spec.main_input.full_name(prefix), service, url_of, key_of)  # type: ignore[arg-type]


def _key(event: Any) -> str | None:
    key = getattr(event, "key", None)
    if isinstance(key, bytes):
        return key.decode("utf-8", "replace")
    return key


def record_ok(source: StageInput, item: Any) -> None:
    """Count one record that produced its output (``ok`` line at DEBUG)."""
    MESSAGES.labels(source.stage, "ok", "-").inc()
    logger.debug("ok stage=%s url=%s", source.stage, source.url_of(item))


def record_failed(
    source: StageInput,
    exc: BaseException,
    *,
    payload: bytes | None,
    item: Any = None,
    key: str | None = None,
    attempt: int = 1,
) -> DeadLetter:
    """The dead letter of one record that failed with *exc*, counted and logged. URL and key
    come from the decoded *item* when there is one, else *key* (the event's key).

    An error the code did not map (not a ``NewsflowError`` nor a ``ContractError``) is a bug:
    it is logged with its traceback, and still costs only this record.
    """
    url = None if item is None else source.url_of(item)
    if item is not None:
        key = source.key_of(item)
    if not isinstance(exc, NewsflowError | ContractError):
        logger.error("unexpected error in stage %s for %s", source.stage, url, exc_info=exc)
    letter = build_dead_letter(
        source.stage,
        exc,
        payload=payload,
        source_topic=source.source_topic,
        key=key,
        url=url,
        attempt=attempt,
        service=source.service,
    )
    MESSAGES.labels(source.stage, "dlq", letter.error_kind).inc()
    logger.debug(
        "dlq stage=%s kind=%s url=%s detail=%s", source.stage, letter.error_kind, url, letter.detail
    )
    return letter


def decode_events(
    events: Sequence[Any], model: Any, source: StageInput
) -> tuple[list[Decoded[Any]], list[DeadLetter]]:
    """Decode raw event values into *model*; undecodable ones become dead letters."""
    decoded: list[Decoded[Any]] = []
    letters: list[DeadLetter] = []
    for event in events:
        raw = event.value if isinstance(event.value, bytes) else str(event.value).encode()
        attempt = attempt_from_headers(getattr(event, "headers", None))
        try:
            decoded.append(Decoded(raw, model.from_bytes(raw), attempt))
        except ContractError as exc:
            letters.append(
                record_failed(source, exc, payload=raw, key=_key(event), attempt=attempt)
            )
    return decoded, letters


def run_each(
    items: Iterable[Decoded[M]], fn: Callable[[M], R], source: StageInput
) -> tuple[list[R], list[DeadLetter]]:
    """Apply *fn* to each item; PermanentError and unexpected bugs become dead letters."""
    results: list[R] = []
    letters: list[DeadLetter] = []
    for raw, item, attempt in items:
        started = time.perf_counter()
        try:
            results.append(fn(item))
        except Exception as exc:  # a bug in a stage must cost one record, not the worker
            letters.append(record_failed(source, exc, payload=raw, item=item, attempt=attempt))
        else:
            record_ok(source, item)
        finally:
            STAGE_SECONDS.labels(source.stage).observe(time.perf_counter() - started)
    return results, letters


def run_batch(
    items: list[Decoded[M]],
    batch_fn: Callable[[list[M]], list[R]],
    fn: Callable[[M], R],
    source: StageInput,
) -> tuple[list[R], list[DeadLetter]]:
    """Process a batch in one call (e.g. one ``nlp.pipe`` for all articles); if the batch
    fails, fall back to one call per item so only the bad record is dead-lettered."""
    if not items:
        return [], []
    started = time.perf_counter()
    try:
        results = batch_fn([record.item for record in items])
    except Exception:
        logger.warning(
            "batch of %s failed in stage %s; retrying one by one", len(items), source.stage
        )
        return run_each(items, fn, source)
    per_item = (time.perf_counter() - started) / len(items)
    for record in items:
        record_ok(source, record.item)
        STAGE_SECONDS.labels(source.stage).observe(per_item)
    return results, []


async def process_one(
    raw: bytes,
    model: Any,
    fn: Callable[[M], Awaitable[R]],
    source: StageInput,
    *,
    attempt_of: Callable[[M], int] = lambda _item: 1,
) -> tuple[R | None, DeadLetter | None]:
    """Decode one raw record into *model* and await *fn* on it: ``(result, None)``, or
    ``(None, letter)`` when decoding or *fn* failed (an undecodable record has no key or URL).
    Cancellation propagates (the record is then not acked and is redelivered)."""
    started = time.perf_counter()
    item: M | None = None
    try:
        item = model.from_bytes(raw)
        result = await fn(item)
    except Exception as exc:
        attempt = 1 if item is None else attempt_of(item)
        return None, record_failed(source, exc, payload=raw, item=item, attempt=attempt)
    finally:
        STAGE_SECONDS.labels(source.stage).observe(time.perf_counter() - started)
    record_ok(source, item)
    return result, None


class InOrderAcks:
    """Ack a stream's events per partition in offset order, whatever order they finish in.

    Agents that process events concurrently (the fetcher) finish out of order; faust would
    then commit past a still-running earlier offset in some cases (a fresh group's first
    offset), and a crash would lose it. Acking only the finished prefix keeps delivery
    at-least-once.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._pending: dict[Any, list[list[Any]]] = {}

    def track(self, event: Any) -> list[Any]:
        token = [event, False]
        self._pending.setdefault(event.message.tp, []).append(token)
        return token

    async def done(self, token: list[Any]) -> None:
        token[1] = True
        queue = self._pending[token[0].message.tp]
        while queue and queue[0][1]:
            event, _ = queue.pop(0)
            await self._stream.ack(event)


async def run_concurrently(
    stream: Any,
    handle: Callable[[bytes], Awaitable[None]],
    *,
    limit: int,
    shutdown_grace_s: float,
) -> None:
    """Run *handle* on every event of a faust *stream*, up to *limit* at once, acking each
    partition's events in offset order (:class:`InOrderAcks`).

    An event whose *handle* raised or was cancelled is not acked: it is redelivered
    (at-least-once) and later offsets of its partition wait behind it. On shutdown, handlers
    still running after *shutdown_grace_s* are cancelled.
    """
    noack = stream.noack()
    acks = InOrderAcks(noack)
    slots = asyncio.Semaphore(limit)
    running: set[asyncio.Task[None]] = set()

    def finished(task: asyncio.Task[None]) -> None:
        running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error(
                "a record failed before its outcome was recorded; it will be redelivered: %r",
                task.exception(),
            )

    async def one(event: Any, token: list[Any]) -> None:
        raw = event.value if isinstance(event.value, bytes) else str(event.value).encode()
        try:
            await handle(raw)
        finally:
            slots.release()
        await acks.done(token)

    try:
        async for event in noack.events():
            await slots.acquire()  # backpressure: a bounded number of records in flight
            task = asyncio.create_task(one(event, acks.track(event)))
            running.add(task)
            task.add_done_callback(finished)
    finally:
        if running:
            _done, late = await asyncio.wait(running, timeout=shutdown_grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
