"""Kept so code written against the old module keeps importing: topics are declared in
:mod:`shared.topology`, with the stages that read and write them. New code imports that."""

from shared.topology import ALL_TOPICS, ARTICLES, BY_NAME, DAY_MS, DLQ, ENRICHED, LINKS, PAGES
from shared.topology import TopicSpec as TopicSpec

__all__ = ["ALL_TOPICS", "ARTICLES", "BY_NAME", "DAY_MS", "DLQ", "ENRICHED", "LINKS", "PAGES"]
