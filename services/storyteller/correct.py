"""An analyst's corrections of the storyteller's grouping: split a story, move an article,
merge two stories (``newsflow stories split|move|merge``), and re-publishing a story's state.

Each correction is one transaction that holds :data:`~services.storyteller.store.CORRECTION_LOCK`
exclusively; every assignment batch of every storyteller worker holds it shared, so a
correction runs between batches, never inside one (a batch never writes back a story state
it read before the correction). A lock wait longer than ``LOCK_TIMEOUT`` is an error that
says to try again.

**Rebuilt, not patched.** A split or a move rebuilds both stories from their members in
publication order, as the storyteller builds a story (:meth:`Story.absorb`): entity weights
and counts (from ``article_entities``), representative text vectors, roles, headline, first
report, span and the candidate index. A copy whose original left its story counts as a report
of its new one. A merge is the storyteller's own merge (:meth:`Storyboard.merge`: the smaller
story redirects to the larger).

**Sticking.** An article keeps its story (the storyteller assigns each article once), so
what could undo a split is a merge: a later article that resembles both halves. Both
stories of a split or move get a *pin* (``stories.pin``): the correction group they belong
to. The storyteller never merges two stories with different pins (``Storyboard._compatible``)
and a merge carries the survivor's pin (or the other one's), so the halves and whatever
they absorb stay apart; later articles still join either. ``stories merge`` (an analyst)
may merge pinned stories. Moved articles get ``story_articles.pinned_at``.

**Records** (returned, published by the caller after the commit): a split or move gives a
``kind=split`` notice on the story the articles left, then the ``kind=story`` state of both
stories, each with a higher version than the notice; a merge gives ``kind=merged`` and the
survivor's state, as the storyteller does.

Errors: :class:`CorrectionError` (a one-line message that says what to do) for an unknown or
merged-away story, an article not in the story, a split of every article, and the like.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.storyteller.assign import Item, Story, Storyboard, assign_roles
from services.storyteller.store import (
    _LOAD_ENTITIES,
    _NEW_IDS,
    _VERSIONS,
    CORRECTION_LOCK,
    _complete_members,
    _load_board,
    _unpack,
    _write,
    story_record,
)
from services.storyteller.text import article_text
from shared.errors import NewsflowError
from shared.messages import StoryUpdate

logger = logging.getLogger(__name__)

#: how long a correction waits for running assignment batches before giving up
LOCK_TIMEOUT = "30s"
#: PostgreSQL's lock_not_available (lock_timeout expired)
LOCK_NOT_AVAILABLE = "55P03"
#: how many merge redirects are followed to name the live story (bounds a bad row)
MAX_REDIRECTS = 16

_STORY = text("SELECT id, merged_into, pin, version FROM stories WHERE id = :id")
_MEMBERS = text(
    "SELECT m.article_id, m.story_id, m.canonical_url, m.url, m.source, m.language, m.title,"
    " m.published_at, m.role, m.copy_of, m.vector, a.lead"
    " FROM story_articles m LEFT JOIN articles a ON a.id = m.article_id"
    " WHERE m.story_id = ANY(CAST(:ids AS bigint[]))"
    " ORDER BY m.published_at, m.article_id"
)
_STORY_OF = text(
    "SELECT article_id, story_id FROM story_articles WHERE article_id = ANY(CAST(:ids AS bigint[]))"
)
_ARTICLE_EXISTS = text("SELECT id FROM articles WHERE id = ANY(CAST(:ids AS bigint[]))")
# the split notice takes a version of its own, so the story's new state comes after it
# under any "higher version wins" rule a consumer uses
_BUMP = text("UPDATE stories SET version = version + 1 WHERE id = :id")
_PIN_MEMBERS = text(
    "UPDATE story_articles SET pinned_at = now() WHERE article_id = ANY(CAST(:ids AS bigint[]))"
)


class CorrectionError(NewsflowError):
    """A correction that cannot be made as asked; the message says what to do instead."""

    kind = "correction"


@dataclass
class Correction:
    """What a correction did. ``story_id``: the story split, the article's old story, or the
    story merged away; ``other_id``: the new story, the target, or the survivor."""

    action: Literal["split", "move", "merge"]
    story_id: int
    other_id: int
    article_ids: list[int] = field(default_factory=list)
    #: news.stories.v1 records to publish, in order
    records: list[StoryUpdate] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "story_id": self.story_id,
            "other_id": self.other_id,
            "article_ids": self.article_ids,
            "stories": [summary(r) for r in self.records if r.kind == "story"],
        }


def summary(record: StoryUpdate) -> dict[str, Any]:
    """A story record as a card without its article list (id, headline, span, counts,
    sources, languages, top entities, first report, version)."""
    first = record.first_report
    return {
        "id": record.story_id,
        "headline": record.headline,
        "first_seen": record.first_seen,
        "last_updated": record.last_updated,
        "article_count": record.article_count,
        "sources": record.sources,
        "languages": record.languages,
        "top_entities": [e.model_dump() for e in record.top_entities],
        "first_report": None
        if first is None
        else {
            "article_id": first.article_id,
            "url": first.url,
            "source": first.source,
            "published_at": first.published_at,
        },
        "version": record.version,
    }


# --- the corrections ------------------------------------------------------------------------


async def split_story(
    sessions: async_sessionmaker[AsyncSession], story_id: int, article_ids: Sequence[int]
) -> Correction:
    """Move *article_ids* out of story *story_id* into a new story; both are rebuilt and
    pinned apart. Raises :class:`CorrectionError` for an unknown or merged-away story, an
    article not in it, or all of its articles."""
    ids = sorted(set(article_ids))
    if not ids:
        raise CorrectionError("name at least one article to split out of the story")
    async with _locked(sessions) as session:
        row = await _live(session, story_id, verb="split")
        members = await _members(session, [story_id])
        await _check_members(session, ids, story_id, {m.article_id for m in members})
        if len(ids) == len(members):
            raise CorrectionError(
                f"those are all {len(members)} articles of story #{story_id}: leave at least "
                f"one in it (to put them in another story: 'newsflow stories merge {story_id} "
                "OTHER_ID')"
            )
        new_id = int((await session.execute(_NEW_IDS, {"n": 1})).scalar_one())
        moved = set(ids)
        entities = await _entities(session, [m.article_id for m in members])
        keep = rebuild(
            story_id, [m for m in members if m.article_id not in moved], entities, pin=row.pin
        )
        out = rebuild(new_id, [m for m in members if m.article_id in moved], entities, pin=None)
        _separate(keep, out)
        records = await _save(session, source=keep, target=out, moved=ids)
    logger.info("split story %s: %s articles moved to new story %s", story_id, len(ids), new_id)
    return Correction("split", story_id, new_id, ids, records)


async def move_article(
    sessions: async_sessionmaker[AsyncSession], article_id: int, to_story: int
) -> Correction:
    """Move one article from its story into story *to_story*; both are rebuilt and pinned
    apart. Raises :class:`CorrectionError` for an article in no story, an unknown or
    merged-away target, the article's own story, or the only article of its story."""
    async with _locked(sessions) as session:
        found = (await session.execute(_STORY_OF, {"ids": [article_id]})).one_or_none()
        if found is None:
            raise CorrectionError(await _nowhere(session, article_id))
        source_id = int(found.story_id)
        target = await _live(session, to_story, verb="move articles to")
        if target.id == source_id:
            raise CorrectionError(f"article {article_id} is already in story #{source_id}")
        source = await _live(session, source_id, verb="move articles out of")
        members = await _members(session, [source_id, target.id])
        if sum(m.story_id == source_id for m in members) == 1:
            raise CorrectionError(
                f"article {article_id} is the only article of story #{source_id}: merge the "
                f"stories instead ('newsflow stories merge {source_id} {target.id}')"
            )
        entities = await _entities(session, [m.article_id for m in members])
        keep = rebuild(
            source_id,
            [m for m in members if m.story_id == source_id and m.article_id != article_id],
            entities,
            pin=source.pin,
        )
        into = rebuild(
            target.id,
            [m for m in members if m.story_id == target.id or m.article_id == article_id],
            entities,
            pin=target.pin,
        )
        _separate(keep, into)
        records = await _save(session, source=keep, target=into, moved=[article_id])
    logger.info("moved article %s from story %s to %s", article_id, source_id, target.id)
    return Correction("move", source_id, target.id, [article_id], records)


async def merge_stories(
    sessions: async_sessionmaker[AsyncSession], first: int, second: int
) -> Correction:
    """Merge two live stories the storyteller kept apart, through its own merge: the smaller
    redirects to the larger (ties: the older id survives), which keeps its pin or takes the
    other's. Raises :class:`CorrectionError` for an unknown, merged-away or identical story."""
    if first == second:
        raise CorrectionError(f"#{first} and #{second} are the same story")
    async with _locked(sessions) as session:
        for story_id, other in ((first, second), (second, first)):
            survivor = await _survivor(session, story_id)
            if survivor == other:
                raise CorrectionError(f"story #{story_id} is already merged into #{other}")
        for story_id in (first, second):
            await _live(session, story_id, verb="merge")
        board = Storyboard(new_id=_no_new_stories, text_floor=0.0, full_members=False)
        await _load_board(session, {first, second}, board)
        merged, survivor = board.merge(first, second)
        await _complete_members(session, board, {first, second})
        await _write(session, board, {first, second})
        versions = await _versions(session, [merged, survivor])
        records = [
            story_record(board.stories[merged], versions[merged]),
            story_record(board.stories[survivor], versions[survivor]),
        ]
    logger.info("merged story %s into %s by hand", merged, survivor)
    return Correction("merge", merged, survivor, [], records)


async def current_records(
    sessions: async_sessionmaker[AsyncSession], story_ids: Iterable[int]
) -> list[StoryUpdate]:
    """The current ``news.stories.v1`` record of each story (``kind=merged`` for a merged
    one), to publish again (after a correction whose records did not reach the broker).
    Raises :class:`CorrectionError` for an unknown id."""
    ids = sorted(set(story_ids))
    async with sessions() as session, session.begin():
        # a consistent view: a batch committing meanwhile is published by its worker anyway
        await session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        board = Storyboard(new_id=_no_new_stories, text_floor=0.0, full_members=False)
        await _load_board(session, set(ids), board)
        unknown = [i for i in ids if i not in board.stories]
        if unknown:
            raise CorrectionError(f"no story {unknown[0]}; see 'newsflow stories list'")
        live = {i for i in ids if board.stories[i].merged_into is None}
        await _complete_members(session, board, live)
        versions = await _versions(session, ids)
    return [story_record(board.stories[i], versions[i]) for i in ids]


# --- rebuilding a story from its members ------------------------------------------------------


def rebuild(
    story_id: int, members: Sequence[Any], entities: dict[int, dict[str, float]], *, pin: int | None
) -> Story:
    """A story from stored member rows (``story_articles`` columns) and their articles'
    entities, absorbed in publication order as the storyteller would, with roles assigned.

    A member stored as a copy stays a copy only if its original is in this story."""
    story = Story(story_id, pin=pin)
    urls = {m.canonical_url for m in members}
    for m in sorted(members, key=lambda m: (m.published_at, m.article_id)):
        item = Item(
            article_id=m.article_id,
            canonical_url=m.canonical_url,
            url=m.url,
            source=m.source,
            language=m.language,
            title=m.title,
            published_at=m.published_at,
            entities=entities.get(m.article_id, {}),
            vector=_unpack(m.vector),
            duplicate_of=m.copy_of,
        )
        story.absorb(item, copy_of=m.copy_of if m.copy_of in urls else None)
        story.members[-1].copy_of = m.copy_of  # what the article copies, wherever it is
    if not story.vectors and members:
        # every member was placed without its text encoded (lazy encoding): the first report
        # becomes the pending opener, as for a story the storyteller opened, so a later
        # article's text can still be compared with this story
        first = next((m for m in story.members if m.copy_of is None), story.members[0])
        lead = next((m.lead for m in members if m.article_id == first.article_id), None)
        story.pending = (first.article_id, article_text(first.title, lead))
    assign_roles(story)
    return story


def _separate(source: Story, target: Story) -> None:
    """Pin two stories an analyst separated into different correction groups. A story's own
    id is a fresh group: a group is only ever created from the id of the story it pins."""
    if source.pin is None or source.pin == target.pin:
        source.pin = source.id
    if target.pin is None or target.pin == source.pin:
        target.pin = target.id


# --- plumbing ----------------------------------------------------------------------------------


@asynccontextmanager
async def _locked(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A transaction holding the correction lock exclusively: it waits for running
    batches, ``LOCK_TIMEOUT`` at most (then a :class:`CorrectionError` says to try again)."""
    try:
        async with sessions() as session, session.begin():
            await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
            await session.execute(text("SELECT pg_advisory_xact_lock(:a, :b)"), CORRECTION_LOCK)
            yield session
    except DBAPIError as exc:
        if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        raise CorrectionError(
            f"the stories stayed locked for {LOCK_TIMEOUT} (storyteller batches or another "
            "correction); try again",
            kind="busy",
        ) from exc


async def _survivor(session: AsyncSession, story_id: int) -> int | None:
    """The live story *story_id* is (or redirects to); None for an unknown id."""
    for _ in range(MAX_REDIRECTS):
        row = (await session.execute(_STORY, {"id": story_id})).one_or_none()
        if row is None:
            return None
        if row.merged_into is None:
            return int(row.id)
        story_id = row.merged_into
    return None  # a redirect chain longer than any merge can make: a bad row


async def _live(session: AsyncSession, story_id: int, *, verb: str) -> Any:
    """The story row (id, merged_into, pin, version) of a live story, else an error that
    names the story it was merged into."""
    row = (await session.execute(_STORY, {"id": story_id})).one_or_none()
    if row is None:
        raise CorrectionError(f"no story {story_id}; see 'newsflow stories list'")
    if row.merged_into is None:
        return row
    survivor = await _survivor(session, story_id)
    if survivor is None:
        raise CorrectionError(f"story #{story_id} was merged into a story that is gone")
    raise CorrectionError(
        f"story #{story_id} was merged into #{survivor}: {verb} #{survivor} instead "
        f"('newsflow stories show {survivor}' lists its articles)"
    )


async def _members(session: AsyncSession, story_ids: list[int]) -> list[Any]:
    return list((await session.execute(_MEMBERS, {"ids": story_ids})).all())


async def _check_members(
    session: AsyncSession, ids: list[int], story_id: int, inside: set[int]
) -> None:
    missing = [i for i in ids if i not in inside]
    if not missing:
        return
    first = missing[0]
    found = (await session.execute(_STORY_OF, {"ids": [first]})).one_or_none()
    where = f"it is in story #{found.story_id}" if found else await _nowhere(session, first)
    if len(missing) > 1:
        where += f"; {len(missing) - 1} more of the ids are not in it either"
    raise CorrectionError(
        f"article {first} is not in story #{story_id} ({where}); "
        f"'newsflow stories show {story_id}' lists its articles"
    )


async def _nowhere(session: AsyncSession, article_id: int) -> str:
    """Why an article is in no story: it does not exist, or is not placed yet."""
    exists = (await session.execute(_ARTICLE_EXISTS, {"ids": [article_id]})).first()
    if exists is None:
        return f"no stored article has id {article_id}"
    return (
        f"article {article_id} is in no story yet: the storyteller places a stored article "
        "when it reads its confirmation (see 'newsflow lag')"
    )


async def _entities(session: AsyncSession, article_ids: list[int]) -> dict[int, dict[str, float]]:
    out: dict[int, dict[str, float]] = {}
    for row in await session.execute(_LOAD_ENTITIES, {"ids": article_ids}):
        out.setdefault(row.article_id, {})[row.key] = float(row.salience)
    return out


async def _versions(session: AsyncSession, ids: list[int]) -> dict[int, int]:
    return {r.id: r.version for r in await session.execute(_VERSIONS, {"ids": sorted(ids)})}


async def _save(
    session: AsyncSession, *, source: Story, target: Story, moved: list[int]
) -> list[StoryUpdate]:
    """Write both rebuilt stories with the storyteller's write path, pin the moved articles;
    the records: the split notice on *source*, then both states."""
    await session.execute(_BUMP, {"id": source.id})
    board = Storyboard(new_id=_no_new_stories, text_floor=0.0)
    board.add_story(source)
    board.add_story(target)
    await _write(session, board, {source.id, target.id})
    await session.execute(_PIN_MEMBERS, {"ids": moved})
    versions = await _versions(session, [source.id, target.id])
    after = story_record(source, versions[source.id])
    notice = StoryUpdate(
        kind="split",
        story_id=source.id,
        version=versions[source.id] - 1,
        split_into=target.id,
        moved_article_ids=moved,
        first_seen=after.first_seen,
        last_updated=after.last_updated,
        article_count=after.article_count,
    )
    return [notice, after, story_record(target, versions[target.id])]


def _no_new_stories() -> int:
    raise AssertionError("a correction allocates its new story id itself")
