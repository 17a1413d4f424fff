"""Fetcher integration fixtures: the unit tests' loopback server plus a migrated database."""

from __future__ import annotations

from tests.unit.fetcher.conftest import make_fetcher, server  # noqa: F401  (re-exported fixtures)
