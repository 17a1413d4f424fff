"""A wire copy whose confirmation reaches the storyteller before its original's (another
partition, or an earlier stated time in the same batch) still joins its original's story as
a copy."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import text

from services.storyteller.store import assign_articles
from services.storyteller.text import CharNgramEncoder
from services.writer.articles import write_batch
from tests.support.stories import enriched_from_eval

T0 = datetime.fromisoformat("2026-11-02T10:00:00+00:00")
ENTITIES = [
    {"key": "GPE:van", "kind": "GPE", "salience": 0.8, "mentions": 4},
    {"key": "ORG:kurdistan workers party", "kind": "ORG", "salience": 0.7, "mentions": 3},
]
ORIGINAL = "https://wire.example/2026/11/02/pkk-attack-van"
COPY = "https://paper.example/2026/11/02/pkk-attack-van-wire"


def _article(url: str, source: str, at: datetime, duplicate_of: str | None) -> dict:
    return {
        "canonical_url": url,
        "source": source,
        "language": "en",
        "published_at": at.isoformat(),
        "title": "Three soldiers killed in PKK attack in Van",
        "lead": "Three Turkish soldiers were killed when PKK militants attacked a post in Van.",
        "entities": ENTITIES,
        "duplicate_of": duplicate_of,
    }


async def _ids(sessions) -> dict[str, int]:
    async with sessions() as session:
        rows = await session.execute(text("SELECT id, canonical_url FROM articles"))
        return {r.canonical_url: r.id for r in rows}


async def _members(sessions) -> dict[str, tuple[int, str, str | None]]:
    async with sessions() as session:
        rows = await session.execute(
            text("SELECT canonical_url, story_id, role, copy_of FROM story_articles")
        )
        return {r.canonical_url: (r.story_id, r.role, r.copy_of) for r in rows}


@pytest.mark.parametrize("batches", ["one", "copy_first"])
async def test_copy_confirmed_before_its_original_is_still_a_copy(sessions, batches) -> None:
    """It was placed as an ordinary report: sorted by time before its original in one batch,
    or confirmed in an earlier batch, it opened the story as 'first_report' and the original
    joined it; the copy was never marked a copy."""
    # the copy's page states an earlier time than the original's (a wire copy re-dated)
    records = [
        enriched_from_eval(_article(ORIGINAL, "wire.example", T0, None)),
        enriched_from_eval(_article(COPY, "paper.example", T0 - timedelta(hours=1), ORIGINAL)),
    ]
    await write_batch(sessions, records)
    ids = await _ids(sessions)
    encoder = CharNgramEncoder()
    if batches == "one":
        await assign_articles(sessions, [ids[COPY], ids[ORIGINAL]], encoder)
    else:
        await assign_articles(sessions, [ids[COPY]], encoder)
        await assign_articles(sessions, [ids[ORIGINAL]], encoder)  # a redelivery: no change
    members = await _members(sessions)
    assert set(members) == {ORIGINAL, COPY}
    assert members[COPY][0] == members[ORIGINAL][0]
    assert members[COPY][1:] == ("copy", ORIGINAL)
    assert members[ORIGINAL][1] == "first_report"
