"""The storyteller's evaluation articles as enriched records, to store with the real writer."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from shared.messages import Article, EnrichedArticle, Enrichment, EntityRef


def enriched_from_eval(article: dict[str, Any]) -> EnrichedArticle:
    """One ``tests/fixtures/storyteller/eval.json`` article as a ``news.enriched.v1`` record."""
    published = datetime.fromisoformat(article["published_at"])
    body = article["lead"]
    url = article["canonical_url"]
    record = Article(
        url=url,
        final_url=url,
        canonical_url=url,
        host=article["source"],
        status="near_duplicate" if article["duplicate_of"] else "ok",
        title=article["title"],
        published_at=published,
        published_source="jsonld",
        language=article["language"],
        lead=article["lead"],
        body_text=body,
        content_hash=hashlib.sha256(url.encode()).hexdigest(),
        duplicate_of=article["duplicate_of"],
        word_count=len(body.split()),
        discovered_at=published,
        fetched_at=published + timedelta(seconds=1),
        parsed_at=published + timedelta(seconds=2),
    )
    entities = [
        EntityRef(
            key=e["key"],
            kind=e["kind"],
            name=e["key"].split(":", 1)[1],
            mentions=e["mentions"],
            salience=e["salience"],
        )
        for e in article["entities"]
    ]
    return EnrichedArticle(
        article=record,
        entities=entities,
        enrichment=Enrichment(model="eval", rules_version="eval", enriched_at=published),
    )
