"""Supervisor recovery bookkeeping, without a stack (the stack calls are replaced)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest

from services.cli import supervisor as sup
from shared import stack
from shared.settings import Settings


async def test_a_broker_recovery_settles_a_postgres_recovery_that_failed_on_the_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # kill -9 of PostgreSQL then of Tansu: PostgreSQL came back, its re-drive failed on the
    # dead broker ("recovery of postgres failed"), the broker's recovery re-drove everything;
    # but postgres stayed in the failing set: the panel kept the failure notice and a later
    # loss of PostgreSQL was not announced
    s = sup.Supervisor(Settings())
    calls: list[str] = []

    async def noop(*_a: Any, **_kw: Any) -> None:
        calls.append("step")

    async def redrive(*_a: Any, **_kw: Any) -> dict[str, Any]:
        return {"total": 3}

    monkeypatch.setattr(stack, "restart", lambda home, name: calls.append("restart " + name))
    monkeypatch.setattr(s, "_stop_children", noop)
    monkeypatch.setattr(s, "_create_topics", noop)
    monkeypatch.setattr(s, "_spawn", noop)
    monkeypatch.setattr(s, "_redrive", redrive)
    s._failing.add("postgres")
    await s._recover(None, stack.Fault("kafka", "gone", "kafka (pid 1) is gone"))
    assert "restart kafka" in calls
    assert s._failing == set()
    assert s.recoveries[-1]["component"] == "kafka" and not s.recovering


class FlakyRedrive:
    """``Supervisor._redrive`` that fails *failures* times (the restarted component does not
    answer yet), then re-drives *total* items."""

    def __init__(self, failures: int, total: int = 5) -> None:
        self.failures = failures
        self.total = total
        self.calls = 0

    async def __call__(self, *_a: Any, **_kw: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError("connection refused: the database system is starting up")
        return {"total": self.total}


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]


async def test_a_failed_redrive_is_retried_with_backoff_until_it_succeeds(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # PostgreSQL restarted by the watchdog but still starting up: the re-drive right after
    # the restart fails. It used to be lost: the next probe found PostgreSQL healthy, so
    # nothing re-drove the work the killed server may have lost
    s = sup.Supervisor(Settings())
    flaky = FlakyRedrive(failures=2)
    monkeypatch.setattr(stack, "restart", lambda home, name: None)
    monkeypatch.setattr(s, "_redrive", flaky)
    caplog.set_level("INFO", logger=sup.__name__)

    await s._recover(None, stack.Fault("postgres", "gone", "postgres (pid 1) is gone"))
    assert s.recoveries[-1]["redrive"] == "pending"
    assert s._redrive_owed is not None and flaky.calls == 1
    assert len(_errors(caplog)) == 1 and "retrying with backoff" in _errors(caplog)[0]
    assert "retried until it succeeds" in s._current_notice()

    await s._retry_owed_redrive(None)  # the backoff has not passed: no attempt
    assert flaky.calls == 1

    s._redrive_next_at = 0.0
    await s._retry_owed_redrive(None)  # fails again: quietly, and waits twice as long
    assert flaky.calls == 2 and len(_errors(caplog)) == 1
    wait = s._redrive_next_at - time.monotonic()
    assert 2 * sup.REDRIVE_RETRY_FIRST_S - 0.5 < wait <= 2 * sup.REDRIVE_RETRY_FIRST_S

    s._redrive_next_at = 0.0
    await s._retry_owed_redrive(None)
    assert flaky.calls == 3 and s._redrive_owed is None
    assert "re-drove 5 unfinished item(s) (PostgreSQL restarted) after 2 failed" in s.notice
    s._redrive_next_at = 0.0
    await s._retry_owed_redrive(None)  # nothing owed any more
    assert flaky.calls == 3

    # the next episode is news again
    flaky.failures, flaky.calls = 1, 0
    await s._recover(None, stack.Fault("postgres", "gone", "postgres (pid 2) is gone"))
    assert len(_errors(caplog)) == 2


async def test_a_broker_recovery_starts_the_workers_even_when_its_redrive_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the workers are stopped for a broker recovery; a failing re-drive used to skip their
    # restart, leaving a run with no workers and nothing to say so
    s = sup.Supervisor(Settings(), once=True)
    spawned: list[bool] = []
    reoffered: list[bool] = []

    async def noop(*_a: Any, **_kw: Any) -> None:
        return None

    async def spawn(*_a: Any, **_kw: Any) -> None:
        spawned.append(True)

    async def reoffer(*_a: Any, **_kw: Any) -> None:
        reoffered.append(True)

    flaky = FlakyRedrive(failures=1, total=7)
    monkeypatch.setattr(stack, "restart", lambda home, name: None)
    monkeypatch.setattr(s, "_stop_children", noop)
    monkeypatch.setattr(s, "_create_topics", noop)
    monkeypatch.setattr(s, "_spawn", spawn)
    monkeypatch.setattr(s, "_redrive", flaky)
    monkeypatch.setattr(s, "_reoffer_unpolled_feeds", reoffer)
    await s._recover(None, stack.Fault("kafka", "gone", "kafka (pid 1) is gone"))
    assert spawned == [True] and reoffered == [] and s._redrive_owed is not None
    s._redrive_next_at = 0.0
    await s._retry_owed_redrive(None)
    # the owed re-drive also offers the --once run's unpolled feeds again
    assert flaky.calls == 2 and reoffered == [True] and s._redrive_owed is None


async def test_the_watchdog_retries_an_owed_redrive_without_a_flood(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # a re-drive that keeps failing for a while: the watchdog loop retries it with a
    # doubling delay (not at every probe) and says so once
    s = sup.Supervisor(Settings(watchdog_interval_s=0.01))
    flaky = FlakyRedrive(failures=10**6)

    class HealthyWatch:
        def __init__(self, *_a: Any, **_kw: Any) -> None:
            pass

        def check(self) -> None:
            return None

    monkeypatch.setattr(stack, "StackWatch", HealthyWatch)
    monkeypatch.setattr(sup, "REDRIVE_RETRY_FIRST_S", 0.02)
    monkeypatch.setattr(sup, "REDRIVE_RETRY_MAX_S", 0.16)
    monkeypatch.setattr(s, "_redrive", flaky)
    caplog.set_level("INFO", logger=sup.__name__)
    await s._redrive_or_owe(None, why="PostgreSQL restarted")
    guard = asyncio.create_task(s._guard(None))
    await asyncio.sleep(1.0)
    guard.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await guard
    # ~100 probes in that second; delays 0.02, 0.04, 0.08, then 0.16: about 8 attempts
    assert 4 <= flaky.calls <= 12
    assert len(_errors(caplog)) == 1
    flaky.failures = 0
    s._redrive_next_at = 0.0
    await s._retry_owed_redrive(None)
    assert s._redrive_owed is None
