"""DedupIndex against a real, freshly migrated PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import asyncpg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.parser.dedup import LSH_BANDS, DedupIndex
from shared.db.session import create_engine, session_factory
from shared.messages import Article

Parsed = Callable[..., Article]
Sessions = async_sessionmaker[AsyncSession]

TIGRIS = "tigris_pkk_strikes.html"
TIGRIS_URL = (
    "https://www.tigrisreview.com/security/2026/11/18/turkish-jets-strike-pkk-northern-iraq"
)
MIRROR_URL = "https://www.tigrisreview.com/world/turkish-jets-strike-pkk-northern-iraq"
REWRITE = "gulfdispatch_pkk_strikes_rewrite.html"
REWRITE_URL = "https://www.gulfdispatch.net/region/turkey-bombs-pkk-hideouts-northern-iraq"
ZAGROS = "zagros_kirkuk_cell.html"
ZAGROS_URL = (
    "https://zagrosdaily.com/news/iraq/iraqi-forces-dismantle-islamic-state-cell-in-kirkuk/"
)


def _mirror(parsed: Parsed) -> Article:
    """The same story at a second URL that declares itself canonical."""
    return parsed(TIGRIS, MIRROR_URL, replace={TIGRIS_URL: MIRROR_URL})


def _decision(article: Article) -> tuple[str, str | None, float | None]:
    return article.status, article.duplicate_of, article.similarity


async def _rows(database_url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url.replace("+asyncpg", ""))
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def test_same_article_at_two_urls_is_one_article(
    parsed: Parsed, sessions: Sessions, database_url: str
) -> None:
    index = DedupIndex(sessions)
    original, mirror = parsed(TIGRIS, TIGRIS_URL), _mirror(parsed)
    assert original.content_hash == mirror.content_hash

    [first] = await index.resolve([original])
    [second] = await index.resolve([mirror])

    assert _decision(first) == ("ok", None, None)
    assert _decision(second) == ("duplicate", TIGRIS_URL, 1.0)
    # only the original is indexed for near-duplicate lookups
    bands = await _rows(database_url, "SELECT DISTINCT canonical_url FROM minhash_bands")
    assert [r["canonical_url"] for r in bands] == [TIGRIS_URL]
    count = await _rows(database_url, "SELECT count(*) AS n FROM minhash_bands")
    assert count[0]["n"] == LSH_BANDS


async def test_redelivery_resolves_to_itself_and_writes_nothing_new(
    parsed: Parsed, sessions: Sessions, database_url: str
) -> None:
    index = DedupIndex(sessions)
    original, mirror, rewrite = (
        parsed(TIGRIS, TIGRIS_URL),
        _mirror(parsed),
        parsed(REWRITE, REWRITE_URL),
    )
    first = await index.resolve([original, mirror, rewrite])
    before = await _rows(
        database_url,
        "SELECT canonical_url, content_hash, first_seen_at FROM article_fingerprints ORDER BY 1",
    )

    # redelivered one by one, in reverse order, and as a batch
    again = [(await index.resolve([a]))[0] for a in (rewrite, mirror, original)][::-1]
    batch = await index.resolve([rewrite, original, mirror])

    assert [_decision(a) for a in first] == [_decision(a) for a in again]
    assert [_decision(a) for a in batch] == [_decision(first[i]) for i in (2, 0, 1)]
    assert _decision(again[0]) == ("ok", None, None)
    after = await _rows(
        database_url,
        "SELECT canonical_url, content_hash, first_seen_at FROM article_fingerprints ORDER BY 1",
    )
    assert after == before


async def test_same_content_twice_in_one_batch(parsed: Parsed, sessions: Sessions) -> None:
    resolved = await DedupIndex(sessions).resolve([_mirror(parsed), parsed(TIGRIS, TIGRIS_URL)])
    # batch order decides which URL was first
    assert [_decision(a) for a in resolved] == [("ok", None, None), ("duplicate", MIRROR_URL, 1.0)]


async def test_near_duplicate_rewrite_links_to_the_original(
    parsed: Parsed, sessions: Sessions
) -> None:
    index = DedupIndex(sessions, threshold=0.8)
    [original] = await index.resolve([parsed(TIGRIS, TIGRIS_URL)])
    [rewrite, unrelated] = await index.resolve(
        [parsed(REWRITE, REWRITE_URL), parsed(ZAGROS, ZAGROS_URL)]
    )

    assert original.status == "ok"
    assert (rewrite.status, rewrite.duplicate_of) == ("near_duplicate", TIGRIS_URL)
    assert rewrite.similarity is not None and 0.8 <= rewrite.similarity < 1.0
    assert _decision(unrelated) == ("ok", None, None)
    # every other field is untouched
    assert rewrite.body_text == parsed(REWRITE, REWRITE_URL).body_text


async def test_threshold_is_respected(parsed: Parsed, sessions: Sessions) -> None:
    strict = DedupIndex(sessions, threshold=0.99)
    await strict.resolve([parsed(TIGRIS, TIGRIS_URL)])
    [rewrite] = await strict.resolve([parsed(REWRITE, REWRITE_URL)])
    assert _decision(rewrite) == ("ok", None, None)


async def test_state_survives_a_restart(parsed: Parsed, database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1)
    await DedupIndex(session_factory(engine)).resolve([parsed(TIGRIS, TIGRIS_URL)])
    await engine.dispose()

    engine = create_engine(database_url, pool_size=1)
    try:
        index = DedupIndex(session_factory(engine))
        [mirror, rewrite] = await index.resolve([_mirror(parsed), parsed(REWRITE, REWRITE_URL)])
    finally:
        await engine.dispose()
    assert _decision(mirror) == ("duplicate", TIGRIS_URL, 1.0)
    assert rewrite.status == "near_duplicate"


async def test_two_workers_racing_on_the_same_content_agree(
    parsed: Parsed, database_url: str
) -> None:
    engines = [create_engine(database_url, pool_size=1) for _ in range(2)]
    try:
        workers = [DedupIndex(session_factory(engine)) for engine in engines]
        original, mirror = parsed(TIGRIS, TIGRIS_URL), _mirror(parsed)
        results = await asyncio.gather(workers[0].resolve([original]), workers[1].resolve([mirror]))
    finally:
        for engine in engines:
            await engine.dispose()
    statuses = sorted(r[0].status for r in results)
    assert statuses == ["duplicate", "ok"]
    winner = next(r[0] for r in results if r[0].status == "ok")
    loser = next(r[0] for r in results if r[0].status == "duplicate")
    assert loser.duplicate_of == winner.canonical_url


async def test_updated_article_is_not_a_duplicate_of_itself(
    parsed: Parsed, sessions: Sessions, database_url: str
) -> None:
    index = DedupIndex(sessions)
    await index.resolve([parsed(TIGRIS, TIGRIS_URL)])
    updated = parsed(
        TIGRIS,
        TIGRIS_URL,
        replace={
            "The group did not immediately comment": "A PKK spokesman denied losses in a statement"
        },
    )
    [resolved] = await index.resolve([updated])

    assert _decision(resolved) == ("ok", None, None)
    rows = await _rows(database_url, "SELECT content_hash FROM article_fingerprints")
    assert [r["content_hash"] for r in rows] == [updated.content_hash]
    bands = await _rows(database_url, "SELECT count(*) AS n FROM minhash_bands")
    assert bands[0]["n"] == LSH_BANDS  # the old version's bands were replaced, not added
