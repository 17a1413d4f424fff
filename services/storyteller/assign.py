"""Streaming story assignment: one article in, one decision out (join, open, merge).

Pure and in memory; :mod:`services.storyteller.store` loads the candidate stories of a batch
from PostgreSQL into a :class:`Storyboard`, runs it and writes the changes back.

For each stored article, in publication order:

1. A near-duplicate (``duplicate_of`` set by the parser) joins its original's story, as a copy.
2. Candidates come from the index, never from a scan of every story: stories filed under the
   article's entity keys whose coverage is inside the time window (``WINDOW``). Keys that
   file more than ``MAX_KEY_STORIES`` stories in the window (``GPE:turkiye``) do not retrieve,
   they only score. An article with no retrieving key (Arabic copy: the enricher finds no
   names in it) is compared with the stories of its time window by text alone.
3. Each candidate is scored (:func:`score`): shared salient entities weighted by how rare
   they are among active stories, plus text similarity of title + lead to the story's
   nearest reports, times a time decay over the gap to the story's latest article. A place conflict
   (the article's main specific place is not among the story's places and the story's main
   place is not among the article's) rules a candidate out: same actors in Van and in Siirt
   are two incidents.
4. The best candidate at ``JOIN_THRESHOLD`` or above is joined; otherwise a story opens. If a
   second candidate also scores ``MERGE_THRESHOLD`` or more and the two stories do not
   conflict, the smaller is merged into the larger (redirected, never deleted); two stories
   an analyst separated (different ``Story.pin``) are never merged.

Text is encoded only when it can change the decision (:meth:`Storyboard.assign`): each
candidate's entity part is known without text and text adds at most ``TEXT_HEADROOM`` (times
the decay), so a candidate that cannot reach ``JOIN_THRESHOLD`` even with identical text is out,
and a best candidate that clears it on entities alone while no other could catch up is
joined without text. Only the articles left in contention are encoded (one encoder call
each, ~35 ms for E5), and only encoded reports serve as a story's text representatives, so
a later comparison never has to encode older articles, with one exception: an article that
opens a story without any candidate is left pending (``Story.pending``) and encoded the first
time another article's text is compared with its story (most such stories never are).

Thresholds and weights are the values measured on ``tests/fixtures/storyteller/eval.json``
(README "Stories"); they are constants here so a change shows in review.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import numpy as np

#: how far apart (publication time) an article and a story's latest article may be
WINDOW = timedelta(days=3)
#: hours of gap that cost nothing; beyond, the score decays with this time constant
DECAY_GRACE_H = 12.0
DECAY_TAU_H = 30.0
#: entities below this salience are background mentions: they neither retrieve nor score
MIN_SALIENCE = 0.15
#: a place needs this salience to be an article's "main place" in the conflict rule
PLACE_SALIENCE = 0.3
#: a key filing more active stories than this is too common to retrieve candidates
MAX_KEY_STORIES = 64
#: a key's weight is log(1 + RARITY_SCALE / (1 + active stories filed under it)): a name
#: few live stories share tells more than one most of them share
RARITY_SCALE = 50.0
WEIGHT_DIGITS = 4
#: report vectors a story keeps for text comparison
REPRESENTATIVES = 8
W_ENTITIES = 0.55
W_TEXT = 0.45
#: when article and story share names, text adds ``W_TEXT * similarity`` but at most this:
#: it lifts a partial entity match over the join bar (a report naming other actors at the
#: same place), it cannot make a story that shares a minor name the best match. Measured on
#: the evaluation set: the same quality as no cap down to 0.2 (0.15 splits the three-day
#: story); on the benchmark it halves the articles whose text must be encoded, since a
#: candidate whose entity part is under JOIN_THRESHOLD - TEXT_HEADROOM is out without text
TEXT_HEADROOM = 0.2
JOIN_THRESHOLD = 0.36
#: text alone (an article or story without names) must reach this to join
TEXT_ONLY_THRESHOLD = 0.4
MERGE_THRESHOLD = 0.55
#: a later article from a source already in the story, or this long after the first
#: report, is an update rather than an independent report
UPDATE_AFTER = timedelta(hours=18)
#: places too broad to tell incidents apart (countries, regions): never in the place rule
BROAD_PLACES: frozenset[str] = frozenset(
    {
        "GPE:turkiye", "GPE:iraq", "GPE:syria", "GPE:iran", "GPE:kurdistan region",
        "LOC:middle east", "GPE:united states", "GPE:russia", "GPE:israel",
        "GPE:northern cyprus", "GPE:lebanon", "GPE:jordan",
    }
)  # fmt: skip
PLACE_KINDS = ("GPE:", "LOC:", "FAC:")

Role = Literal["first_report", "independent", "copy", "update"]


@dataclass(frozen=True, slots=True)
class Item:
    """One stored article as the storyteller sees it (from the DB or the evaluation set).

    ``entities``: key -> salience (0..1); ``published_at`` timezone-aware;
    ``vector``: L2-normalised text vector of title + lead, or None until the board needs it
    (then ``text``, the encoder's input, is encoded by the board's encoder).
    """

    article_id: int
    canonical_url: str
    url: str
    source: str
    language: str | None
    title: str
    published_at: datetime
    entities: dict[str, float]
    vector: np.ndarray | None
    duplicate_of: str | None = None
    text: str = ""


@dataclass(slots=True)
class Member:
    article_id: int
    canonical_url: str
    url: str
    source: str
    language: str | None
    title: str
    published_at: datetime
    copy_of: str | None
    #: None when the article was placed without its text being encoded
    vector: np.ndarray | None
    role: Role = "independent"


@dataclass(slots=True)
class Story:
    id: int
    members: list[Member] = field(default_factory=list)
    #: key -> summed salience over the story's own reports (copies add nothing)
    weights: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    #: text vectors of up to ``REPRESENTATIVES`` encoded reports (the first ones and the
    #: latest): what a new article's text is compared with, without loading every member
    vectors: list[np.ndarray] = field(default_factory=list)
    first_seen: datetime | None = None
    last_updated: datetime | None = None
    merged_into: int | None = None
    #: reports (non-copies) folded into the weights
    reports: int = 0
    #: articles in the story (members may be only partly loaded: the database path)
    size: int = 0
    #: an analyst's correction group (``newsflow stories split|move``): stories with
    #: different pins were separated by hand and are never merged again automatically
    pin: int | None = None

    #: the opener's (article id, text) while it is not encoded: an article that opened the
    #: story with no candidate to compare is encoded only when a later article's text is
    #: compared with the story; it stands first among the representatives all along
    pending: tuple[int, str] | None = None

    #: (places, main place) computed from the weights, dropped when they change
    _place_cache: tuple[dict[str, float], str | None] | None = None

    @property
    def places(self) -> dict[str, float]:
        return self._places()[0]

    def main_place(self) -> str | None:
        return self._places()[1]

    def _places(self) -> tuple[dict[str, float], str | None]:
        if self._place_cache is None:
            places = {k: w for k, w in self.weights.items() if _specific_place(k)}
            top = max(sorted(places), key=places.__getitem__) if places else None
            self._place_cache = (places, top)
        return self._place_cache

    def absorb(self, item: Item, *, copy_of: str | None, vector: np.ndarray | None = None) -> None:
        """Add *item* (its text vector: *vector*, else ``item.vector``, else unknown)."""
        vector = item.vector if vector is None else vector
        self.members.append(
            Member(
                item.article_id,
                item.canonical_url,
                item.url,
                item.source,
                item.language,
                item.title,
                item.published_at,
                copy_of,
                vector,
            )
        )
        self.size += 1
        if self.first_seen is None or item.published_at < self.first_seen:
            self.first_seen = item.published_at
        if self.last_updated is None or item.published_at > self.last_updated:
            self.last_updated = item.published_at
        for key in item.entities:
            self.counts[key] = self.counts.get(key, 0) + 1
        if copy_of is not None:
            return  # a wire copy says nothing new: it must not outweigh independent reports
        self.reports += 1
        self._place_cache = None
        for key, salience in item.entities.items():
            if salience >= MIN_SALIENCE:
                # rounded as stored (4 places), so a story scores the same whether it was
                # built in this batch or loaded from the database
                self.weights[key] = round(self.weights.get(key, 0.0) + salience, WEIGHT_DIGITS)
        if vector is None:
            return  # placed on entities alone: not a text representative
        self.vectors.append(vector.astype(np.float32))
        waiting = 1 if self.pending is not None else 0  # the opener's place, first
        if len(self.vectors) + waiting > REPRESENTATIVES:
            del self.vectors[REPRESENTATIVES // 2 - waiting]  # keep the first half, slide the rest

    def absorb_story(self, other: Story) -> None:
        """Take *other*'s members and state. A board with an encoder settles both pending
        openers first; without one (an analyst's correction from the command line) the
        survivor keeps its pending opener, else takes *other*'s, and a second one is dropped
        as a representative (its article stays a member)."""
        if self.pending is None:
            self.pending = other.pending
        self._place_cache = None
        self.pin = self.pin if self.pin is not None else other.pin
        for member in other.members:
            self.members.append(member)
        for key, weight in other.weights.items():
            self.weights[key] = round(self.weights.get(key, 0.0) + weight, WEIGHT_DIGITS)
        for key, count in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + count
        half = REPRESENTATIVES // 2
        waiting = 1 if self.pending is not None else 0  # the opener's place, first
        self.vectors = (self.vectors[:half] + other.vectors[:half] + self.vectors[half:])[
            : REPRESENTATIVES - waiting
        ]
        self.reports += other.reports
        self.size += other.size
        for when in (other.first_seen, other.last_updated):
            if when is None:
                continue
            if self.first_seen is None or when < self.first_seen:
                self.first_seen = when
            if self.last_updated is None or when > self.last_updated:
                self.last_updated = when


def _specific_place(key: str) -> bool:
    return key.startswith(PLACE_KINDS) and key not in BROAD_PLACES


def main_place(entities: dict[str, float]) -> str | None:
    """The article's most salient specific place (ties by key), if salient enough."""
    places = [(s, k) for k, s in entities.items() if _specific_place(k) and s >= PLACE_SALIENCE]
    return max(places)[1] if places else None


def place_conflict(entities: dict[str, float], story: Story) -> bool:
    """True when the article and the story name different places as their main one."""
    mine = main_place(entities)
    theirs = story.main_place()
    if mine is None or theirs is None:
        return False
    return mine not in story.places and theirs not in entities


def entity_similarity(entities: dict[str, float], story: Story, frequency: dict[str, int]) -> float:
    """Weighted cosine of the article's salience vector and the story's mean salience,
    each key weighted by its rarity among active stories (``RARITY_SCALE``)."""
    dot = mine = theirs = 0.0
    reports = max(1, story.reports)
    for key, salience in entities.items():
        if salience < MIN_SALIENCE:
            continue
        rarity = math.log(1 + RARITY_SCALE / (1 + frequency.get(key, 0)))
        a = salience * rarity
        mine += a * a
        weight = story.weights.get(key)
        if weight is not None:
            dot += a * min(1.0, weight / reports) * rarity
    for key, weight in story.weights.items():
        rarity = math.log(1 + RARITY_SCALE / (1 + frequency.get(key, 0)))
        b = min(1.0, weight / reports) * rarity
        theirs += b * b
    if not mine or not theirs:
        return 0.0
    return dot / math.sqrt(mine * theirs)


def decay(gap: timedelta) -> float:
    """1.0 within ``DECAY_GRACE_H`` hours, then exp(-(hours - grace) / tau)."""
    hours = abs(gap.total_seconds()) / 3600
    return math.exp(-max(0.0, hours - DECAY_GRACE_H) / DECAY_TAU_H)


@dataclass(frozen=True, slots=True)
class Scored:
    story_id: int
    score: float
    entities: float
    text: float


@dataclass(frozen=True, slots=True)
class Bound:
    """A candidate's score before text is known: ``low`` (the entity part: text adds
    nothing) to ``high`` (text identical). Equal when text cannot matter (a place conflict)."""

    story_id: int
    low: float
    high: float
    entities: float


@dataclass(frozen=True, slots=True)
class Decision:
    """What happened to one article: ``action`` join | open | copy | already; with the
    story it ended in, its score, and a merged story id when a merge happened."""

    article_id: int
    story_id: int
    action: Literal["join", "open", "copy", "already"]
    score: float = 0.0
    merged: tuple[int, int] | None = None  # (from story, into story)


class Storyboard:
    """Active stories, their entity and time indexes, and the assignment rules.

    ``new_id`` allocates story ids (a counter here, a sequence in PostgreSQL).
    ``text_floor`` is the encoder's unrelated-text cosine (:mod:`.text`).
    ``encode`` turns texts into L2-normalised vectors (an encoder's ``encode``); it is called
    for an item without a vector the first time a decision needs its text. ``encoded``
    counts those calls' texts.
    """

    def __init__(
        self,
        *,
        new_id: Callable[[], int],
        text_floor: float,
        full_members: bool = True,
        encode: Callable[[list[str]], np.ndarray] | None = None,
    ) -> None:
        self.stories: dict[int, Story] = {}
        self.by_key: dict[str, set[int]] = {}
        self.by_day: dict[int, set[int]] = {}
        self.story_of_url: dict[str, int] = {}
        self.story_of_article: dict[int, int] = {}
        #: live stories per key known from elsewhere (the database's index over the batch
        #: window): a key counts as at least this common even if few of its stories are loaded
        self.key_counts: dict[str, int] = {}
        #: False when stories hold only this batch's new members (the database path loads
        #: the rest before writing): roles are then assigned at write time
        self.full_members = full_members
        self._new_id = new_id
        self._floor = text_floor
        self._encode = encode
        #: text vectors computed here, by article id (float16-rounded, as they are stored)
        self.vectors: dict[int, np.ndarray] = {}
        self.encoded = 0
        #: why articles were encoded (``contention``; ``merge``; ``opener``: a pending
        #: opener settled) or not (``entities``: decided without text; ``copy``)
        self.reasons: Counter[str] = Counter()
        #: stories whose pending opener was encoded here -> that opener's article id (their
        #: rows must record it)
        self.settled: dict[int, int] = {}

    # --- the index ----------------------------------------------------------------------

    def add_story(self, story: Story) -> None:
        """File a story (loaded, or just built) under its keys and days."""
        self.stories[story.id] = story
        if story.merged_into is not None:
            return
        for key in story.weights:
            self.by_key.setdefault(key, set()).add(story.id)
        if story.last_updated is not None and story.first_seen is not None:
            for day in _days(story.first_seen, story.last_updated):
                self.by_day.setdefault(day, set()).add(story.id)
        for member in story.members:
            self.story_of_url[member.canonical_url] = story.id
            self.story_of_article[member.article_id] = story.id

    def _reindex(self, story: Story) -> None:
        self.add_story(story)

    def _unindex(self, story: Story) -> None:
        for key in story.weights:
            self.by_key.get(key, set()).discard(story.id)
        if story.first_seen is not None and story.last_updated is not None:
            for day in _days(story.first_seen, story.last_updated):
                self.by_day.get(day, set()).discard(story.id)

    def resolve(self, story_id: int) -> int:
        """Follow merge redirects to the live story."""
        seen = 0
        while (target := self.stories[story_id].merged_into) is not None and seen < 32:
            story_id, seen = target, seen + 1
        return story_id

    def _active(self, story_id: int, when: datetime) -> bool:
        story = self.stories[story_id]
        if story.merged_into is not None or story.last_updated is None:
            return False
        assert story.first_seen is not None
        return story.first_seen - WINDOW <= when <= story.last_updated + WINDOW

    def candidates(self, item: Item) -> tuple[list[int], dict[str, int]]:
        """Candidate story ids (sorted) and each retrieving key's active-story count."""
        frequency: dict[str, int] = {}
        found: set[int] = set()
        for key, salience in item.entities.items():
            if salience < MIN_SALIENCE:
                continue
            known = self.key_counts.get(key, 0)
            if known > MAX_KEY_STORIES:  # too common to retrieve: no need to list its stories
                frequency[key] = known
                continue
            active = {s for s in self.by_key.get(key, ()) if self._active(s, item.published_at)}
            frequency[key] = max(len(active), known)
            if frequency[key] <= MAX_KEY_STORIES:
                found |= active
        if not found and not any(n <= MAX_KEY_STORIES for n in frequency.values()):
            # nothing specific to retrieve by (no names, or only very common ones): the
            # time window is the index; text does the matching
            start = item.published_at - WINDOW
            for day in _days(start, item.published_at + WINDOW):
                found |= {s for s in self.by_day.get(day, ()) if self._active(s, item.published_at)}
        return sorted(found), frequency

    # --- scoring ------------------------------------------------------------------------

    def _gap_decay(self, item: Item, story: Story) -> float:
        assert story.last_updated is not None
        gap = (
            min(
                abs(item.published_at - story.last_updated),
                abs(item.published_at - story.first_seen),
            )
            if story.first_seen
            else abs(item.published_at - story.last_updated)
        )
        return decay(gap)

    @staticmethod
    def _text_only(item: Item, story: Story) -> bool:
        # one side has no names (Arabic copy the enricher finds nothing in): text alone
        # decides, and must be stronger (``TEXT_ONLY_THRESHOLD`` instead of the join one)
        return not any(s >= MIN_SALIENCE for s in item.entities.values()) or not story.weights

    def bound(self, item: Item, story: Story, frequency: dict[str, int]) -> Bound:
        """The candidate's score range before its text is compared (no encoding)."""
        if place_conflict(item.entities, story):
            return Bound(story.id, 0.0, 0.0, 0.0)
        factor = self._gap_decay(item, story)
        if self._text_only(item, story):
            return Bound(story.id, 0.0, factor * JOIN_THRESHOLD / TEXT_ONLY_THRESHOLD, 0.0)
        entities = entity_similarity(item.entities, story, frequency)
        low = factor * W_ENTITIES * entities
        return Bound(story.id, low, low + factor * min(W_TEXT, TEXT_HEADROOM), entities)

    def score(self, item: Item, story: Story, frequency: dict[str, int]) -> Scored:
        """Combined score in [0, 1]; 0 when the place rule says these are two incidents.
        Encodes *item*'s text if it has no vector yet."""
        assert story.last_updated is not None
        if place_conflict(item.entities, story):
            return Scored(story.id, 0.0, 0.0, 0.0)
        entities = entity_similarity(item.entities, story, frequency)
        text = self.text_similarity(self.vector_of(item), story)
        if self._text_only(item, story):
            combined = text * JOIN_THRESHOLD / TEXT_ONLY_THRESHOLD
        else:
            combined = W_ENTITIES * entities + min(W_TEXT * text, TEXT_HEADROOM)
        return Scored(story.id, combined * self._gap_decay(item, story), entities, text)

    def vector_of(self, item: Item) -> np.ndarray:
        """*item*'s text vector: given, computed earlier, or encoded now (and kept)."""
        if item.vector is not None:
            return item.vector
        known = self.vectors.get(item.article_id)
        if known is None:
            if self._encode is None:
                raise ValueError(f"article {item.article_id} has no vector and no encoder")
            # float16 as stored: a vector compares the same here and after a reload
            known = self._encode([item.text])[0].astype(np.float16).astype(np.float32)
            self.vectors[item.article_id] = known
            self.encoded += 1
        return known

    def known_vector(self, item: Item) -> np.ndarray | None:
        """*item*'s vector if it was given or computed, without encoding."""
        return item.vector if item.vector is not None else self.vectors.get(item.article_id)

    # --- decisions ----------------------------------------------------------------------

    def assign(self, item: Item) -> Decision:
        """Put *item* into a story (see the module docstring). Idempotent per article id.

        Text is compared only when it can change the outcome: candidates whose best
        possible score (identical text) stays under ``JOIN_THRESHOLD`` are out; if one
        candidate clears the threshold on entities alone and no other could reach its score
        even with identical text, it is joined without encoding; a merge is checked with
        text only when a compatible runner-up could reach ``MERGE_THRESHOLD``. Otherwise the
        article is encoded and every remaining candidate scored in full, as before. Given
        the board's state, the outcome is the one scoring every candidate with text gives
        (``tests/unit/storyteller/test_assign.py`` holds that); what differs is which
        reports carry a vector, so which are a story's representatives."""
        known = self.story_of_article.get(item.article_id)
        if known is not None:
            return Decision(item.article_id, self.resolve(known), "already")
        if item.duplicate_of and item.duplicate_of in self.story_of_url:
            story = self.stories[self.resolve(self.story_of_url[item.duplicate_of])]
            self._join(story, item, copy_of=item.duplicate_of)
            self.reasons["copy"] += 1
            return Decision(item.article_id, story.id, "copy", 1.0)
        decision = self._decide(item)
        if self.known_vector(item) is None:
            self.reasons["entities"] += 1
        return decision

    def _decide(self, item: Item) -> Decision:
        ids, frequency = self.candidates(item)
        bounds = [self.bound(item, self.stories[s], frequency) for s in ids]
        live = sorted(
            (b for b in bounds if b.high >= JOIN_THRESHOLD), key=lambda b: (-b.low, b.story_id)
        )
        best_score: float
        if live and live[0].low >= JOIN_THRESHOLD and all(b.high < live[0].low for b in live[1:]):
            # entities alone decide: the leader is in and nobody can catch up
            best, best_score = live[0].story_id, live[0].low
            runners = [b for b in live[1:] if b.high >= MERGE_THRESHOLD]
            scored: list[Scored] = []
        else:
            if live:
                self.reasons["contention"] += 1
            scored = sorted(
                (self.score(item, self.stories[b.story_id], frequency) for b in live),
                key=lambda s: (-s.score, s.story_id),
            )
            if not scored or scored[0].score < JOIN_THRESHOLD:
                story = Story(self._new_id())
                vector = self.known_vector(item)
                if vector is None:
                    # nothing to compare it with: encoded when a later article needs it
                    story.pending = (item.article_id, item.text)
                self._join(story, item, copy_of=None, vector=vector)
                return Decision(item.article_id, story.id, "open")
            best, best_score = scored[0].story_id, scored[0].score
            runners = []
        story = self.stories[best]
        if runners:
            self.reasons["merge"] += 1
            self.vector_of(item)  # encoded before joining, so it becomes a representative
        self._join(story, item, copy_of=None, vector=self.known_vector(item))
        if runners:
            # a merge is possible only with text: score the compatible runner-ups in full
            scored = sorted(
                (
                    self.score(item, self.stories[b.story_id], frequency)
                    for b in runners
                    if self._compatible(story, self.stories[b.story_id])
                ),
                key=lambda s: (-s.score, s.story_id),
            )
            scored.insert(0, Scored(best, best_score, 0.0, 0.0))
        merged = None
        for runner_up in scored[1:]:
            if runner_up.score < MERGE_THRESHOLD:
                break
            other = self.stories[runner_up.story_id]
            if self._compatible(story, other):
                merged = self.merge(other.id, story.id)
                story = self.stories[merged[1]]
                break
        return Decision(item.article_id, story.id, "join", best_score, merged)

    def settle(self, story: Story) -> None:
        """Encode *story*'s pending opener and put it first among its representatives."""
        if story.pending is None:
            return
        article_id, text = story.pending
        vector = self.vectors.get(article_id)
        if vector is None:
            if self._encode is None:
                raise ValueError(f"story {story.id} has a pending opener and no encoder")
            vector = self._encode([text])[0].astype(np.float16).astype(np.float32)
            self.vectors[article_id] = vector
            self.encoded += 1
            self.reasons["opener"] += 1
        story.pending = None
        story.vectors.insert(0, vector)
        for member in story.members:
            if member.article_id == article_id:
                member.vector = vector
        self.settled[story.id] = article_id

    def text_similarity(self, vector: np.ndarray, story: Story) -> float:
        """Cosine to the nearest of the story's representative reports, rescaled above the
        encoder's floor.

        The nearest report, not a centroid: a centroid of many languages and angles sits
        close to every news text and turned a big story into a sink for unrelated copy."""
        self.settle(story)
        if not story.vectors:
            return 0.0
        cosine = float(np.max(np.stack(story.vectors) @ vector))
        return max(0.0, (cosine - self._floor) / (1 - self._floor))

    def _compatible(self, a: Story, b: Story) -> bool:
        if a.merged_into is not None or b.merged_into is not None:
            return False
        if a.pin is not None and b.pin is not None and a.pin != b.pin:
            return False  # an analyst split them: a resemblance does not undo that
        return not place_conflict(
            {k: min(1.0, w / max(1, a.reports)) for k, w in a.weights.items()}, b
        )

    def _join(
        self,
        story: Story,
        item: Item,
        *,
        copy_of: str | None,
        vector: np.ndarray | None = None,
    ) -> None:
        if story.id in self.stories:
            self._unindex(story)
        story.absorb(item, copy_of=copy_of, vector=vector)
        if self.full_members:
            assign_roles(story)
        self._reindex(story)

    def merge(self, source_id: int, target_id: int) -> tuple[int, int]:
        """Merge two stories: the smaller redirects to the larger (ties: the older id wins).
        Returns ``(merged, survivor)``."""
        a, b = self.stories[source_id], self.stories[target_id]
        if self._encode is not None:
            self.settle(a)
            self.settle(b)
        small, large = sorted((a, b), key=lambda s: (s.size, -s.id))
        self._unindex(small)
        self._unindex(large)
        large.absorb_story(small)
        small.merged_into = large.id
        if self.full_members:
            assign_roles(large)
        self._reindex(large)
        return small.id, large.id

    def live(self) -> Iterable[Story]:
        return (s for s in self.stories.values() if s.merged_into is None)


def _days(start: datetime, end: datetime) -> range:
    return range(int(start.timestamp() // 86400), int(end.timestamp() // 86400) + 1)


def assign_roles(story: Story) -> None:
    """Roles in publication order: the earliest non-copy is the first report; a copy of a
    member is a copy; a later report from a source already seen, or one published
    ``UPDATE_AFTER`` past the first report, is an update; the rest are independent."""
    story.members.sort(key=lambda m: (m.published_at, m.article_id))
    urls = {m.canonical_url for m in story.members}
    first: Member | None = None
    sources: set[str] = set()
    for member in story.members:
        if member.copy_of is not None and member.copy_of in urls:
            member.role = "copy"
        elif first is None:
            member.role = "first_report"
            first = member
        elif member.source in sources or member.published_at - first.published_at > UPDATE_AFTER:
            member.role = "update"
        else:
            member.role = "independent"
        sources.add(member.source)


def headline(story: Story) -> Member | None:
    """The most central report: highest cosine to the mean of the story's encoded reports
    (ties: earliest); the first report when no report was encoded. Only reports with a title
    are considered while the story has one (a page without a title is stored with '', and
    made a blank headline even when titled reports had joined)."""
    reports = [m for m in story.members if m.role != "copy"] or story.members
    reports = [m for m in reports if m.title.strip()] or reports
    if not reports:
        return None
    encoded = [(m, m.vector) for m in reports if m.vector is not None]
    if not encoded:
        return min(reports, key=lambda m: (m.published_at, m.article_id))
    total = np.sum([v for _, v in encoded], axis=0)
    centroid = total / (np.linalg.norm(total) or 1)
    return max(encoded, key=lambda mv: (float(np.dot(mv[1], centroid)), -mv[0].article_id))[0]
