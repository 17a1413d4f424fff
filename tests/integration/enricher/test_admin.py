"""User curation against a real, freshly migrated PostgreSQL: aliases, merges, splits, and the
overrides the enricher loads from them."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import typer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from services.cli.entities import register
from services.enricher import admin
from services.enricher.pipeline import Enricher
from shared.db.models import Entity, EntityAlias
from shared.db.session import create_engine, session_factory
from shared.messages import Article
from shared.settings import get_settings

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture
async def session(database_url: str) -> AsyncIterator[AsyncSession]:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with session_factory(engine)() as db:
            yield db
    finally:
        await engine.dispose()


async def entity(session: AsyncSession, key: str) -> Entity:
    return (await session.execute(select(Entity).where(Entity.key == key))).scalar_one()


async def test_alias_add_creates_curated_entity_and_is_idempotent(session: AsyncSession) -> None:
    change = await admin.add_alias(session, "GPE:Türkiye", "Türkiye Cumhuriyeti")
    again = await admin.add_alias(session, "GPE:turkiye", "Türkiye Cumhuriyeti")
    await session.commit()
    assert change.entity.key == again.entity.key == "GPE:turkiye"
    assert change.entity.created and change.entity.name == "Türkiye"  # name from curated data
    rows = (await session.execute(select(EntityAlias.alias, EntityAlias.source))).all()
    assert rows == [("Türkiye Cumhuriyeti", "user")]
    overrides = await admin.load_overrides(session)
    assert overrides.aliases == {"turkiye cumhuriyeti": "GPE:turkiye"}


async def test_alias_add_by_name_and_helpful_errors(session: AsyncSession) -> None:
    session.add(Entity(key="LOC:mount gabar", kind="LOC", name="Mount Gabar"))
    await session.flush()
    change = await admin.add_alias(session, "mount gabar", "Gabar Dağı")
    assert change.entity.key == "LOC:mount gabar"
    with pytest.raises(admin.AdminError, match="give its key"):
        await admin.add_alias(session, "Nowhere At All", "x")
    with pytest.raises(admin.AdminError, match="no letters"):
        await admin.add_alias(session, "LOC:mount gabar", " -- ")


async def test_merge_redirects_follows_chains_and_refuses_cycles(session: AsyncSession) -> None:
    for key, name in (
        ("PERSON:mazlum abdi", "Mazlum Abdi"),
        ("PERSON:mazloum kobane", "Mazloum Kobane"),
        ("PERSON:mazloum abdi", "Mazloum Abdi"),
    ):
        session.add(Entity(key=key, kind="PERSON", name=name))
    session.add(Entity(key="GPE:kobani", kind="GPE", name="Kobani"))
    await session.flush()
    await admin.merge_entities(session, "PERSON:mazloum kobane", "PERSON:mazlum abdi")
    await admin.merge_entities(session, "PERSON:mazlum abdi", "PERSON:mazloum abdi")
    with pytest.raises(admin.AdminError, match="already merged"):
        await admin.merge_entities(session, "PERSON:mazloum abdi", "PERSON:mazloum kobane")
    with pytest.raises(admin.AdminError, match="distinct kinds"):
        await admin.merge_entities(session, "GPE:kobani", "PERSON:mazloum abdi")
    with pytest.raises(admin.AdminError, match="itself"):
        await admin.merge_entities(session, "GPE:kobani", "GPE:kobani")
    await session.commit()
    overrides = await admin.load_overrides(session)
    assert overrides.merges == {
        "PERSON:mazloum kobane": "PERSON:mazloum abdi",
        "PERSON:mazlum abdi": "PERSON:mazloum abdi",
    }
    assert overrides.names["PERSON:mazloum abdi"] == "Mazloum Abdi"


async def test_split_undoes_a_merge_and_moves_aliases(session: AsyncSession) -> None:
    session.add(Entity(key="PERSON:assad", kind="PERSON", name="Assad"))
    session.add(Entity(key="PERSON:bashar al assad", kind="PERSON", name="Bashar al-Assad"))
    await session.flush()
    await admin.merge_entities(session, "PERSON:assad", "PERSON:bashar al assad")
    change = await admin.split_entity(session, "PERSON:assad")
    assert change.unmerged
    assert (await entity(session, "PERSON:assad")).merged_into is None
    with pytest.raises(admin.AdminError, match="not merged"):
        await admin.split_entity(session, "PERSON:assad")

    await admin.add_alias(session, "PERSON:bashar al assad", "Assad junior")
    moved = await admin.split_entity(
        session, "PERSON:bashar al assad", aliases=["Assad junior"], into="PERSON:hafez al assad"
    )
    await session.commit()
    assert moved.moved == ("Assad junior",) and moved.target is not None
    assert moved.target.name == "Hafez al-Assad" and moved.target.created
    overrides = await admin.load_overrides(session)
    assert overrides.aliases == {"assad junior": "PERSON:hafez al assad"}


async def test_enricher_applies_loaded_overrides(session: AsyncSession) -> None:
    session.add(
        Entity(key="ORG:sinjar resistance units", kind="ORG", name="Sinjar Resistance Units")
    )
    await session.flush()
    await admin.add_alias(session, "ORG:ybs", "YBŞ", name="Sinjar Resistance Units (YBŞ)")
    await admin.merge_entities(session, "ORG:sinjar resistance units", "ORG:ybs")
    await session.commit()
    enricher = Enricher()
    enricher.load()
    assert await admin.refresh_overrides(session, enricher)  # changed: applied
    assert not await admin.refresh_overrides(session, enricher)  # unchanged: no rebuild
    body = "Fighters of the Sinjar Resistance Units and the YBŞ clashed with the Iraqi Army."
    result = enricher.enrich(
        Article(
            url="https://t.example/1",
            final_url="https://t.example/1",
            canonical_url="https://t.example/1",
            host="t.example",
            body_text=body,
            content_hash="0" * 64,
            language="en",
            discovered_at=NOW,
            fetched_at=NOW,
            parsed_at=NOW,
        )
    )
    keys = {e.key: e for e in result.entities}
    assert "ORG:sinjar resistance units" not in keys
    assert keys["ORG:ybs"].mentions == 2 and keys["ORG:ybs"].name == "Sinjar Resistance Units (YBŞ)"
    assert keys["ORG:iraqi army"].kind == "ORG"


def test_cli_alias_merge_split(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSFLOW_DATABASE_URL", database_url)
    get_settings.cache_clear()
    app = typer.Typer()
    register(app)
    runner = CliRunner()
    try:
        result = runner.invoke(app, ["entities", "alias", "add", "GPE:iraq", "Irak"])
        assert result.exit_code == 0, result.output
        assert "'Irak' -> GPE:iraq (created)" in result.output
        result = runner.invoke(app, ["entities", "alias", "add", "GPE:federal iraq", "Fed Iraq"])
        assert result.exit_code == 0, result.output
        result = runner.invoke(app, ["entities", "merge", "GPE:federal iraq", "GPE:iraq"])
        assert result.exit_code == 0 and "merged GPE:federal iraq into GPE:iraq" in result.output
        result = runner.invoke(app, ["entities", "find", "iraq"])
        assert result.exit_code == 0, result.output
        assert "GPE:federal iraq\tfederal iraq\t0 articles -> merged into GPE:iraq" in result.output
        assert "    Irak\t(user)" in result.output
        result = runner.invoke(app, ["entities", "find", "federal iraq", "--json"])
        assert result.exit_code == 0, result.output
        found = json.loads(result.output)
        assert found[0]["key"] == "GPE:federal iraq" and found[0]["merged_into"] == "GPE:iraq"
        result = runner.invoke(app, ["entities", "split", "GPE:federal iraq"])
        assert result.exit_code == 0 and "its own entity again" in result.output
        result = runner.invoke(app, ["entities", "merge", "GPE:iraq", "PERSON:nobody"])
        assert result.exit_code != 0
        assert isinstance(result.exception, admin.AdminError)
    finally:
        get_settings.cache_clear()


async def test_find_entities_by_key_name_or_alias(session: AsyncSession) -> None:
    from shared.db.models import Article as ArticleRow
    from shared.db.models import ArticleEntity

    pkk = Entity(key="ORG:kurdistan workers party", kind="ORG", name="Kurdistan Workers' Party")
    kck = Entity(
        key="ORG:kurdistan communities union", kind="ORG", name="Kurdistan Communities Union"
    )
    session.add_all([pkk, kck])
    article = ArticleRow(
        url="https://t.example/a",
        canonical_url="https://t.example/a",
        body_text="PKK",
        content_hash="0" * 64,
    )
    session.add(article)
    await session.flush()
    session.add(ArticleEntity(article_id=article.id, entity_id=pkk.id, mentions=3, salience=1.0))
    session.add(EntityAlias(entity_id=pkk.id, alias="PKK", source="observed"))
    await session.flush()
    await admin.add_alias(session, "ORG:kurdistan workers party", "Partiya Karkerên Kurdistanê")
    await admin.merge_entities(
        session, "ORG:kurdistan communities union", "ORG:kurdistan workers party"
    )

    by_name = await admin.find_entities(session, "kurdistan")
    assert [e.key for e in by_name] == [  # most-linked first
        "ORG:kurdistan workers party",
        "ORG:kurdistan communities union",
    ]
    assert by_name[0].articles == 1
    assert by_name[0].aliases[0] == ("Partiya Karkerên Kurdistanê", "user")  # user aliases first
    assert by_name[1].merged_into == "ORG:kurdistan workers party"
    by_alias = await admin.find_entities(session, "PKK")
    assert [e.key for e in by_alias] == ["ORG:kurdistan workers party"]
    by_key = await admin.find_entities(session, "ORG:Kurdistan Communities Union")
    assert [e.key for e in by_key] == ["ORG:kurdistan communities union"]


async def test_alias_in_arabic_script_reaches_the_multilingual_gazetteer(
    session: AsyncSession,
) -> None:
    change = await admin.add_alias(
        session, "PERSON:barham salih", "بەرهەم ساڵح", name="Barham Salih"
    )
    await session.commit()
    assert change.entity.key == "PERSON:barham salih"
    enricher = Enricher()
    enricher.load()
    assert await admin.refresh_overrides(session, enricher)
    body = "سەرۆک کۆماری پێشووی عێراق بەرهەم ساڵح لە سلێمانی قسەی بۆ ڕۆژنامەنووسان کرد. " * 4
    result = enricher.enrich(
        Article(
            url="https://t.example/ckb",
            final_url="https://t.example/ckb",
            canonical_url="https://t.example/ckb",
            host="t.example",
            body_text=body,
            content_hash="1" * 64,
            language="ckb",
            discovered_at=NOW,
            fetched_at=NOW,
            parsed_at=NOW,
        )
    )
    keys = {e.key: e.name for e in result.entities}
    assert keys["PERSON:barham salih"] == "Barham Salih"
    assert {"GPE:iraq", "GPE:sulaymaniyah"} <= set(keys)
