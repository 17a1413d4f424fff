"""Small helpers the agents share: decode a batch, run a function per record, time it.

Every record ends in exactly one of: a result, or a dead letter. An exception never escapes
to faust (which would ack and lose the message).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

from shared.dlq import attempt_from_headers, dead_letter
from shared.errors import PermanentError
from shared.messages import ContractError, DeadLetter, Stage
from shared.metrics import MESSAGES, STAGE_SECONDS

logger = logging.getLogger(__name__)

M = TypeVar("M")
R = TypeVar("R")


class Decoded(NamedTuple, Generic[M]):
    """One record as read: its raw bytes (kept for the DLQ), the decoded contract, and the
    delivery attempt from its ``newsflow-attempt`` header (1 unless replayed)."""

    raw: bytes
    item: M
    attempt: int = 1


def _key(event: Any) -> str | None:
    key = getattr(event, "key", None)
    if isinstance(key, bytes):
        return key.decode("utf-8", "replace")
    return key


def decode_events(
    events: Sequence[Any], model: Any, *, stage: Stage, source_topic: str, service: str
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
                dead_letter(
                    stage,
                    exc,
                    payload=raw,
                    source_topic=source_topic,
                    key=_key(event),
                    attempt=attempt,
                    service=service,
                )
            )
            MESSAGES.labels(stage, "dlq", "invalid_message").inc()
            logger.debug("dlq stage=%s kind=invalid_message key=%s", stage, _key(event))
    return decoded, letters


def run_each(
    items: Iterable[Decoded[M]],
    fn: Callable[[M], R],
    *,
    stage: Stage,
    source_topic: str,
    service: str,
    url_of: Callable[[M], str | None],
    key_of: Callable[[M], str | None],
) -> tuple[list[R], list[DeadLetter]]:
    """Apply *fn* to each item; PermanentError and unexpected bugs become dead letters."""
    results: list[R] = []
    letters: list[DeadLetter] = []
    for raw, item, attempt in items:
        started = time.perf_counter()
        try:
            results.append(fn(item))
        except Exception as exc:
            if not isinstance(exc, PermanentError):
                # A bug in a stage must cost one record, not the worker; the DLQ keeps it.
                logger.exception("unexpected error in stage %s for %s", stage, url_of(item))
            letter = dead_letter(
                stage,
                exc,
                payload=raw,
                source_topic=source_topic,
                key=key_of(item),
                url=url_of(item),
                attempt=attempt,
                service=service,
            )
            letters.append(letter)
            MESSAGES.labels(stage, "dlq", letter.error_kind).inc()
            logger.debug(
                "dlq stage=%s kind=%s url=%s detail=%s",
                stage,
                letter.error_kind,
                url_of(item),
                letter.detail,
            )
        else:
            MESSAGES.labels(stage, "ok", "-").inc()
            logger.debug("ok stage=%s url=%s", stage, url_of(item))
        finally:
            STAGE_SECONDS.labels(stage).observe(time.perf_counter() - started)
    return results, letters


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


def run_batch(
    items: list[Decoded[M]],
    batch_fn: Callable[[list[M]], list[R]],
    fn: Callable[[M], R],
    *,
    stage: Stage,
    source_topic: str,
    service: str,
    url_of: Callable[[M], str | None],
    key_of: Callable[[M], str | None],
) -> tuple[list[R], list[DeadLetter]]:
    """Process a batch in one call (e.g. one ``nlp.pipe`` for all articles); if the batch
    fails, fall back to one call per item so only the bad record is dead-lettered."""
    if not items:
        return [], []
    started = time.perf_counter()
    try:
        results = batch_fn([record.item for record in items])
    except Exception:
        logger.warning("batch of %s failed in stage %s; retrying one by one", len(items), stage)
        return run_each(
            items,
            fn,
            stage=stage,
            source_topic=source_topic,
            service=service,
            url_of=url_of,
            key_of=key_of,
        )
    per_item = (time.perf_counter() - started) / len(items)
    for record in items:
        MESSAGES.labels(stage, "ok", "-").inc()
        STAGE_SECONDS.labels(stage).observe(per_item)
        logger.debug("ok stage=%s url=%s", stage, url_of(record.item))
    return results, []
