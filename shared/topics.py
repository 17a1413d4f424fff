"""Topic declarations: one place for names, models, keys and retention."""

from __future__ import annotations

from dataclasses import dataclass

from shared.messages import (
    MAX_MESSAGE_BYTES,
    Alert,
    Article,
    DeadLetter,
    EnrichedArticle,
    Link,
    Page,
    _Record,
)

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    name: str
    model: type[_Record]
    key: str
    retention_ms: int
    description: str

    @property
    def configs(self) -> dict[str, str]:
        return {
            "cleanup.policy": "delete",
            "retention.ms": str(self.retention_ms),
            "max.message.bytes": str(MAX_MESSAGE_BYTES),
        }


LINKS = TopicSpec("news.links.v1", Link, "host", 7 * DAY_MS, "article URLs to fetch")
PAGES = TopicSpec("news.pages.v1", Page, "host", 3 * DAY_MS, "fetched HTML pages")
ARTICLES = TopicSpec("news.articles.v1", Article, "canonical_url", 14 * DAY_MS, "clean articles")
ENRICHED = TopicSpec(
    "news.enriched.v1", EnrichedArticle, "canonical_url", 14 * DAY_MS, "articles with entities"
)
DLQ = TopicSpec("news.dlq.v1", DeadLetter, "stage", 30 * DAY_MS, "failures with stage and reason")

ALERTS = TopicSpec(
    "news.alerts.v1", Alert, "watch_id", 30 * DAY_MS, "watch matches on stored articles"
)

ALL_TOPICS: tuple[TopicSpec, ...] = (LINKS, PAGES, ARTICLES, ENRICHED, DLQ, ALERTS)
BY_NAME = {spec.name: spec for spec in ALL_TOPICS}
