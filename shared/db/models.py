"""PostgreSQL schema. Table and column names in the contract (see README) are stable API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from shared.db.base import Base

Timestamp = DateTime(timezone=True)


class Feed(Base):
    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    url: Mapped[str] = mapped_column(Text, unique=True)
    title: Mapped[str | None] = mapped_column(Text)
    site_url: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(String(16), comment="rss|atom|json|sitemap|…")
    added_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    # polling state: a restart resumes from here
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    last_polled_at: Mapped[datetime | None] = mapped_column(Timestamp)
    next_poll_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now(), index=True)
    poll_interval_s: Mapped[float] = mapped_column(Float, server_default="900")
    last_status: Mapped[int | None] = mapped_column(SmallInteger)
    last_outcome: Mapped[str | None] = mapped_column(String(32))
    consecutive_failures: Mapped[int] = mapped_column(Integer, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_success_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_new_item_at: Mapped[datetime | None] = mapped_column(Timestamp)
    items_seen: Mapped[int] = mapped_column(BigInteger, server_default="0")
    items_new: Mapped[int] = mapped_column(BigInteger, server_default="0")
    publish_times: Mapped[list[datetime] | None] = mapped_column(
        ARRAY(Timestamp), comment="Recent item publish times, for the adaptive interval."
    )


class SeenLink(Base):
    """Fetcher dedup: a normalised article URL is sent to news.links.v1 once, ever."""

    __tablename__ = "seen_links"

    url: Mapped[str] = mapped_column(Text, primary_key=True)
    feed_id: Mapped[int | None] = mapped_column(BigInteger)
    first_seen_at: Mapped[datetime] = mapped_column(
        Timestamp, server_default=func.now(), index=True
    )
    # set by the writer: stored | duplicate | dead_letter. `newsflow run --once` waits on it.
    outcome: Mapped[str | None] = mapped_column(String(16))
    done_at: Mapped[datetime | None] = mapped_column(Timestamp)
    #: the feed entry the parser falls back on (title, published_at, authors, guid), kept
    #: only while the link is unfinished: a re-drive re-sends it; the writer clears it with
    #: the outcome, so finished links carry nothing
    entry: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))

    __table_args__ = (
        # exactly the re-drive's predicate (services/cli/ops/recover.py): unfinished links
        # in (first_seen_at, url) keyset order, without scanning the finished ones
        Index(
            "ix_seen_links_unfinished",
            "first_seen_at",
            "url",
            postgresql_where=text("done_at IS NULL"),
        ),
    )


class HostState(Base):
    """Per-host backoff shared by fetcher workers (429/Retry-After slows only that host)."""

    __tablename__ = "host_state"

    host: Mapped[str] = mapped_column(Text, primary_key=True)
    blocked_until: Mapped[datetime | None] = mapped_column(Timestamp)
    last_reason: Mapped[str | None] = mapped_column(Text)


#: The PostgreSQL text-search configuration of an article body by its language (the
#: enricher's, else the parser's): snowball stemming where PostgreSQL 15 ships it; Kurdish,
#: Persian and anything else use 'simple' (lowercased words, no stemming). Migration 0003 holds
#: the same expression; a change here needs a new migration.
SEARCH_CONFIG_BY_LANGUAGE: dict[str, str] = {
    "en": "english",
    "tr": "turkish",
    "ar": "arabic",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "ru": "russian",
}


def search_config_sql(column: str = "language") -> str:
    """SQL for the regconfig of a body whose language is in ``column`` (immutable CASE)."""
    whens = " ".join(
        f"WHEN '{code}' THEN '{config}'::regconfig"
        for code, config in SEARCH_CONFIG_BY_LANGUAGE.items()
    )
    return f"CASE {column} {whens} ELSE 'simple'::regconfig END"


#: Titles are indexed unstemmed ('simple': names), bodies in their language's configuration.
#: A CASE over regconfig constants is immutable, as a generated column requires.
SEARCH_VECTOR_SQL = (
    "setweight(to_tsvector('simple', coalesce(title, '')), 'A') || "
    f"setweight(to_tsvector({search_config_sql()}, coalesce(body_text, '')), 'B')"
)


class Article(Base):
    __tablename__ = "articles"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    url: Mapped[str] = mapped_column(Text)
    final_url: Mapped[str | None] = mapped_column(Text)
    canonical_url: Mapped[str] = mapped_column(Text, unique=True)
    host: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), server_default="ok")
    title: Mapped[str | None] = mapped_column(Text)
    authors: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    published_at: Mapped[datetime | None] = mapped_column(Timestamp, index=True)
    published_source: Mapped[str | None] = mapped_column(String(16))
    modified_at: Mapped[datetime | None] = mapped_column(Timestamp)
    modified_source: Mapped[str | None] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(16))
    site_name: Mapped[str | None] = mapped_column(Text)
    top_image: Mapped[str | None] = mapped_column(Text)
    lead: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str] = mapped_column(Text)
    captions: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    removed: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    paywalled: Mapped[bool] = mapped_column(Boolean, server_default="false")
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    duplicate_of: Mapped[str | None] = mapped_column(
        Text, comment="canonical_url of the original article (syndicated copy or rewrite)"
    )
    similarity: Mapped[float | None] = mapped_column(Float)
    word_count: Mapped[int] = mapped_column(Integer, server_default="0")
    extraction: Mapped[str | None] = mapped_column(String(32))
    feed_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    mentions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    enrichment: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    discovered_at: Mapped[datetime | None] = mapped_column(Timestamp)
    fetched_at: Mapped[datetime | None] = mapped_column(Timestamp)
    parsed_at: Mapped[datetime | None] = mapped_column(Timestamp)
    enriched_at: Mapped[datetime | None] = mapped_column(Timestamp)
    # indexed: `newsflow run` counts what its run stored and updated (and what is still
    # waiting for its story or alert scan) by these every few seconds; without the indexes
    # each count scanned the whole table (110 ms a refresh at 50,000 articles)
    stored_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now(), index=True)
    updated_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now(), index=True)
    search: Mapped[Any] = mapped_column(
        TSVECTOR,
        Computed(SEARCH_VECTOR_SQL, persisted=True),
    )

    __table_args__ = (Index("ix_articles_search", "search", postgresql_using="gin"),)


class ArticleFingerprint(Base):
    """Parser dedup state shared by all parser workers: exact hash and MinHash LSH bands."""

    __tablename__ = "article_fingerprints"

    canonical_url: Mapped[str] = mapped_column(Text, primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    minhash: Mapped[bytes | None] = mapped_column(LargeBinary)
    first_seen_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class MinhashBand(Base):
    __tablename__ = "minhash_bands"

    band: Mapped[int] = mapped_column(SmallInteger)
    hash: Mapped[int] = mapped_column(BigInteger)
    canonical_url: Mapped[str] = mapped_column(Text)

    __table_args__ = (PrimaryKeyConstraint("band", "hash", "canonical_url"),)


class Entity(Base):
    __tablename__ = "entities"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    key: Mapped[str] = mapped_column(
        Text, unique=True, comment="Stable canonical key from the enricher"
    )
    kind: Mapped[str] = mapped_column(String(16), index=True)
    name: Mapped[str] = mapped_column(Text)
    merged_into: Mapped[int | None] = mapped_column(ForeignKey("entities.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())

    # the alerter finds the entities merged into one (migration 0004); few rows are merged
    __table_args__ = (
        Index(
            "ix_entities_merged_into",
            "merged_into",
            postgresql_where=text("merged_into IS NOT NULL"),
        ),
    )


class EntityAlias(Base):
    __tablename__ = "entity_aliases"

    entity_id: Mapped[int] = mapped_column(
        ForeignKey("entities.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(Text, primary_key=True)
    source: Mapped[str] = mapped_column(String(16), server_default="observed")
    first_seen_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())

    # The primary key (entity_id, alias) is the contract's unique (entity_id, alias).
    __table_args__ = (Index("ix_entity_aliases_alias", "alias"),)


class ArticleEntity(Base):
    """An article's link to an entity (~30 per article).

    No foreign keys on purpose: PostgreSQL checks them with a trigger call per inserted row,
    which cost as much as writing the article itself (migration 0002). The writer inserts
    links only for articles it upserted and entities it locked ``FOR KEY SHARE`` in the same
    transaction; statement-level triggers delete an article's or entity's links with it.
    """

    __tablename__ = "article_entities"

    article_id: Mapped[int] = mapped_column(BigInteger)
    entity_id: Mapped[int] = mapped_column(BigInteger, index=True)
    mentions: Mapped[int] = mapped_column(Integer)
    salience: Mapped[float] = mapped_column(Float, server_default="0")

    __table_args__ = (PrimaryKeyConstraint("article_id", "entity_id"),)


class Page(Base):
    """Archive of fetched pages, so later stages can be replayed without refetching."""

    __tablename__ = "pages"

    url: Mapped[str] = mapped_column(Text, primary_key=True)
    final_url: Mapped[str] = mapped_column(Text)
    host: Mapped[str] = mapped_column(Text)
    payload_gz: Mapped[bytes] = mapped_column(LargeBinary, comment="gzip of the news.pages.v1 JSON")
    fetched_at: Mapped[datetime] = mapped_column(Timestamp, index=True)


class DeadLetter(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(
        String(64), unique=True, comment="sha256 of the DLQ record"
    )
    stage: Mapped[str] = mapped_column(String(16), index=True)
    error_kind: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, server_default="1")
    source_topic: Mapped[str | None] = mapped_column(Text)
    key: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[str | None] = mapped_column(Text)
    payload_ref: Mapped[str | None] = mapped_column(Text)
    service: Mapped[str | None] = mapped_column(Text)
    failed_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    replayed_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Story(Base):
    """One incident: the articles that report it, across outlets and languages (storyteller).

    A merged story is kept with ``merged_into`` pointing at the survivor (its articles move
    there); nothing is deleted. ``version`` grows by one on every change (news.stories.v1).
    ``weights``/``counts``/``reports`` are the assignment state: summed salience per entity
    key over the story's own reports, articles per key, and the number of non-copy reports.
    """

    __tablename__ = "stories"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    headline: Mapped[str | None] = mapped_column(Text)
    headline_article_id: Mapped[int | None] = mapped_column(BigInteger)
    first_seen: Mapped[datetime] = mapped_column(Timestamp)
    last_updated: Mapped[datetime] = mapped_column(Timestamp, index=True)
    article_count: Mapped[int] = mapped_column(Integer, server_default="0")
    sources: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    languages: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    top_entities: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    first_report_article_id: Mapped[int | None] = mapped_column(BigInteger)
    first_report_source: Mapped[str | None] = mapped_column(Text)
    weights: Mapped[dict[str, float]] = mapped_column(JSONB, server_default="{}")
    counts: Mapped[dict[str, int]] = mapped_column(JSONB, server_default="{}")
    reports: Mapped[int] = mapped_column(Integer, server_default="0")
    merged_into: Mapped[int | None] = mapped_column(
        ForeignKey("stories.id", ondelete="RESTRICT"), index=True
    )
    vectors: Mapped[bytes | None] = mapped_column(
        LargeBinary, comment="float16 text vectors of up to 8 representative reports"
    )
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    pending_article_id: Mapped[int | None] = mapped_column(
        BigInteger,
        comment="the opener, not encoded yet (encoded when a later article is compared)",
    )
    pending_text: Mapped[str | None] = mapped_column(
        Text, comment="the pending opener's encoder input (title + lead)"
    )
    pin: Mapped[int | None] = mapped_column(
        BigInteger,
        comment="correction group: stories with different pins are never merged automatically",
    )
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())


class StoryArticle(Base):
    """An article's place in its story (one story per article: the natural key).

    ``vector``: the title + lead text vector (float16), so a later article can be compared
    with each report without re-encoding it; NULL when the storyteller placed the article
    without encoding it (entity evidence decided, or a wire copy). ``role``: first_report | independent | copy |
    update. No foreign key to ``articles``: rows are written only for stored article ids
    (the storyteller reads them from ``articles``), and a deleted article's row is harmless.
    """

    __tablename__ = "story_articles"

    article_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"), index=True)
    canonical_url: Mapped[str] = mapped_column(Text, index=True)
    url: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(Text)
    published_at: Mapped[datetime] = mapped_column(Timestamp)
    role: Mapped[str] = mapped_column(String(16))
    copy_of: Mapped[str | None] = mapped_column(Text)
    vector: Mapped[bytes | None] = mapped_column(
        LargeBinary,
        comment="float16 title + lead vector; NULL when the article was placed without encoding it",
    )
    assigned_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    pinned_at: Mapped[datetime | None] = mapped_column(
        Timestamp, comment="when an analyst put the article in this story (split or move)"
    )


class StoryKey(Base):
    """The candidate index: a live story filed under each entity key it carries, with its
    coverage span, so candidates are found by key and time window, never by a scan."""

    __tablename__ = "story_keys"

    key: Mapped[str] = mapped_column(Text)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id", ondelete="CASCADE"))
    first_seen: Mapped[datetime] = mapped_column(Timestamp)
    last_updated: Mapped[datetime] = mapped_column(Timestamp)

    __table_args__ = (
        PrimaryKeyConstraint("key", "story_id"),
        Index("ix_story_keys_key_last_updated", "key", "last_updated"),
        Index("ix_story_keys_story_id", "story_id"),
    )


class Watch(Base):
    """A saved query (``newsflow watch add``); the alerter matches active ones in the stream.

    ``query`` is the saved form, entity aliases already resolved to keys; ``query_input`` is
    what the user typed. The delivery columns are the webhook destination's status: a failing
    destination is recorded here (never silently disabled).
    """

    __tablename__ = "watches"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(Text, unique=True)
    query: Mapped[str] = mapped_column(Text)
    query_input: Mapped[str] = mapped_column(Text)
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_secret: Mapped[str | None] = mapped_column(
        Text, comment="Standard Webhooks signing secret (whsec_<base64>)"
    )
    paused: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    # webhook destination status
    last_status: Mapped[int | None] = mapped_column(SmallInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(Timestamp)
    consecutive_failures: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_delivered_at: Mapped[datetime | None] = mapped_column(Timestamp)


class Alert(Base):
    """One alert per (watch, article), whatever redelivery or re-enrichment happens."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    watch_id: Mapped[int] = mapped_column(ForeignKey("watches.id", ondelete="CASCADE"))
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    matched_terms: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    matched_entities: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default="{}")
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(
        Timestamp, comment="When it was produced to news.alerts.v1 (NULL: not yet)"
    )
    delivery: Mapped[str] = mapped_column(
        String(16), server_default="none", comment="none|pending|delivered|failed|gone"
    )
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    last_status: Mapped[int | None] = mapped_column(SmallInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(Timestamp)

    __table_args__ = (
        UniqueConstraint("watch_id", "article_id", name="uq_alerts_watch_article"),
        Index("ix_alerts_article_id", "article_id"),
        Index(
            "ix_alerts_pending",
            "id",
            postgresql_where=text("delivery = 'pending' OR published_at IS NULL"),
        ),
    )


class AlertScan(Base):
    """Which enrichment of each article the alerter has matched (``run --once`` waits on it)."""

    __tablename__ = "alert_scans"

    article_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    enriched_at: Mapped[datetime | None] = mapped_column(Timestamp)
    scanned_at: Mapped[datetime] = mapped_column(Timestamp, server_default=func.now())
