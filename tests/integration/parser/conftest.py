from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from services.parser.pipeline import parse_page
from shared.messages import Article, Page
from shared.settings import Settings

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "parser"
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@pytest.fixture
def parsed() -> Callable[..., Article]:
    """parsed(fixture_name, url, replace={old: new}) -> Article, via the real parse_page."""

    def make(name: str, url: str, *, replace: dict[str, str] | None = None) -> Article:
        html = (FIXTURES / name).read_text(encoding="utf-8")
        for old, new in (replace or {}).items():
            html = html.replace(old, new)
        page = Page(
            url=url,
            final_url=url,
            host=urlsplit(url).hostname or "",
            status_code=200,
            html=html,
            discovered_at=datetime(2026, 11, 21, 7, 0, tzinfo=UTC),
            fetched_at=datetime(2026, 11, 21, 7, 0, tzinfo=UTC),
        )
        return parse_page(page, settings=Settings(), now=NOW)

    return make
