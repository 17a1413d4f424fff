"""Per-host politeness: at most N requests in flight and a minimum gap between request
starts (and from each request's end to the next start), per host, while many hosts proceed
concurrently.

A request first waits for its own host (slot + interval + any Retry-After block) and only then
takes a global slot, so a slow or blocked host never holds global capacity while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

#: Host records kept in memory; idle hosts beyond this are forgotten (a months-long run
#: sees far more hosts than it polls at once).
MAX_TRACKED_HOSTS = 50_000
#: A single Retry-After is honoured up to this long; beyond it the host is re-tried anyway.
MAX_HOST_BLOCK_S = 6 * 3600.0
#: A robots.txt Crawl-delay is honoured up to this (some sites ask for hours).
MAX_CRAWL_DELAY_S = 60.0


@dataclass(slots=True)
class _Host:
    slots: asyncio.Semaphore
    next_start: float = 0.0  # monotonic time before which no new request may start
    blocked_until: float = 0.0
    waiting: int = 0
    active: int = 0
    interval: float | None = None  # the host's own Crawl-delay, if longer than ours
    unsent: int = 0  # requests granted a turn whose bytes are not on the wire yet
    all_sent: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Politeness:
    """Shared limiter for one process. Use ``async with politeness.slot(host): ...``."""

    def __init__(
        self,
        *,
        global_concurrency: int,
        host_concurrency: int,
        host_interval_s: float,
        max_hosts: int = MAX_TRACKED_HOSTS,
    ) -> None:
        self._global = asyncio.Semaphore(global_concurrency)
        self._host_concurrency = host_concurrency
        self._interval = host_interval_s
        self._max_hosts = max_hosts
        self._hosts: OrderedDict[str, _Host] = OrderedDict()

    def _host(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            state = _Host(slots=asyncio.Semaphore(self._host_concurrency))
            self._hosts[host] = state
            self._evict()
        else:
            self._hosts.move_to_end(host)
        return state

    def _evict(self) -> None:
        if len(self._hosts) <= self._max_hosts:
            return
        now = time.monotonic()
        for name in list(self._hosts):
            if len(self._hosts) <= self._max_hosts:
                break
            st = self._hosts[name]
            if st.waiting == 0 and st.active == 0 and st.blocked_until <= now:
                del self._hosts[name]

    def block(self, host: str, seconds: float) -> None:
        """Hold back new requests to ``host`` for ``seconds`` (429/503 Retry-After)."""
        seconds = min(max(seconds, 0.0), MAX_HOST_BLOCK_S)
        state = self._host(host)
        state.blocked_until = max(state.blocked_until, time.monotonic() + seconds)

    def set_min_interval(self, host: str, seconds: float) -> None:
        """Space requests to ``host`` by at least ``seconds`` (robots.txt Crawl-delay)."""
        seconds = min(max(seconds, 0.0), MAX_CRAWL_DELAY_S)
        state = self._host(host)
        state.interval = seconds if seconds > self._interval else None

    def blocked_for(self, host: str) -> float:
        """Seconds until ``host`` may be contacted again (0 if not blocked)."""
        state = self._hosts.get(host)
        if state is None:
            return 0.0
        return max(0.0, state.blocked_until - time.monotonic())

    def _interval_of(self, state: _Host) -> float:
        return self._interval if state.interval is None else state.interval

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[Callable[[], None]]:
        """Wait for ``host``'s turn; yields ``mark_sent`` to call once the request is on the wire.

        With an interval, the next request's countdown starts when this one was actually
        sent (``mark_sent``) and again when it ends, never at the moment it was scheduled:
        event-loop or connect delays between scheduling and sending would otherwise let the
        server see two requests closer than the interval (measured: 15 ms apart for a 250 ms
        interval with 1,024 links in flight). Requests still overlap up to the concurrency.
        """
        state = self._host(host)
        state.waiting += 1
        try:
            await state.slots.acquire()
        finally:
            state.waiting -= 1
        try:
            while True:
                # One waiter at a time sleeps towards the host's next turn; the turn is claimed
                # only once a global slot is held, so queueing for global capacity cannot
                # squeeze two starts closer than the interval.
                async with state.lock:
                    # A loop, not one sleep: block() or a send may move the deadline meanwhile.
                    while True:
                        if state.unsent and self._interval_of(state) > 0:
                            await state.all_sent.wait()
                            continue
                        wait = max(state.next_start, state.blocked_until) - time.monotonic()
                        if wait <= 0:
                            break
                        await asyncio.sleep(wait)
                await self._global.acquire()
                now = time.monotonic()
                interval = self._interval_of(state)
                ready = now >= max(state.next_start, state.blocked_until)
                if ready and not (state.unsent and interval > 0):
                    state.next_start = now + interval
                    break
                self._global.release()
            state.active += 1
            state.unsent += 1
            state.all_sent.clear()
            sent = False

            def mark_sent() -> None:
                nonlocal sent
                if sent:
                    return
                sent = True
                state.unsent -= 1
                state.next_start = max(state.next_start, time.monotonic() + interval)
                if state.unsent == 0:
                    state.all_sent.set()

            try:
                yield mark_sent
            finally:
                mark_sent()  # failed before sending: release the host's queue all the same
                state.active -= 1
                self._global.release()
                # Also space the next start from this request's end: its bytes reached the
                # server before the response came back.
                state.next_start = max(state.next_start, time.monotonic() + interval)
        finally:
            state.slots.release()
