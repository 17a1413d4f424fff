"""Watches and alerts in a real PostgreSQL: alias resolution at save time, the idempotent
alert key, delivery status, and ``watch test`` agreeing with matching stored articles."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.alerter.matcher import Matcher
from services.alerter.query import QueryError
from services.alerter.store import (
    WatchError,
    active_watches,
    add_watch,
    edit_watch,
    get_watch,
    insert_alerts,
    list_watches,
    load_articles,
    record_attempt,
    record_delivery,
    record_scans,
    remove_watch,
    try_query,
    unscanned_count,
    watches_version,
)
from services.cli.watch import curated_key
from services.writer.articles import write_batch
from tests.integration.writer.cli_helpers import db_rows
from tests.support.factories import T0, article, enriched, entity

PKK = "ORG:kurdistan workers party"


async def stored(sessions: async_sessionmaker[AsyncSession], *items) -> dict[str, int]:  # type: ignore[no-untyped-def]
    report = await write_batch(sessions, list(items))
    return dict(report.article_ids or {})


async def test_entity_aliases_resolve_to_keys_when_a_watch_is_saved(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    await stored(
        sessions,
        enriched(
            entities=[
                entity(
                    "PERSON:mohammed shia al sudani", "PERSON", "Mohammed Shia al-Sudani", "Sudani"
                ),
                entity("ORG:xorava front", "ORG", "Xorava Front", "Xorava"),
                entity("GPE:xorava", "GPE", "Xorava", "Xorava"),
            ]
        ),
    )
    async with sessions() as session:
        curated = await add_watch(session, "pkk", "entity:PKK AND Duhok", curated=curated_key)
        assert curated.query == f'entity:"{PKK}" AND Duhok'
        assert curated.query_input == "entity:PKK AND Duhok"
        observed = await add_watch(session, "sudani", "entity:sudani")
        assert observed.query == 'entity:"PERSON:mohammed shia al sudani"'
        by_key = await add_watch(session, "key", 'entity:"org:Kurdistan Workers\' Party"')
        assert by_key.query == f'entity:"{PKK}"'
        with pytest.raises(QueryError) as unknown:
            await add_watch(session, "x", "Duhok AND entity:Nobody")
        assert unknown.value.position == 17 and "unknown entity 'Nobody'" in unknown.value.message
        with pytest.raises(QueryError) as ambiguous:
            await add_watch(session, "y", "entity:xorava")
        assert "ambiguous" in ambiguous.value.message and "GPE:xorava" in ambiguous.value.message
        with pytest.raises(WatchError, match="exists"):
            await add_watch(session, "pkk", "Sinjar")
        await session.commit()
    # an entity merged into another resolves to the survivor
    await db_rows(
        database_url,
        "UPDATE entities SET merged_into = (SELECT id FROM entities WHERE key = 'ORG:xorava front') "
        "WHERE key = 'GPE:xorava'",
    )
    async with sessions() as session:
        merged = await add_watch(session, "merged", 'entity:"GPE:xorava"')
        assert merged.query == 'entity:"ORG:xorava front"'
        # once merged, the alias is no longer ambiguous
        assert (await add_watch(session, "z", "entity:Xorava")).query == merged.query
        assert [w.name for w in await list_watches(session)] == [
            "key",
            "merged",
            "pkk",
            "sudani",
            "z",
        ]


async def test_one_alert_per_watch_and_article_whatever_is_redelivered_or_re_enriched(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    first = enriched()  # mentions PKK (key ORG:pkk), Türkiye, Iraq
    ids = await stored(sessions, first)
    async with sessions() as session:
        await add_watch(session, "pkk", 'entity:"ORG:pkk"')
        await add_watch(session, "iraq words", "northern Iraq")
        await add_watch(session, "later", 'entity:"ORG:kurdistan workers party"')
        await session.commit()
        watches, _hooks = await active_watches(session)
    matcher = Matcher(watches)

    async def match_and_insert() -> list[int]:
        async with sessions() as session:
            [art] = await load_articles(session, list(ids.values()))
            new = await insert_alerts(session, matcher.match(art.doc))
            await record_scans(session, [(art.doc.article_id, art.enriched_at)])
            await session.commit()
            return [a.watch_id for a in new]

    created = await match_and_insert()
    assert len(created) == 2
    assert await match_and_insert() == []  # redelivery: nothing new
    # re-enriched: now also mentions the Kurdistan Workers' Party, no longer ORG:pkk
    again = enriched(
        first.article,
        entities=[entity(PKK, "ORG", "Kurdistan Workers' Party", "PKK")],
        enriched_at=T0 + timedelta(hours=1),
    )
    await stored(sessions, again)
    newly = await match_and_insert()
    assert len(newly) == 1  # the newly matching watch alerts once
    rows = await db_rows(
        database_url,
        "SELECT w.name, a.matched_entities, a.matched_terms, a.delivery FROM alerts a "
        "JOIN watches w ON w.id = a.watch_id ORDER BY w.name",
    )
    # the watch that stopped matching keeps its alert (no un-alerting)
    assert [(r["name"], r["matched_entities"], r["matched_terms"]) for r in rows] == [
        ("iraq words", [], ["northern", "iraq"]),
        ("later", [PKK], []),
        ("pkk", ["ORG:pkk"], []),
    ]
    assert await match_and_insert() == []


async def test_delivery_status_on_alert_and_watch(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ids = await stored(sessions, enriched())
    async with sessions() as session:
        watch = await add_watch(
            session, "hook", "Iraq", webhook_url="https://hooks.example.org/x", webhook_secret="s"
        )
        watches, hooks = await active_watches(session)
        assert hooks[watch.id].url == "https://hooks.example.org/x"
        [art] = await load_articles(session, list(ids.values()))
        [alert] = await insert_alerts(session, Matcher(watches).match(art.doc), webhooks=hooks)
        assert await unscanned_count(session) == 2  # the article and the undelivered alert
        await record_attempt(
            session, watch.id, ok=False, status=503, error="HTTP 503", failures=1, next_delay_s=5
        )
        await record_attempt(
            session, watch.id, ok=False, status=503, error="HTTP 503", failures=2, next_delay_s=9
        )
        await session.commit()
        failing = await get_watch(session, "hook")
        assert (failing.consecutive_failures, failing.last_status, failing.paused) == (
            2,
            503,
            False,
        )
        assert failing.next_attempt_at is not None and failing.last_error == "HTTP 503"
        await record_attempt(
            session, watch.id, ok=True, status=200, error=None, failures=0, next_delay_s=None
        )
        await record_delivery(
            session, alert.id, state="delivered", attempts=3, status=200, error=None
        )
        await record_scans(session, [(art.doc.article_id, art.enriched_at)])
        await session.commit()
        session.expire_all()
        healthy = await get_watch(session, "hook")
        assert healthy.consecutive_failures == 0 and healthy.last_delivered_at is not None
        assert healthy.last_error == "HTTP 503"  # the last error stays visible
        assert healthy.alerts == 1
        # published to the topic is the other half of "done"
        assert await unscanned_count(session) == 1


async def test_edits_pauses_and_removals_change_the_version(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session:
        empty = await watches_version(session)
        await add_watch(session, "a", "Duhok")
        await session.commit()
        added = await watches_version(session)
        assert added != empty
        await edit_watch(session, "a", paused=True)
        await session.commit()
        paused = await watches_version(session)
        assert paused != added
        assert (await active_watches(session))[0] == []
        edited = await edit_watch(session, "a", query="Sinjar", paused=False)
        await session.commit()
        assert edited.query == "Sinjar" and not edited.paused
        assert [w.query for w in (await active_watches(session))[0]] == ["Sinjar"]
        await remove_watch(session, "a")
        await session.commit()
        assert await watches_version(session) == empty
        with pytest.raises(WatchError, match="no watch named"):
            await get_watch(session, "a")


async def test_watch_test_returns_what_matching_stored_articles_produces(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    items = [
        enriched(article(f"https://news.example.com/{i}", title=title, body=body))
        for i, (title, body) in enumerate(
            [
                ("Clashes in Şırnak", "Security forces in Sirnak province."),
                ("Sinjar talks", "Talks on Sinjar resumed."),
                ("Weather", "Rain in Ankara."),
            ]
        )
    ]
    ids = await stored(sessions, *items)
    query = "Şırnak OR Sinjar"
    async with sessions() as session:
        saved, found = await try_query(session, query, since=T0 - timedelta(days=3650))
        assert saved == "Şırnak OR Sinjar"
        await add_watch(session, "w", query)
        watches, _ = await active_watches(session)
        docs = await load_articles(session, sorted(ids.values()))
    stream = {m.article_id for d in docs for m in Matcher(watches).match(d.doc)}
    assert {a.doc.article_id for a, _m in found} == stream
    assert stream == {ids["https://news.example.com/0"], ids["https://news.example.com/1"]}


async def test_a_watch_saved_before_a_merge_keeps_matching(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    old = enriched(
        article("https://news.example.com/old"),
        entities=[entity("ORG:kck", "ORG", "KCK", "KCK")],
    )
    ids = await stored(sessions, old)
    async with sessions() as session:
        await add_watch(session, "kck", 'entity:"ORG:kck"')
        await session.commit()
    # a curator merges KCK into the PKK key; the enricher links new articles to the survivor
    ids |= await stored(
        sessions,
        enriched(article("https://news.example.com/pkk"), entities=[entity(PKK, "ORG", "PKK")]),
    )
    await db_rows(
        database_url,
        "UPDATE entities SET merged_into = (SELECT id FROM entities WHERE key = $1) "
        "WHERE key = 'ORG:kck'",
        PKK,
    )
    new = enriched(
        article("https://news.example.com/new"), entities=[entity(PKK, "ORG", "PKK", "PKK")]
    )
    ids |= await stored(sessions, new)
    async with sessions() as session:
        watches, _hooks = await active_watches(session)
        every = await load_articles(session, sorted(ids.values()))
    by_url = {d.doc.url: d.doc for d in every}
    # merged-in keys count for the survivor
    assert {"ORG:kck", PKK} <= by_url["https://news.example.com/new"].entity_keys
    matched = {m.article_id for d in every for m in Matcher(watches).match(d.doc)}
    assert len(matched) == 3  # the old article (linked to KCK) and both PKK articles
