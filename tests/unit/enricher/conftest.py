"""Shared fixtures for enricher tests: one spaCy load per session, an Article factory."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from services.enricher.pipeline import Enricher
from shared.messages import Article

FIXED_TIME = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

ArticleFactory = Callable[..., Article]


def _article(body: str, *, title: str | None = None, **fields: Any) -> Article:
    digest = hashlib.sha256(body.encode()).hexdigest()
    url = fields.pop("url", f"https://news.example/{digest[:12]}")
    values: dict[str, Any] = {
        "url": url,
        "final_url": url,
        "canonical_url": url,
        "host": "news.example",
        "title": title,
        "body_text": body,
        "content_hash": digest,
        "language": "en",
        "discovered_at": FIXED_TIME,
        "fetched_at": FIXED_TIME,
        "parsed_at": FIXED_TIME,
    }
    values.update(fields)
    return Article(**values)


@pytest.fixture(scope="session")
def make_article() -> ArticleFactory:
    return _article


@pytest.fixture(scope="session")
def enricher() -> Enricher:
    """The real model, loaded once per test session (about a second)."""
    instance = Enricher()
    instance.load()
    return instance
