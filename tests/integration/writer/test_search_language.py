"""The full-text vector follows the article's language (migration 0003_search_language)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.cli.ops.read import search
from services.writer.articles import write_batch
from shared.messages import Enrichment
from tests.integration.writer.cli_helpers import db_rows
from tests.support.factories import T0, article, enriched

TURKISH = (
    "Milli İstihbarat Teşkilatı, Kandil'deki operasyonunda PKK'nın sözde yöneticisini etkisiz "
    "hale getirdi. Operasyonların sürdüğü bildirildi."
)
ARABIC = "أعلن جهاز مكافحة الإرهاب تفكيك خلية في كركوك بعد العملية الأمنية الواسعة."


async def test_turkish_and_arabic_bodies_are_stemmed_in_their_language(
    sessions: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    items = []
    for url, body, language in (
        ("https://haber.example/tr", TURKISH, "tr"),
        ("https://akhbar.example/ar", ARABIC, "ar"),
    ):
        # the parser guessed English; the enricher's language is what the writer stores
        item = enriched(article(url, body=body, title="x", language="en"), entities=[])
        enrichment = Enrichment(
            model="m", rules_version="r", enriched_at=T0 + timedelta(minutes=1), language=language
        )
        items.append(item.model_copy(update={"enrichment": enrichment}))
    await write_batch(sessions, items)
    rows = await db_rows(database_url, "SELECT canonical_url, language FROM articles ORDER BY 1")
    assert [r["language"] for r in rows] == ["ar", "tr"]
    async with sessions() as session:
        turkish = await search(session, "operasyon")
        arabic = await search(session, "عملية")
    assert [h["canonical_url"] for h in turkish] == ["https://haber.example/tr"]
    assert [h["canonical_url"] for h in arabic] == ["https://akhbar.example/ar"]
    # the snippet highlights the stemmed word in the article's own language
    assert "«operasyonunda»" in turkish[0]["snippet"]
    assert "«العملية»" in arabic[0]["snippet"]
