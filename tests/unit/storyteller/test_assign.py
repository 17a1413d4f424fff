"""The assignment rules on hand-made articles (no model: vectors are made up)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from services.storyteller.assign import (
    JOIN_THRESHOLD,
    MAX_KEY_STORIES,
    MERGE_THRESHOLD,
    Item,
    Storyboard,
    assign_roles,
    decay,
    headline,
    place_conflict,
)

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
DIM = 8


def vec(*hot: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    for i in hot:
        v[i] = 1.0
    return v / np.linalg.norm(v)


_ids = itertools.count(1)


def item(
    entities: dict[str, float],
    *,
    hours: float = 0,
    v: np.ndarray | None = None,
    source: str = "a.example",
    dup: str | None = None,
    title: str = "t",
) -> Item:
    n = next(_ids)
    return Item(
        article_id=n,
        canonical_url=f"https://{source}/{n}",
        url=f"https://{source}/{n}",
        source=source,
        language="en",
        title=title,
        published_at=T0 + timedelta(hours=hours),
        entities=entities,
        vector=vec(0) if v is None else v,
        duplicate_of=dup,
    )


def board() -> Storyboard:
    counter = itertools.count(1)
    return Storyboard(new_id=lambda: next(counter), text_floor=0.0)


PKK_VAN = {"ORG:kurdistan workers party": 0.9, "GPE:van": 0.9, "GPE:turkiye": 0.4}
PKK_SIIRT = {"ORG:kurdistan workers party": 0.9, "GPE:siirt": 0.9, "GPE:turkiye": 0.4}


def test_same_incident_joins_and_other_place_opens_a_new_story() -> None:
    b = board()
    first = b.assign(item(PKK_VAN, source="a"))
    second = b.assign(item(PKK_VAN, hours=2, source="b"))
    assert first.action == "open" and second.action == "join"
    assert second.story_id == first.story_id
    # same actors, same text, two days later, another province: a second incident
    third = b.assign(item(PKK_SIIRT, hours=50, source="c"))
    assert third.action == "open" and third.story_id != first.story_id


def test_place_conflict_needs_both_main_places_to_differ() -> None:
    b = board()
    d = b.assign(item({"GPE:amedi": 0.9, "GPE:duhok": 0.5, "ORG:kurdistan workers party": 0.8}))
    story = b.stories[d.story_id]
    assert place_conflict({"GPE:zakho": 0.9, "GPE:duhok": 0.4}, story)
    # another outlet names only the province: no conflict (coarser, not different)
    assert not place_conflict({"GPE:duhok": 0.9}, story)
    # countries never decide
    assert not place_conflict({"GPE:iraq": 0.9}, story)


def test_time_decay() -> None:
    assert decay(timedelta(hours=3)) == 1.0
    assert decay(timedelta(hours=-3)) == 1.0
    assert decay(timedelta(days=3)) < 0.2


def test_near_duplicate_joins_its_originals_story_as_a_copy() -> None:
    b = board()
    original = item(PKK_VAN, source="wire")
    b.assign(original)
    # a copy with no entities and an unrelated vector still lands in the original's story
    copy = item({}, hours=1, v=vec(5), source="client", dup=original.canonical_url)
    decision = b.assign(copy)
    assert decision.action == "copy"
    assert decision.story_id == b.story_of_article[original.article_id]
    roles = {m.article_id: m.role for m in b.stories[decision.story_id].members}
    assert roles == {original.article_id: "first_report", copy.article_id: "copy"}


def test_redelivery_is_idempotent() -> None:
    b = board()
    one = item(PKK_VAN)
    first = b.assign(one)
    again = b.assign(one)
    assert again.action == "already" and again.story_id == first.story_id
    assert len(b.stories[first.story_id].members) == 1


def test_merge_redirects_the_smaller_story_and_keeps_it() -> None:
    b = board()
    entities = {"ORG:islamic state": 0.9, "GPE:kirkuk": 0.9}
    a = b.assign(item(entities, v=vec(1), source="a"))
    b.assign(item(entities, hours=1, v=vec(1), source="b"))
    # a second story about the same incident (forced: opened directly)
    other = b.stories[a.story_id]
    assert len(other.members) == 2
    c = item(entities, hours=2, v=vec(1), source="c")
    from services.storyteller.assign import Story

    lone = Story(999)
    lone.absorb(c, copy_of=None)
    assign_roles(lone)
    b.add_story(lone)
    d = b.assign(item(entities, hours=3, v=vec(1), source="d"))
    assert d.merged == (999, a.story_id)
    assert b.stories[999].merged_into == a.story_id  # redirected, not deleted
    assert b.resolve(999) == a.story_id
    assert len(b.stories[a.story_id].members) == 4


def test_text_only_articles_match_by_text_within_the_window() -> None:
    b = board()
    d = b.assign(item({"GPE:sinjar": 0.9}, v=vec(2, 3)))
    arabic = b.assign(item({}, hours=2, v=vec(2, 3), source="ar"))
    assert arabic.story_id == d.story_id
    far = b.assign(item({}, hours=24 * 6, v=vec(2, 3), source="ar2"))
    assert far.story_id != d.story_id  # outside the time window: not even a candidate


def test_candidates_come_from_the_index_not_a_scan() -> None:
    b = board()
    for i in range(30):
        b.assign(item({f"PERSON:someone {i}": 0.9, f"GPE:town {i}": 0.9}, v=vec(i % DIM)))
    probe = item({"PERSON:someone 7": 0.9, "GPE:town 7": 0.9})
    ids, _ = b.candidates(probe)
    assert ids == [b.story_of_article[probe.article_id - 23]]


def test_a_very_common_key_does_not_retrieve() -> None:
    b = board()
    for i in range(MAX_KEY_STORIES + 5):
        b.assign(item({"GPE:turkiye": 0.9, f"GPE:town {i}": 0.9}, v=vec(i % DIM)))
    ids, frequency = b.candidates(item({"GPE:turkiye": 0.9, "GPE:town 3": 0.9}))
    assert frequency["GPE:turkiye"] > MAX_KEY_STORIES
    assert len(ids) == 1


def test_roles_and_headline() -> None:
    b = board()
    first = item(PKK_VAN, source="x", v=vec(0, 1), title="first")
    b.assign(first)
    b.assign(item(PKK_VAN, hours=1, source="y", v=vec(0), title="central"))
    b.assign(item(PKK_VAN, hours=2, source="x", v=vec(0), title="same source later"))
    b.assign(item(PKK_VAN, hours=20, source="z", v=vec(0), title="next day"))
    story = b.stories[b.story_of_article[first.article_id]]
    assert [m.role for m in story.members] == ["first_report", "independent", "update", "update"]
    top = headline(story)
    assert top is not None and top.title != "first"


@pytest.mark.parametrize("hours", [0.0, 5.0])
def test_out_of_order_arrival_keeps_the_earliest_as_first_report(hours: float) -> None:
    b = board()
    late = item(PKK_VAN, hours=6, source="late")
    early = item(PKK_VAN, hours=hours, source="early")
    b.assign(late)
    b.assign(early)
    story = b.stories[b.story_of_article[late.article_id]]
    assert story.members[0].article_id == early.article_id
    assert story.members[0].role == "first_report"


def _reference(
    b: Storyboard, it: Item, encode: Callable[[list[str]], np.ndarray]
) -> tuple[str, int | None, tuple[int, int] | None]:
    """The decision of scoring every candidate with text (the rule before lazy encoding),
    on the board as it is, without changing it: (action, story or None for open, merge)."""
    import copy
    import dataclasses

    vector = encode([it.text])[0].astype(np.float16).astype(np.float32)
    it = dataclasses.replace(it, vector=vector)  # scored with text, not cached on the board
    if it.duplicate_of and it.duplicate_of in b.story_of_url:
        return "copy", b.resolve(b.story_of_url[it.duplicate_of]), None
    ids, frequency = b.candidates(it)
    scored = sorted(
        (b.score(it, b.stories[s], frequency) for s in ids), key=lambda s: (-s.score, s.story_id)
    )
    if not scored or scored[0].score < JOIN_THRESHOLD:
        return "open", None, None
    best = copy.deepcopy(b.stories[scored[0].story_id])
    best.absorb(it, copy_of=None)
    for runner_up in scored[1:]:
        if runner_up.score < MERGE_THRESHOLD:
            break
        other = b.stories[runner_up.story_id]
        if b._compatible(best, other):
            small, large = sorted((other, best), key=lambda s: (s.size, -s.id))
            return "join", large.id, (small.id, large.id)
    return "join", best.id, None


def test_lazy_encoding_decides_as_scoring_everything_with_text() -> None:
    """On the evaluation set (n-gram vectors: cheap), every decision taken with text encoded
    only when needed is the one full scoring gives on the same board, and most articles are
    placed without encoding."""
    from services.storyteller.evaluate import items_of, load_set
    from services.storyteller.text import CharNgramEncoder

    encoder = CharNgramEncoder()
    for entities in ("enricher", "modelled"):
        items = items_of(load_set(entities=entities), encoder)
        b = Storyboard(new_id=itertools.count(1).__next__, text_floor=0.0, encode=encoder.encode)
        for it in items:
            action, story, merged = _reference(b, it, encoder.encode)
            decision = b.assign(it)
            assert decision.action == action, it.article_id
            assert story is None or decision.story_id == story
            assert decision.merged == merged
        assert 0 < b.encoded < len(items) / 2
        assert all(b.known_vector(i) is None for i in items if i.duplicate_of)


def test_decided_on_entities_without_encoding_and_openers_wait_until_compared() -> None:
    calls: list[str] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.extend(texts)
        return np.stack([vec(0) for _ in texts])

    b = Storyboard(new_id=itertools.count(1).__next__, text_floor=0.0, encode=encode)

    def lazy(entities: dict[str, float], hours: float, text: str) -> Item:
        it = item(entities, hours=hours)
        return dataclasses.replace(it, vector=None, text=text)

    van = b.assign(lazy(PKK_VAN, 0, "opener"))  # no candidate: opens, nothing to compare
    assert van.action == "open" and calls == []
    assert b.stories[van.story_id].pending is not None
    same = b.assign(lazy(PKK_VAN, 1, "same names"))  # entities alone clear the bar
    assert same.action == "join" and same.story_id == van.story_id and calls == []
    other = b.assign(lazy(PKK_SIIRT, 2, "other place"))  # place conflict: out without text
    assert other.action == "open" and calls == []
    # the actor alone: either story could take it, so its text decides, and the two
    # pending openers are encoded to be compared with
    weak = b.assign(lazy({"ORG:kurdistan workers party": 0.9}, 3, "actor only"))
    assert weak.action == "join"
    assert sorted(calls) == ["actor only", "opener", "other place"]
    assert b.stories[van.story_id].pending is None and van.story_id in b.settled
    assert b.reasons == {"entities": 3, "contention": 1, "opener": 2}


@pytest.mark.parametrize("encoded", [False, True])
def test_headline_prefers_a_titled_report(encoded: bool) -> None:
    """A page without a title (stored as '') opened a story; a titled report joined it: the
    story's headline stayed '' (a blank row in `stories list`)."""
    b = board()
    untitled = item(PKK_VAN, source="x", v=vec(0), title="")
    b.assign(untitled)
    b.assign(item(PKK_VAN, hours=1, source="y", v=vec(0, 1), title="PKK attack in Van"))
    story = b.stories[b.story_of_article[untitled.article_id]]
    if not encoded:
        for m in story.members:
            m.vector = None
    top = headline(story)
    assert top is not None and top.title == "PKK attack in Van"


def test_headline_of_untitled_reports_only_is_still_a_member() -> None:
    b = board()
    untitled = item(PKK_VAN, source="x", title="")
    b.assign(untitled)
    top = headline(b.stories[b.story_of_article[untitled.article_id]])
    assert top is not None and top.article_id == untitled.article_id
