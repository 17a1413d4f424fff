"""Stories in PostgreSQL: load stored articles, assign a batch under advisory locks, write back.

One transaction per batch:

1. ``pg_advisory_xact_lock_shared`` on ``CORRECTION_LOCK`` (an analyst's split, move or
   merge holds it exclusively), then ``pg_advisory_xact_lock`` on every *day bucket* the
   batch's candidate sets can reach (each article's publication day +- ``WINDOW``), in
   ascending order (no deadlock). An article's candidates are stories filed under its keys
   whose coverage overlaps its window, so every candidate set lies inside those days: two
   workers whose batches could see the same story serialise, and the second one sees the
   first one's new stories; workers on disjoint periods (a backfill and the live edge) run
   side by side. So several workers never open two stories for one incident.
2. Articles already in ``story_articles`` are skipped (redelivery changes nothing).
3. The candidate stories (via ``story_keys`` by key and window; by window alone for articles
   without names; the stories of near-duplicates' originals) are loaded with their members
   into a :class:`~services.storyteller.assign.Storyboard`, which decides in publication order.
4. New and changed stories, memberships, roles, merges and the key index are written; the
   transaction commits; only then does the caller ack its input offsets.

Text vectors are computed lazily, inside the transaction: the board encodes an article only
when a decision depends on its text (:meth:`~services.storyteller.assign.Storyboard.assign`),
which on the evaluation set is about a third of them; encoding everything up front, outside
the locks, cost ~35 ms per article for all of them. The vector is stored with the article's
membership (NULL when it was never needed); representatives are encoded reports only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.storyteller.assign import (
    MAX_KEY_STORIES,
    MIN_SALIENCE,
    WINDOW,
    Decision,
    Item,
    Member,
    Story,
    Storyboard,
    assign_roles,
    headline,
)
from services.storyteller.text import TextEncoder, article_text
from shared.messages import StoryArticle, StoryEntity, StoryUpdate

logger = logging.getLogger(__name__)

#: top entities kept on a story row (by article count, then summed salience)
TOP_ENTITIES = 12
#: the advisory lock namespace: "nf-story" in ASCII; a day number is added to it
LOCK_BASE = int.from_bytes(b"nf-story", "big") & 0x7FFF_FFFF_0000_0000
#: the lock an analyst's correction (``newsflow stories split|move|merge``) takes exclusively
#: and every assignment batch takes shared, before its day locks: a correction runs between
#: batches, never inside one, whatever stories a batch reaches (a copy joins its original's
#: story even outside the batch's days). Two int4 keys: a key space apart from the day locks.
CORRECTION_LOCK = {"a": int.from_bytes(b"nf-s", "big"), "b": int.from_bytes(b"tory", "big")}
VECTOR_DTYPE = "<f2"
#: a key filing more live stories than this in the batch's window is not loaded at all (it
#: is too common to retrieve for any article of the batch); its count is passed instead
LOAD_CAP = MAX_KEY_STORIES * 4

_LOAD_ARTICLES = text(
    "SELECT a.id, a.canonical_url, a.url, coalesce(a.site_name, a.host, '') AS host,"
    " a.host AS raw_host, a.language, coalesce(a.title, '') AS title, a.lead,"
    " coalesce(a.published_at, a.discovered_at, a.stored_at) AS published_at, a.duplicate_of"
    " FROM articles a WHERE a.id = ANY(CAST(:ids AS bigint[]))"
)
_LOAD_ENTITIES = text(
    "SELECT ae.article_id, e.key, ae.salience FROM article_entities ae"
    " JOIN entities e ON e.id = ae.entity_id"
    " WHERE ae.article_id = ANY(CAST(:ids AS bigint[]))"
)
_KEY_COUNTS = text(
    "SELECT k.key, count(*) AS n FROM story_keys k"
    " WHERE k.key = ANY(CAST(:keys AS text[]))"
    " AND k.last_updated >= :start AND k.first_seen <= :end GROUP BY k.key"
)
_KEY_STORIES = text(
    "SELECT DISTINCT k.story_id FROM story_keys k"
    " WHERE k.key = ANY(CAST(:keys AS text[]))"
    " AND k.last_updated >= :start AND k.first_seen <= :end"
)
_WINDOW_STORIES = text(
    "SELECT id FROM stories WHERE merged_into IS NULL"
    " AND last_updated >= :start AND first_seen <= :end"
)
_ORIGINALS = text(
    "SELECT canonical_url, story_id FROM story_articles"
    " WHERE canonical_url = ANY(CAST(:urls AS text[]))"
)
_UNPLACED_ORIGINALS = text(
    "SELECT a.id FROM articles a WHERE a.canonical_url = ANY(CAST(:urls AS text[]))"
    " AND NOT EXISTS (SELECT 1 FROM story_articles sa WHERE sa.article_id = a.id)"
)
_ASSIGNED = text(
    "SELECT article_id FROM story_articles WHERE article_id = ANY(CAST(:ids AS bigint[]))"
)
_STORIES = text(
    # JSON as text, decoded with orjson: the driver's json.loads was a fifth of a batch
    "SELECT id, first_seen, last_updated, weights::text AS weights, counts::text AS counts,"
    " reports, article_count, merged_into, vectors, pin, pending_article_id, pending_text"
    " FROM stories WHERE id = ANY(CAST(:ids AS bigint[]))"
)
_MEMBERS = text(
    "SELECT article_id, story_id, canonical_url, url, source, language, title, published_at,"
    " role, copy_of, vector FROM story_articles WHERE story_id = ANY(CAST(:ids AS bigint[]))"
)
_VERSIONS = text("SELECT id, version FROM stories WHERE id = ANY(CAST(:ids AS bigint[]))")
_NEW_IDS = text("SELECT nextval('stories_id_seq') FROM generate_series(1, :n)")


def _source(host: str | None) -> str:
    host = (host or "").lower()
    return host[4:] if host.startswith("www.") else host


async def load_items(
    session: AsyncSession, article_ids: Sequence[int], encoder: TextEncoder | None = None
) -> list[Item]:
    """Stored articles by id as :class:`Item` (entities with salience, the encoder's input
    text; no vector: the board encodes an article when a decision needs it), in publication
    order. Ids not in ``articles`` are left out. *encoder* is not used (kept for callers)."""
    if not article_ids:
        return []
    ids = sorted(set(article_ids))
    rows = list((await session.execute(_LOAD_ARTICLES, {"ids": ids})).all())
    entities: dict[int, dict[str, float]] = {}
    for row in await session.execute(_LOAD_ENTITIES, {"ids": ids}):
        entities.setdefault(row.article_id, {})[row.key] = float(row.salience)
    rows.sort(key=lambda r: (r.published_at, r.id))
    return [
        Item(
            article_id=r.id,
            canonical_url=r.canonical_url,
            url=r.url,
            source=_source(r.raw_host or r.host),
            language=r.language,
            title=r.title,
            published_at=r.published_at,
            entities=entities.get(r.id, {}),
            vector=None,
            duplicate_of=r.duplicate_of,
            text=article_text(r.title, r.lead),
        )
        for r in rows
    ]


def lock_keys(items: Sequence[Item]) -> list[int]:
    """Advisory lock ids (sorted) covering every candidate set of *items*: their day buckets."""
    days: set[int] = set()
    for item in items:
        start = int((item.published_at - WINDOW).timestamp() // 86400)
        end = int((item.published_at + WINDOW).timestamp() // 86400)
        days.update(range(start, end + 1))
    return sorted(LOCK_BASE + day for day in days)


@dataclass
class BatchResult:
    """What one batch did: decisions per article, and the stories it created or changed
    (live ones and merged-away ones) for publishing."""

    decisions: list[Decision] = field(default_factory=list)
    changed: set[int] = field(default_factory=set)
    merged: list[tuple[int, int]] = field(default_factory=list)
    #: the news.stories.v1 records of the changed stories (merged ones as kind=merged)
    records: list[StoryUpdate] = field(default_factory=list)
    #: articles encoded (by why: contention, opener, merge) and placed without text
    #: (entities, copy): :attr:`Storyboard.reasons`
    reasons: dict[str, int] = field(default_factory=dict)


def _pack(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=VECTOR_DTYPE).tobytes()


def _unpack(blob: bytes | None) -> np.ndarray | None:
    """A stored member vector, or None for an article that was never encoded."""
    if blob is None:
        return None
    return np.frombuffer(blob, dtype=VECTOR_DTYPE).astype(np.float32)


def _pack_many(vectors: list[np.ndarray]) -> bytes:
    """Rows back to back after a little-endian uint32 dimension (b"" for none)."""
    if not vectors:
        return b""
    return len(vectors[0]).to_bytes(4, "little") + b"".join(_pack(v) for v in vectors)


def _unpack_many(blob: bytes | None) -> list[np.ndarray]:
    if not blob:
        return []
    dim = int.from_bytes(blob[:4], "little")
    matrix = np.frombuffer(blob[4:], dtype=VECTOR_DTYPE).astype(np.float32).reshape(-1, dim)
    return list(matrix)


async def _candidate_ids(
    session: AsyncSession, items: list[Item]
) -> tuple[set[int], dict[str, int], dict[str, int]]:
    """Candidate story ids for the batch, live-story counts per key in its window, and the
    stories of the near-duplicates' originals (canonical URL -> story id)."""
    start = min(i.published_at for i in items) - WINDOW
    end = max(i.published_at for i in items) + WINDOW
    keys = sorted({k for i in items for k, s in i.entities.items() if s >= MIN_SALIENCE})
    ids: set[int] = set()
    counts: dict[str, int] = {}
    if keys:
        params = {"keys": keys, "start": start, "end": end}
        counts = {r.key: r.n for r in await session.execute(_KEY_COUNTS, params)}
        narrow = [k for k in keys if counts.get(k, 0) <= LOAD_CAP]
        if narrow:
            params["keys"] = narrow
            ids.update((await session.execute(_KEY_STORIES, params)).scalars())
    nameless = [
        i
        for i in items
        if not any(
            s >= MIN_SALIENCE and counts.get(k, 0) <= MAX_KEY_STORIES for k, s in i.entities.items()
        )
    ]
    for item in nameless:
        window = {"start": item.published_at - WINDOW, "end": item.published_at + WINDOW}
        ids.update((await session.execute(_WINDOW_STORIES, window)).scalars())
    originals: dict[str, int] = {}
    wanted = sorted({i.duplicate_of for i in items if i.duplicate_of})
    if wanted:
        for row in await session.execute(_ORIGINALS, {"urls": wanted}):
            originals[row.canonical_url] = row.story_id
        ids.update(originals.values())
    # only keys whose stories were not loaded need the database's count: for the others the
    # board counts the stories active at each article's own time, whatever the batch
    return ids, {k: n for k, n in counts.items() if n > LOAD_CAP}, originals


async def _load_board(session: AsyncSession, ids: set[int], board: Storyboard) -> None:
    """Candidate stories' assignment state (weights, representative vectors), no members."""
    if not ids:
        return
    for row in await session.execute(_STORIES, {"ids": sorted(ids)}):
        board.add_story(
            Story(
                row.id,
                weights=orjson.loads(row.weights),
                counts=orjson.loads(row.counts),
                first_seen=row.first_seen,
                last_updated=row.last_updated,
                merged_into=row.merged_into,
                reports=row.reports,
                size=row.article_count,
                vectors=_unpack_many(row.vectors),
                pin=row.pin,
                pending=(row.pending_article_id, row.pending_text)
                if row.pending_article_id is not None
                else None,
            )
        )


async def _complete_members(session: AsyncSession, board: Storyboard, changed: set[int]) -> None:
    """Put the stored members of changed stories (merged-away ones included) next to this
    batch's new members in their live story, then assign roles over the whole story."""
    for row in await session.execute(_MEMBERS, {"ids": sorted(changed)}):
        story = board.stories[board.resolve(row.story_id)]
        story.members.append(
            Member(
                row.article_id,
                row.canonical_url,
                row.url,
                row.source,
                row.language,
                row.title,
                row.published_at,
                row.copy_of,
                # a pending opener encoded in this batch has its vector on the board only
                _unpack(row.vector)
                if row.vector is not None
                else board.vectors.get(row.article_id),
                row.role,
            )
        )
    for story_id in changed:
        story = board.stories[story_id]
        if story.merged_into is None:
            assign_roles(story)


def summary_row(story: Story) -> dict[str, Any]:
    """The ``stories`` row of a story: headline, counts, sources, languages, top entities."""
    top = headline(story)
    first = next((m for m in story.members if m.role == "first_report"), None)
    ranked = sorted(story.counts, key=lambda k: (-story.counts[k], -story.weights.get(k, 0.0), k))[
        :TOP_ENTITIES
    ]
    return {
        "id": story.id,
        "headline": top.title if top else None,
        "headline_article_id": top.article_id if top else None,
        "first_seen": story.first_seen,
        "last_updated": story.last_updated,
        "article_count": len(story.members),
        "sources": sorted({m.source for m in story.members}),
        "languages": sorted({m.language for m in story.members if m.language}),
        "top_entities": orjson.dumps(
            [{"key": k, "count": story.counts[k]} for k in ranked]
        ).decode(),
        "first_report_article_id": first.article_id if first else None,
        "first_report_source": first.source if first else None,
        "weights": orjson.dumps(story.weights).decode(),
        "counts": orjson.dumps(story.counts).decode(),
        "reports": story.reports,
        "merged_into": story.merged_into,
        "vectors": _pack_many(story.vectors),
        "pin": story.pin,
        "pending_article_id": story.pending[0] if story.pending else None,
        "pending_text": story.pending[1] if story.pending else None,
    }


def _member(m: Member) -> StoryArticle:
    return StoryArticle(
        article_id=m.article_id,
        url=m.url,
        canonical_url=m.canonical_url,
        source=m.source,
        language=m.language,
        title=m.title,
        published_at=m.published_at,
        role=m.role,
        copy_of=m.copy_of,
    )


def story_record(story: Story, version: int) -> StoryUpdate:
    """The ``news.stories.v1`` record of *story* (complete members) at *version*."""
    assert story.first_seen is not None and story.last_updated is not None
    if story.merged_into is not None:
        return StoryUpdate(
            kind="merged",
            story_id=story.id,
            version=version,
            merged_into=story.merged_into,
            first_seen=story.first_seen,
            last_updated=story.last_updated,
            article_count=0,
        )
    row = summary_row(story)
    first = next((m for m in story.members if m.role == "first_report"), None)
    return StoryUpdate(
        story_id=story.id,
        version=version,
        headline=row["headline"],
        first_seen=story.first_seen,
        last_updated=story.last_updated,
        article_count=row["article_count"],
        sources=row["sources"],
        languages=row["languages"],
        top_entities=[StoryEntity(**e) for e in orjson.loads(row["top_entities"])],
        first_report=_member(first) if first else None,
        articles=[_member(m) for m in story.members],
    )


_UPSERT_STORY = text(
    "INSERT INTO stories (id, headline, headline_article_id, first_seen, last_updated,"
    " article_count, sources, languages, top_entities, first_report_article_id,"
    " first_report_source, weights, counts, reports, merged_into, vectors, pin,"
    " pending_article_id, pending_text)"
    " VALUES (:id, :headline, :headline_article_id, :first_seen, :last_updated,"
    " :article_count, :sources, :languages, CAST(:top_entities AS jsonb),"
    " :first_report_article_id, :first_report_source, CAST(:weights AS jsonb),"
    " CAST(:counts AS jsonb), :reports, :merged_into, :vectors, :pin,"
    " :pending_article_id, :pending_text)"
    " ON CONFLICT (id) DO UPDATE SET headline = excluded.headline,"
    " headline_article_id = excluded.headline_article_id, first_seen = excluded.first_seen,"
    " last_updated = excluded.last_updated, article_count = excluded.article_count,"
    " sources = excluded.sources, languages = excluded.languages,"
    " top_entities = excluded.top_entities,"
    " first_report_article_id = excluded.first_report_article_id,"
    " first_report_source = excluded.first_report_source, weights = excluded.weights,"
    " counts = excluded.counts, reports = excluded.reports, merged_into = excluded.merged_into,"
    " vectors = excluded.vectors, pin = excluded.pin,"
    " pending_article_id = excluded.pending_article_id,"
    " pending_text = excluded.pending_text,"
    " version = stories.version + 1, updated_at = now()"
)
_UPSERT_MEMBER = text(
    "INSERT INTO story_articles (article_id, story_id, canonical_url, url, source, language,"
    " title, published_at, role, copy_of, vector)"
    " VALUES (:article_id, :story_id, :canonical_url, :url, :source, :language, :title,"
    " :published_at, :role, :copy_of, :vector)"
    " ON CONFLICT (article_id) DO UPDATE SET story_id = excluded.story_id, role = excluded.role"
    " WHERE story_articles.story_id IS DISTINCT FROM excluded.story_id"
    " OR story_articles.role IS DISTINCT FROM excluded.role"
)
#: a story whose pending opener was encoded while it was only compared (not changed): its
#: assignment state is recorded, not a new version (nothing a reader sees changed)
_SETTLE_STORY = text(
    "UPDATE stories SET vectors = :vectors, pending_article_id = NULL, pending_text = NULL"
    " WHERE id = :id"
)
_SETTLE_MEMBER = text(
    "UPDATE story_articles SET vector = :vector WHERE article_id = :article_id AND vector IS NULL"
)
_DROP_KEYS = text("DELETE FROM story_keys WHERE story_id = ANY(CAST(:ids AS bigint[]))")
_INSERT_KEYS = text(
    "INSERT INTO story_keys (key, story_id, first_seen, last_updated)"
    " SELECT * FROM unnest(CAST(:keys AS text[]), CAST(:ids AS bigint[]),"
    " CAST(:first AS timestamptz[]), CAST(:last AS timestamptz[]))"
)


async def assign_batch(
    sessions: async_sessionmaker[AsyncSession],
    items: list[Item],
    *,
    text_floor: float,
    encoder: TextEncoder | None = None,
) -> BatchResult:
    """Assign *items* (publication order) to stories in one transaction; see the module
    docstring. Items without a vector are encoded with *encoder* when a decision needs
    their text (ValueError then if there is none). Idempotent per article id. Database
    errors propagate (the caller retries transient ones; nothing is committed on error)."""
    result = BatchResult()
    if not items:
        return result
    async with sessions() as session, session.begin():
        await session.execute(text("SELECT pg_advisory_xact_lock_shared(:a, :b)"), CORRECTION_LOCK)
        for key in lock_keys(items):
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
        done = set(
            (await session.execute(_ASSIGNED, {"ids": [i.article_id for i in items]})).scalars()
        )
        todo = originals_first([i for i in items if i.article_id not in done])
        if not todo:
            return result
        reserved = list((await session.execute(_NEW_IDS, {"n": len(todo)})).scalars())
        reserved.reverse()
        board = Storyboard(
            new_id=reserved.pop,
            text_floor=text_floor,
            full_members=False,
            encode=encoder.encode if encoder is not None else None,
        )
        ids, board.key_counts, originals = await _candidate_ids(session, todo)
        await _load_board(session, ids, board)
        board.story_of_url.update(originals)
        for item in todo:
            decision = board.assign(item)
            result.decisions.append(decision)
            result.changed.add(decision.story_id)
            if decision.merged:
                result.merged.append(decision.merged)
                result.changed.update(decision.merged)
        result.reasons = dict(board.reasons)
        await _complete_members(session, board, result.changed)
        await _write(session, board, result.changed)
        await _write_settled(session, board, result.changed)
        versions: dict[int, int] = {
            row.id: row.version
            for row in await session.execute(_VERSIONS, {"ids": sorted(result.changed)})
        }
        result.records = [
            story_record(board.stories[s], versions[s]) for s in sorted(result.changed)
        ]
    return result


async def _write(session: AsyncSession, board: Storyboard, changed: set[int]) -> None:
    # stories first (merged-away ones reference their survivor, so survivors go first)
    order = sorted(changed, key=lambda s: (board.stories[s].merged_into is not None, s))
    await session.execute(_UPSERT_STORY, [summary_row(board.stories[s]) for s in order])
    members: list[dict[str, Any]] = [
        {
            "article_id": m.article_id,
            "story_id": s,
            "canonical_url": m.canonical_url,
            "url": m.url,
            "source": m.source,
            "language": m.language,
            "title": m.title,
            "published_at": m.published_at,
            "role": m.role,
            "copy_of": m.copy_of,
            "vector": None if m.vector is None else _pack(m.vector),
        }
        for s in order
        if board.stories[s].merged_into is None
        for m in board.stories[s].members
    ]
    members.sort(key=lambda r: r["article_id"])  # row locks in one order: no deadlock
    if members:
        await session.execute(_UPSERT_MEMBER, members)
    await session.execute(_DROP_KEYS, {"ids": sorted(changed)})
    keys, ids, first, last = [], [], [], []
    for s in sorted(changed):
        story = board.stories[s]
        if story.merged_into is not None:
            continue  # a merged story leaves the index; its survivor carries its keys
        for key in sorted(story.weights):
            keys.append(key)
            ids.append(s)
            first.append(story.first_seen)
            last.append(story.last_updated)
    if keys:
        await session.execute(
            _INSERT_KEYS, {"keys": keys, "ids": ids, "first": first, "last": last}
        )


async def _write_settled(session: AsyncSession, board: Storyboard, changed: set[int]) -> None:
    """Record pending openers encoded in this batch: the member's vector, and for stories
    not rewritten anyway, their representatives."""
    openers: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for story_id, article_id in sorted(board.settled.items()):
        openers.append({"article_id": article_id, "vector": _pack(board.vectors[article_id])})
        story = board.stories[story_id]
        if story_id not in changed:
            rows.append({"id": story_id, "vectors": _pack_many(story.vectors)})
    if openers:
        openers.sort(key=lambda r: r["article_id"])
        await session.execute(_SETTLE_MEMBER, openers)
    if rows:
        await session.execute(_SETTLE_STORY, rows)


async def assign_articles(
    sessions: async_sessionmaker[AsyncSession], article_ids: Sequence[int], encoder: TextEncoder
) -> BatchResult:
    """Load stored articles by id and assign them (one transaction), encoding the text of
    those whose decision needs it.

    The entry point of the stage: the input is the article ids the writer confirmed stored.
    Unknown ids are skipped. Database errors propagate (the caller retries transient ones)."""
    async with sessions() as session:
        items = await load_items(session, article_ids)
        items += await _unplaced_originals(session, items)
        items.sort(key=lambda i: (i.published_at, i.article_id))
    return await assign_batch(sessions, items, text_floor=encoder.floor, encoder=encoder)


#: how many links of a copy-of-a-copy chain a batch follows to pull unplaced originals in
MAX_ORIGINAL_HOPS = 4


async def _unplaced_originals(session: AsyncSession, items: list[Item]) -> list[Item]:
    """Stored originals of the batch's near-duplicates that have no story yet (their own
    confirmation is on another partition, not read yet): assigned in this batch, before
    their copies, so a copy always joins its original's story as a copy. The original's own
    confirmation then finds it placed and changes nothing."""
    pulled: list[Item] = []
    known = {i.canonical_url for i in items}
    wanted = {i.duplicate_of for i in items if i.duplicate_of} - known
    for _ in range(MAX_ORIGINAL_HOPS):
        if not wanted:
            break
        rows = await session.execute(_UNPLACED_ORIGINALS, {"urls": sorted(wanted)})
        more = await load_items(session, [r.id for r in rows])
        pulled += more
        known |= {i.canonical_url for i in more}
        wanted = {i.duplicate_of for i in more if i.duplicate_of} - known
    return pulled


def originals_first(items: Sequence[Item]) -> list[Item]:
    """*items* in their order, except that a near-duplicate comes after its original when
    both are in the batch (a copy can state an earlier time than its original: sorted by
    time it was placed first, as an ordinary report, and never became a copy)."""
    by_url = {i.canonical_url: i for i in items}
    out: list[Item] = []
    seen: set[int] = set()

    def emit(item: Item) -> None:
        if item.article_id in seen:
            return
        seen.add(item.article_id)  # before the original: a duplicate_of cycle ends here
        original = by_url.get(item.duplicate_of) if item.duplicate_of else None
        if original is not None:
            emit(original)
        out.append(item)

    for item in items:
        emit(item)
    return out
