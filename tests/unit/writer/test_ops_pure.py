"""Pure helpers behind the operator commands: time parsing, topic mapping, record rebuilds,
DB error classification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from services.cli.common import plain as _plain
from services.cli.ops.dlq import topic_of
from services.cli.ops.replay import article_record
from services.cli.ops.when import parse_since
from shared.db.errors import db_error_kind, is_transient_db_error
from shared.topology import ARTICLES, DLQ, LINKS, PAGES

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20", datetime(2026, 11, 20, tzinfo=UTC)),
        ("2026-11-20T09:30", datetime(2026, 11, 20, 9, 30, tzinfo=UTC)),
        ("2026-11-20T09:30:00Z", datetime(2026, 11, 20, 9, 30, tzinfo=UTC)),
        ("2026-11-20T12:30+03:00", datetime(2026, 11, 20, 9, 30, tzinfo=UTC)),
        ("2h", NOW - timedelta(hours=2)),
        ("30m ago", NOW - timedelta(minutes=30)),
        ("7D", NOW - timedelta(days=7)),
        ("1.5h", NOW - timedelta(minutes=90)),
    ],
)
def test_parse_since_accepts_iso_and_ages(text: str, expected: datetime) -> None:
    assert parse_since(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01", "5 parsecs", ""])
def test_parse_since_explains_what_it_accepts(text: str) -> None:
    with pytest.raises(ValueError, match="ISO date or time"):
        parse_since(text, now=NOW)


def test_topic_of_strips_any_prefix_but_not_lookalikes() -> None:
    assert topic_of("news.pages.v1") is PAGES
    assert topic_of("t1a2b3c4.news.articles.v1") is ARTICLES
    assert topic_of("tenant.a.news.links.v1") is LINKS
    assert topic_of("news.dlq.v1") is DLQ
    assert topic_of("xnews.pages.v1") is None  # not a prefix boundary
    assert topic_of("news.pages.v2") is None
    assert topic_of(None) is None


def test_article_record_rebuilds_the_contract_from_a_row() -> None:
    stored = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    row = {
        "url": "https://a.example/x?utm=1",
        "final_url": None,
        "canonical_url": "https://a.example/x",
        "host": "a.example",
        "status": "near_duplicate",
        "title": "T",
        "authors": None,
        "published_at": stored,
        "published_source": "feed",
        "body_text": "Body",
        "captions": ["c"],
        "removed": [{"text": "Share", "reason": "share_bar"}],
        "paywalled": False,
        "content_hash": "0" * 64,
        "duplicate_of": "https://b.example/y",
        "similarity": 0.91,
        "word_count": None,
        "feed_id": 7,
        "discovered_at": None,
        "fetched_at": None,
        "parsed_at": None,
        "stored_at": stored,
        "id": 5,  # extra columns are ignored
        "search": "'body':1",
    }
    record = article_record(row)
    assert record.final_url == row["url"]  # an unknown final URL is the fetched one
    assert record.authors == [] and record.captions == ["c"]
    assert record.removed[0].reason == "share_bar"
    assert (record.status, record.duplicate_of, record.similarity) == (
        "near_duplicate",
        "https://b.example/y",
        0.91,
    )
    assert record.discovered_at == record.fetched_at == record.parsed_at == stored
    assert record.word_count == 0 and record.feed_id == 7


def test_db_errors_are_classified_by_sqlstate() -> None:
    assert db_error_kind(asyncpg.exceptions.RaiseError("x")) == "db_P0001"
    assert db_error_kind(asyncpg.exceptions.CharacterNotInRepertoireError("x")) == "db_22021"
    assert db_error_kind(ValueError("x")) == "bug_ValueError"
    # SQLAlchemy wraps the driver error in .orig; the code is found through it
    wrapped = DBAPIError("INSERT", {}, asyncpg.exceptions.UniqueViolationError("dup"))
    assert db_error_kind(wrapped) == "db_23505"
    assert is_transient_db_error(asyncpg.exceptions.DeadlockDetectedError("x"))
    assert is_transient_db_error(asyncpg.exceptions.AdminShutdownError("x"))
    assert is_transient_db_error(asyncpg.exceptions.ConnectionDoesNotExistError("x"))
    assert is_transient_db_error(ConnectionResetError())
    assert not is_transient_db_error(asyncpg.exceptions.RaiseError("x"))
    assert not is_transient_db_error(asyncpg.exceptions.NotNullViolationError("x"))


def test_cli_json_uses_iso_times() -> None:
    value = {"at": NOW, "rows": ({"d": NOW.date()},), "n": 1}
    assert _plain(value) == {
        "at": "2026-11-22T12:00:00+00:00",
        "rows": [{"d": "2026-11-22"}],
        "n": 1,
    }
