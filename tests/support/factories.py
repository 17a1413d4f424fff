from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from shared.messages import Article, EnrichedArticle, Enrichment, EntityRef, Mention

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

BODY = (
    "Turkish forces struck PKK positions in northern Iraq on Thursday, the Ministry of National "
    "Defence said.\n\nIraqi Prime Minister Mohammed Shia al-Sudani discussed border security with "
    "Turkish officials in Baghdad."
)


def article(
    url: str = "https://news.example.com/2026/11/20/strikes",
    *,
    body: str = BODY,
    title: str = "Türkiye strikes PKK targets in northern Iraq",
    **fields: object,
) -> Article:
    data: dict[str, object] = {
        "url": url,
        "final_url": url,
        "canonical_url": url,
        "host": "news.example.com",
        "title": title,
        "authors": ["Ayşe Yılmaz"],
        "published_at": T0,
        "published_source": "jsonld",
        "language": "en",
        "body_text": body,
        "content_hash": hashlib.sha256(body.encode()).hexdigest(),
        "word_count": len(body.split()),
        "discovered_at": T0,
        "fetched_at": T0 + timedelta(seconds=1),
        "parsed_at": T0 + timedelta(seconds=2),
    }
    data.update(fields)
    return Article.model_validate(data)


def entity(
    key: str, kind: str, name: str, *aliases: str, mentions: int = 1, salience: float = 0.5
) -> EntityRef:
    return EntityRef.model_validate(
        {
            "key": key,
            "kind": kind,
            "name": name,
            "aliases": list(aliases or (name,)),
            "mentions": mentions,
            "salience": salience,
        }
    )


def enriched(
    art: Article | None = None,
    *,
    entities: list[EntityRef] | None = None,
    enriched_at: datetime | None = None,
) -> EnrichedArticle:
    art = art or article()
    ents = (
        entities
        if entities is not None
        else [
            entity("GPE:turkiye", "GPE", "Türkiye", "Turkish", mentions=2, salience=0.9),
            entity("ORG:pkk", "ORG", "PKK", "PKK", salience=0.7),
            entity("GPE:iraq", "GPE", "Iraq", "Iraq", "Iraqi", mentions=2, salience=0.6),
            entity(
                "PERSON:mohammed shia al sudani",
                "PERSON",
                "Mohammed Shia al-Sudani",
                "Mohammed Shia al-Sudani",
                salience=0.4,
            ),
        ]
    )
    mentions = []
    for ref in ents:
        for alias in ref.aliases:
            start = art.body_text.find(alias)
            if start >= 0:
                mentions.append(
                    Mention(
                        text=alias,
                        start=start,
                        end=start + len(alias),
                        kind=ref.kind,
                        entity_key=ref.key,
                    )
                )
    return EnrichedArticle(
        article=art,
        entities=ents,
        mentions=mentions,
        enrichment=Enrichment(
            model="test",
            rules_version="test-1",
            enriched_at=enriched_at or T0 + timedelta(seconds=3),
        ),
    )
