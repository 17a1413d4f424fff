"""The parking policy: a host that asks for a pause (Retry-After, 429) parks its link instead of
dead-lettering it at once. Only that link's task waits; other hosts' links keep flowing.

Plain functions with injected ``fetch`` and ``sleep``, so the policy is tested without a broker
or a network (``tests/unit/fetcher/test_parking.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from shared.errors import TransientError
from shared.messages import Link, Page
from shared.metrics import MESSAGES

logger = logging.getLogger(__name__)

#: A host that asks for a long pause parks its links this long at most per wait, up to
#: PARK_ROUNDS times, before they are dead-lettered (replayable with ``newsflow dlq replay``).
MAX_PARK_S = 600.0
PARK_ROUNDS = 3


async def fetch_patiently(
    fetch: Callable[[Link], Awaitable[Page]],
    link: Link,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    max_park_s: float = MAX_PARK_S,
    rounds: int = PARK_ROUNDS,
) -> Page:
    """``fetch(link)``, waiting out a host's requested pause (``TransientError.retry_after``,
    capped at *max_park_s*) up to *rounds* times, then one last try whose error propagates.

    Raises at once: an error without ``retry_after``, any non-transient error, and any error
    once *should_stop()* (the worker is shutting down: the link is dead-lettered now rather
    than held past the shutdown grace).
    """
    for _round in range(rounds):
        try:
            return await fetch(link)
        except TransientError as exc:
            if not exc.retry_after or should_stop():
                raise
            wait = min(exc.retry_after, max_park_s)
            logger.info("host %s asked for %.0fs; parking %s", link.host, wait, link.url)
            MESSAGES.labels("fetch", "retry", exc.kind).inc()
            await sleep(wait)
    return await fetch(link)
