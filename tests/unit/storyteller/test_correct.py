"""An analyst's corrections, without a database: pins keep split stories apart, a story is
rebuilt from its members as the storyteller builds it, and the ``show`` page hint."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from services.storyteller.assign import Story, assign_roles
from services.storyteller.correct import _separate, rebuild
from services.storyteller.store import VECTOR_DTYPE
from tests.unit.storyteller.test_assign import board, item, vec

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
KIRKUK = {"ORG:islamic state": 0.9, "GPE:kirkuk": 0.9}


def _story(story_id: int, *items, pin: int | None = None) -> Story:
    story = Story(story_id, pin=pin)
    for one in items:
        story.absorb(one, copy_of=None)
    assign_roles(story)
    return story


def _two_halves(pin_a: int | None, pin_b: int | None):
    """Two stories of one incident (as a split leaves them) and a later article that scores
    high on both: without pins the storyteller merges them."""
    b = board()
    a = _story(101, item(KIRKUK, v=vec(1), source="a"), item(KIRKUK, hours=1, v=vec(1), source="b"))
    a.pin = pin_a
    half = _story(102, item(KIRKUK, hours=2, v=vec(1), source="c"), pin=pin_b)
    b.add_story(a)
    b.add_story(half)
    return b, b.assign(item(KIRKUK, hours=3, v=vec(1), source="d"))


def test_stories_pinned_apart_are_never_merged_but_later_articles_still_join() -> None:
    b, decision = _two_halves(101, 102)
    assert decision.action == "join" and decision.merged is None
    assert decision.story_id == 101  # the better candidate (more reports) still takes it
    assert b.stories[102].merged_into is None
    # the same board without pins merges: the check above is what keeps the split
    b, decision = _two_halves(None, None)
    assert decision.merged == (102, 101)


def test_a_pinned_story_still_merges_with_an_unpinned_one_and_passes_its_pin_on() -> None:
    b, decision = _two_halves(None, 102)
    assert decision.merged == (102, 101)
    assert b.stories[101].pin == 102  # the survivor carries the correction group
    b, decision = _two_halves(101, None)
    assert decision.merged == (102, 101) and b.stories[101].pin == 101


def test_separate_gives_each_story_its_own_group() -> None:
    a, c = Story(5), Story(9)
    _separate(a, c)
    assert (a.pin, c.pin) == (5, 9)
    a, c = Story(5, pin=2), Story(9)
    _separate(a, c)
    assert (a.pin, c.pin) == (2, 9)  # a group stays with the story that has it
    a, c = Story(5, pin=2), Story(9, pin=3)
    _separate(a, c)
    assert (a.pin, c.pin) == (2, 3)


@dataclass
class Row:
    """A ``story_articles`` row as the correction reads it."""

    article_id: int
    canonical_url: str
    url: str
    source: str
    language: str
    title: str
    published_at: datetime
    copy_of: str | None
    vector: bytes | None
    lead: str | None = None


def _row(n: int, hours: float, source: str, copy_of: str | None = None) -> Row:
    url = f"https://{source}/{n}"
    v = np.asarray(vec(n % 8), dtype=VECTOR_DTYPE).tobytes()
    return Row(n, url, url, source, "en", f"t{n}", T0 + timedelta(hours=hours), copy_of, v)


def test_rebuild_recomputes_roles_weights_and_span_as_the_storyteller_would() -> None:
    wire = _row(1, 0, "wire")
    copy = _row(2, 1, "client", copy_of=wire.canonical_url)
    later = _row(3, 30, "rudaw")
    entities = {1: {"GPE:kirkuk": 0.9}, 2: {"GPE:kirkuk": 0.8}, 3: {"GPE:kirkuk": 0.5}}
    whole = rebuild(7, [later, copy, wire], entities, pin=None)
    assert [m.article_id for m in whole.members] == [1, 2, 3]
    assert [m.role for m in whole.members] == ["first_report", "copy", "update"]
    assert whole.weights == {"GPE:kirkuk": 1.4}  # the copy adds nothing
    assert whole.counts == {"GPE:kirkuk": 3} and whole.reports == 2
    assert (whole.first_seen, whole.last_updated) == (wire.published_at, later.published_at)
    # the copy without its original (split apart): it is this story's own first report now
    alone = rebuild(8, [copy, later], entities, pin=3)
    assert [m.role for m in alone.members] == ["first_report", "update"]
    assert alone.members[0].copy_of == wire.canonical_url  # the fact is kept
    assert alone.weights == {"GPE:kirkuk": 1.3} and alone.pin == 3


def test_a_rebuilt_story_without_encoded_members_keeps_its_first_report_pending() -> None:
    """Lazy encoding leaves members without vectors: the rebuilt story must still be
    comparable by text later, so its first report becomes the pending opener (as when the
    storyteller opens a story), and a merge without an encoder carries it to the survivor."""
    wire = _row(1, 0, "wire")
    copy = _row(2, 1, "client", copy_of=wire.canonical_url)
    later = _row(3, 30, "rudaw")
    for row in (wire, copy, later):
        row.vector, row.lead = None, f"lead of {row.article_id}"
    entities = {1: {"GPE:kirkuk": 0.9}, 2: {"GPE:kirkuk": 0.8}, 3: {"GPE:kirkuk": 0.5}}
    story = rebuild(7, [later, copy, wire], entities, pin=None)
    assert story.vectors == [] and story.pending == (1, "t1. lead of 1")
    # with one encoded member there is a text representative: nothing pending
    later.vector = np.asarray(vec(3), dtype=VECTOR_DTYPE).tobytes()
    assert rebuild(7, [later, copy, wire], entities, pin=None).pending is None
    # a correction's board has no encoder: a merge keeps the pending opener
    b = board()
    b.add_story(story)
    other = _story(9, item({"GPE:kirkuk": 0.9}, hours=2, v=vec(1), source="x"))
    b.add_story(other)
    b._encode = None
    b.merge(9, 7)
    assert b.stories[7].pending == (1, "t1. lead of 1")
    assert len(b.stories[7].vectors) == 1


def test_page_hint_says_what_is_hidden_and_how_to_see_it() -> None:
    from services.cli.stories import page_hint

    def story(offset: int, shown: int, total: int) -> dict:
        return {"id": 4, "page": {"offset": offset, "shown": shown, "total": total}}

    assert page_hint(story(0, 3, 3)) is None
    first = page_hint(story(0, 50, 500))
    assert first is not None and "450 not shown" in first
    assert "--offset 50" in first and "--all" in first
    last = page_hint(story(450, 50, 500))
    assert last is not None and "articles 451-500 of 500" in last and "--offset" not in last
    beyond = page_hint(story(900, 0, 500))
    assert beyond is not None and "has 500" in beyond
