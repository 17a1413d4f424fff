"""Supervisor recovery bookkeeping, without a stack (the stack calls are replaced)."""

from __future__ import annotations

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
