"""The fetcher's parking policy (services/fetcher/parking.py), without a broker or network."""

from __future__ import annotations

import pytest

from services.fetcher.parking import fetch_patiently
from shared.errors import PermanentError, TransientError
from shared.messages import Link, Page
from tests.unit.fetcher.conftest import link

LINK = link("https://news.example/a")


class Script:
    """A fake fetch that raises the scripted errors in order, then returns a page."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.slept: list[float] = []

    async def fetch(self, item: Link) -> Page:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return Page(
            url=item.url,
            final_url=item.url,
            host=item.host,
            status_code=200,
            html="<html></html>",
            discovered_at=item.discovered_at,
            fetched_at=item.discovered_at,
        )

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def busy(retry_after: float | None) -> TransientError:
    return TransientError("429", kind="http_429", retry_after=retry_after)


async def test_a_requested_pause_is_waited_out_then_the_link_is_fetched() -> None:
    script = Script(busy(30), busy(5))
    page = await fetch_patiently(script.fetch, LINK, sleep=script.sleep)
    assert page.url == LINK.url
    assert script.slept == [30, 5]
    assert script.calls == 3


async def test_a_long_pause_is_capped_and_the_rounds_are_bounded() -> None:
    script = Script(*(busy(10_000) for _ in range(4)))
    with pytest.raises(TransientError):
        await fetch_patiently(script.fetch, LINK, sleep=script.sleep, max_park_s=60, rounds=3)
    assert script.slept == [60, 60, 60]  # three parks, then the last try's error propagates
    assert script.calls == 4


async def test_errors_without_a_pause_and_permanent_errors_are_not_parked() -> None:
    for error in (busy(None), PermanentError("gone", kind="http_410")):
        script = Script(error)
        with pytest.raises(type(error)):
            await fetch_patiently(script.fetch, LINK, sleep=script.sleep)
        assert script.slept == []
        assert script.calls == 1


async def test_nothing_is_parked_while_the_worker_stops() -> None:
    script = Script(busy(30))
    with pytest.raises(TransientError):
        await fetch_patiently(script.fetch, LINK, sleep=script.sleep, should_stop=lambda: True)
    assert script.slept == []
