"""Retention settings: a value retention cannot apply is refused when settings load."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.cli.ops.retention import _cutoff
from shared.settings import RETENTION_MAX_DAYS, Settings

DAY_SETTINGS = (
    "NEWSFLOW_RETENTION_PAGES_DAYS",
    "NEWSFLOW_RETENTION_SEEN_LINKS_DAYS",
    "NEWSFLOW_RETENTION_DEAD_LETTERS_DAYS",
    "NEWSFLOW_RETENTION_PENDING_DEAD_LETTERS_DAYS",
)


@pytest.mark.parametrize("name", DAY_SETTINGS)
@pytest.mark.parametrize("value", ["1e12", "99999999", "inf"])
def test_a_retention_too_long_to_be_a_date_is_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    # it used to load, and every retention pass then failed ("date value out of range")
    # for every table, once an hour, for as long as the run lasted
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError, match="less than or equal"):
        Settings(_env_file=None)


def test_the_longest_retention_allowed_gives_a_cut_off() -> None:
    assert _cutoff(datetime.now(UTC), RETENTION_MAX_DAYS) is not None
