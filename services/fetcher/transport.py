"""One small connection pool per origin behind a single httpx transport.

httpcore's pool scans every connection for every queued request; with a crawler's shape
(hundreds of origins, a few connections each) that is quadratic and was measured at ~70 % of
the fetcher's CPU (tests/bench/fetcher.py, 200 hosts). Politeness already caps in-flight
requests per host, so a per-origin pool of a few connections loses nothing, and each pool's
bookkeeping stays O(connections of that host).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx

logger = logging.getLogger(__name__)

Origin = tuple[bytes, bytes, int | None]


@dataclass(slots=True)
class _Shard:
    transport: httpx.AsyncBaseTransport
    active: int = 0


class _TrackedStream(httpx.AsyncByteStream):
    """Counts a response as active until its body is closed (streams outlive the call)."""

    def __init__(self, inner: httpx.AsyncByteStream, shard: _Shard) -> None:
        self._inner = inner
        self._shard = shard
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            if not self._closed:
                self._closed = True
                self._shard.active -= 1


class PerOriginTransport(httpx.AsyncBaseTransport):
    """Routes each request to its origin's own transport, made by ``factory`` on first use.

    At most ``max_origins`` pools are kept; beyond that the least recently used idle ones are
    closed (a months-long run meets far more hosts than it talks to at once).
    """

    def __init__(
        self, factory: Callable[[], httpx.AsyncBaseTransport], *, max_origins: int
    ) -> None:
        self._factory = factory
        self._max = max_origins
        self._shards: OrderedDict[Origin, _Shard] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    def _shard(self, origin: Origin) -> _Shard:
        shard = self._shards.get(origin)
        if shard is None:
            shard = _Shard(self._factory())
            self._shards[origin] = shard
            self._evict()
        else:
            self._shards.move_to_end(origin)
        return shard

    def _evict(self) -> None:
        excess = len(self._shards) - self._max
        if excess <= 0:
            return
        for origin in list(self._shards):
            if excess <= 0:
                break
            shard = self._shards[origin]
            if shard.active == 0:
                del self._shards[origin]
                excess -= 1
                task = asyncio.get_running_loop().create_task(shard.transport.aclose())
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        shard = self._shard((url.raw_scheme, url.raw_host, url.port))
        shard.active += 1
        try:
            response = await shard.transport.handle_async_request(request)
        except BaseException:
            shard.active -= 1
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _TrackedStream(response.stream, shard)
        return response

    async def aclose(self) -> None:
        shards, self._shards = list(self._shards.values()), OrderedDict()
        for shard in shards:
            with contextlib.suppress(Exception):  # closing sockets of a dead peer may fail
                await shard.transport.aclose()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    @property
    def origins(self) -> int:
        return len(self._shards)
