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


class _Aliases:
    """Answers the entity-key query from a tiny table: ref (lowercased) -> keys."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def execute(self, _stmt: Any, params: dict[str, Any]) -> Any:
        self.asked.append(params["ref"])
        return [(k,) for k in self.table.get(params["ref"].lower(), [])]


async def test_entity_keys_resolves_curated_alias_and_keeps_the_raw_ref() -> None:
    from services.storyteller.read import entity_keys

    pkk = "ORG:kurdistan workers party"
    db = _Aliases({pkk.lower(): [pkk, "ORG:pkk"]})
    keys = await entity_keys(
        db,  # type: ignore[arg-type]
        "  PKK ",
        curated=lambda s: pkk if s == "PKK" else None,
    )
    assert keys == sorted({"PKK", pkk, "ORG:pkk"})
    assert set(db.asked) == {"PKK", pkk}


@pytest.mark.parametrize(
    "args",
    [
        ["--min-sources", "3000000000"],  # above PostgreSQL's integer (cardinality())
        ["--min-sources", "99999999999999999999"],
        ["--limit", "9223372036854775808"],  # above bigint
        ["--limit", "99999999999999999999"],
    ],
)
def test_stories_list_rejects_numbers_the_database_cannot_hold(args: list[str]) -> None:
    """They reached asyncpg and ended in a DBAPIError traceback (exit 1)."""
    result = CliRunner().invoke(build(), ["stories", "list", *args])
    assert result.exit_code == 2
    assert "Invalid value for" in result.output and args[0] in result.output


@pytest.mark.parametrize("ref", ["GPE:türkiye", "GPE:Türkiye", "gpe:TÜRKİYE", " GPE:Turkiye's "])
async def test_entity_key_written_as_shown_finds_the_folded_key(ref: str) -> None:
    """`stories list --entity GPE:türkiye` listed nothing: the stored key is GPE:turkiye and
    only case was ignored, not diacritics or the Turkish dotted I."""
    from services.storyteller.read import entity_keys

    db = _Aliases({"gpe:turkiye": ["GPE:turkiye"]})
    keys = await entity_keys(db, ref)  # type: ignore[arg-type]
    assert "GPE:turkiye" in keys


async def test_entity_keys_leaves_a_ref_without_a_known_kind_alone() -> None:
    from services.storyteller.read import entity_keys

    db = _Aliases({})
    assert await entity_keys(db, "http://x") == ["http://x"]  # type: ignore[arg-type]
    assert await entity_keys(db, "FOO:Bar") == ["FOO:Bar"]  # type: ignore[arg-type]


@pytest.mark.parametrize("ref", ["", "   "])
def test_stories_list_rejects_an_empty_entity(ref: str) -> None:
    """An empty --entity listed nothing, silently, as if no story matched."""
    result = CliRunner().invoke(build(), ["stories", "list", "--entity", ref])
    assert result.exit_code == 2
    assert "--entity" in result.output and "Traceback" not in result.output
