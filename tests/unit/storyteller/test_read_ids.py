"""``show_story`` answers None for ids no bigint can hold, without asking the database."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from services.cli import stories as cli_stories
from services.cli.main import build
from services.storyteller.read import MAX_STORY_ID, show_story


class _NoDb:
    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an out-of-range id must not reach PostgreSQL")


@pytest.mark.parametrize("story_id", [0, -1, MAX_STORY_ID + 1, 10**20])
async def test_out_of_range_id_is_no_story(story_id: int) -> None:
    assert await show_story(_NoDb(), story_id) is None  # type: ignore[arg-type]


def test_cli_bound_matches_the_read_side() -> None:
    assert cli_stories.MAX_STORY_ID == MAX_STORY_ID


def test_cli_rejects_huge_id_with_usage_error() -> None:
    result = CliRunner().invoke(build(), ["stories", "show", "99999999999999999999"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
