from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared.messages import FeedEntry, Page

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "parser"
#: every test parses "now" at this instant, so future/lag rules are deterministic
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def fixture_html(name: str, *, encoding: str = "utf-8", errors: str = "strict") -> str:
    return (FIXTURES / name).read_bytes().decode(encoding, errors)


def build_page(
    html: str,
    url: str,
    *,
    feed_published: datetime | None = None,
    discovered_at: datetime = datetime(2026, 11, 21, 7, 0, tzinfo=UTC),
    **extra: Any,
) -> Page:
    return Page(
        url=url,
        final_url=extra.pop("final_url", url),
        host=urlsplit(url).hostname or "",
        status_code=extra.pop("status_code", 200),
        content_type="text/html",
        charset=extra.pop("charset", "utf-8"),
        html=html,
        entry=FeedEntry(published_at=feed_published),
        discovered_at=discovered_at,
        fetched_at=discovered_at,
        **extra,
    )


@pytest.fixture
def page_from() -> Callable[..., Page]:
    """page_from(fixture_name, url, **page_fields) -> Page"""

    def make(name: str, url: str, **kwargs: Any) -> Page:
        encoding = kwargs.pop("encoding", "utf-8")
        errors = kwargs.pop("errors", "strict")
        return build_page(fixture_html(name, encoding=encoding, errors=errors), url, **kwargs)

    return make


@pytest.fixture
def read_fixture() -> Callable[..., str]:
    """read_fixture(name, encoding="utf-8", errors="strict") -> decoded text"""
    return fixture_html


@pytest.fixture
def build() -> Callable[..., Page]:
    """build(html, url, **page_fields) -> Page"""
    return build_page
