"""Dead letters: build the record once, at a stage's boundary, from the error tree."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from shared.errors import NewsflowError
from shared.messages import ContractError, DeadLetter, Stage

#: Payloads above this are not inlined; the DLQ record keeps a reference (the URL) instead.
MAX_INLINE_PAYLOAD = 256 * 1024
MAX_DETAIL = 2000
#: Record header carrying the delivery attempt: ``newsflow dlq replay`` sets it to the
#: letter's attempt + 1, so a record that fails again is dead-lettered with the higher count.
ATTEMPT_HEADER = "newsflow-attempt"


def attempt_from_headers(headers: Mapping[str, bytes] | None) -> int:
    """The attempt a record's headers carry; 1 when absent or unreadable."""
    value = (headers or {}).get(ATTEMPT_HEADER)
    try:
        return max(1, int(value)) if value is not None else 1
    except ValueError:
        return 1


def error_kind(exc: BaseException) -> str:
    if isinstance(exc, NewsflowError):
        return exc.kind
    if isinstance(exc, ContractError):
        return "invalid_message"
    return f"bug_{type(exc).__name__}"


def build_dead_letter(
    stage: Stage,
    exc: BaseException,
    *,
    payload: bytes | str | None,
    source_topic: str | None,
    key: str | None = None,
    url: str | None = None,
    attempt: int = 1,
    service: str | None = None,
) -> DeadLetter:
    """The ``news.dlq.v1`` record for a record of *stage* that failed with *exc*: the error
    kind (:func:`error_kind`), detail (capped at ``MAX_DETAIL`` chars) and the payload inline
    up to ``MAX_INLINE_PAYLOAD`` chars, else a reference (the URL, or ``topic:key``)."""
    text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    inline = text if text is not None and len(text) <= MAX_INLINE_PAYLOAD else None
    ref = None if inline is not None or text is None else (url or f"{source_topic}:{key}")
    detail = getattr(exc, "detail", None) or str(exc) or type(exc).__name__
    return DeadLetter(
        stage=stage,
        error_kind=error_kind(exc),
        detail=detail[:MAX_DETAIL],
        attempt=attempt,
        source_topic=source_topic,
        key=key,
        url=url,
        payload=inline,
        payload_ref=ref,
        service=service,
        failed_at=datetime.now(UTC),
    )
