"""Per-origin pools: bounded number of origins, idle ones closed, requests still succeed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.fetcher.feeds import FeedItem
from services.fetcher.poll import _newest
from services.fetcher.service import Fetcher, build_transport
from services.fetcher.transport import PerOriginTransport
from tests.unit.fetcher.conftest import LoopbackServer, link, make_settings


async def _to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


async def test_origins_are_bounded_and_reused(server: LoopbackServer) -> None:
    server.static("/a", "<html><body>ok</body></html>")
    settings = make_settings(fetch_concurrency=1, poll_concurrency=1)  # at most 2 pools
    transport = build_transport(settings, resolver=_to_loopback)
    assert isinstance(transport, PerOriginTransport)
    fetcher = Fetcher(settings, session_factory=None, transport=transport)  # type: ignore[arg-type]
    await fetcher.start()
    try:
        for name in ("a.test", "b.test", "c.test", "a.test", "d.test"):
            page = await fetcher.fetch(link(f"http://{name}:{server.port}/a"))
            assert page.status_code == 200
            assert transport.origins <= 2
    finally:
        await fetcher.stop()
    assert transport.origins == 0
    assert len(server.hits) == 5


def test_big_documents_keep_the_newest_items() -> None:
    now = datetime(2026, 11, 22, tzinfo=UTC)
    items = [
        FeedItem(url=f"https://x.example/{i}", published_at=now - timedelta(hours=i))
        for i in range(10)
    ]
    items.append(FeedItem(url="https://x.example/undated"))
    kept = _newest(list(reversed(items)), 3)
    assert [i.url for i in kept] == [
        "https://x.example/0",
        "https://x.example/1",
        "https://x.example/2",
    ]
    assert _newest(items, 50) == items
