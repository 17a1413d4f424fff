"""shared.retry.isolate_batch: one bad item costs itself only; outages are waited out."""

from __future__ import annotations

import pytest

from shared import retry
from shared.errors import PermanentError, TransientError
from shared.retry import isolate_batch


async def test_bad_item_is_isolated_and_neighbours_are_written() -> None:
    calls: list[list[int]] = []

    async def work(items: list[int]) -> int:
        calls.append(items)
        if 2 in items:
            raise PermanentError("refused", kind="db_22021")
        return len(items)

    results, failed = await isolate_batch([1, 2, 3], work, what="test")
    assert results == [1, 1]
    assert [(item, exc.kind) for item, exc in failed] == [(2, "db_22021")]  # type: ignore[attr-defined]
    assert calls == [[1, 2, 3], [1], [2], [3]]


async def test_outage_is_retried_not_isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_sleep(_: float) -> None:
        return None

    monkeypatch.setattr(retry.asyncio, "sleep", no_sleep)
    attempts = 0

    async def work(items: list[int]) -> int:
        nonlocal attempts
        attempts += 1
        if attempts < 3:
            raise TransientError("database away", kind="db_down")
        return len(items)

    assert await isolate_batch([1, 2], work, what="test") == ([2], [])
    assert attempts == 3


async def test_a_single_item_batch_is_not_retried_alone() -> None:
    async def work(items: list[int]) -> int:
        raise PermanentError("refused", kind="db_54000")

    results, failed = await isolate_batch([7], work, what="test")
    assert results == [] and [item for item, _ in failed] == [7]
