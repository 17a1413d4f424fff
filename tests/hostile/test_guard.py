"""The SSRF-guard hostile cases (fast, in-process, loopback only): with the guard on, a
redirect to a private address and a name that resolves to loopback end as ``ssrf_blocked``
dead letters, while the control page is fetched."""

from __future__ import annotations

from tests.hostile.guard import run_guard_cases


def test_guard_refuses_private_redirects_and_names_resolving_to_loopback() -> None:
    results = {r.name: r for r in run_guard_cases()}
    control = results.pop("guard_control")
    assert control.outcome.startswith("FETCHED status 200") and not control.blocked
    assert len(results) == 6
    for name, result in results.items():
        assert result.blocked, (name, result.outcome)
        assert result.outcome.startswith("DLQ fetch/ssrf_blocked"), (name, result.outcome)
