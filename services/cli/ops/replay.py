"""Re-run later stages from stored data: ``newsflow replay --from articles|pages --since T``.

* ``pages``: the writer's page archive (gzip of each ``news.pages.v1`` record, exactly as
  fetched) goes back onto ``news.pages.v1``: parse, enrich and store run again, no refetch.
* ``articles``: stored articles are rebuilt into ``news.articles.v1`` records: enrich and
  store run again (new rules, aliases or model). The newer ``enriched_at`` makes the writer
  replace the row and its links.

Backfill is the same path with an early ``--since``. Records are produced in chunks, each
chunk confirmed by the broker before the next is read, so memory stays flat and a crash
loses nothing that was reported as sent. Duplicates on re-run are harmless: every stage is
idempotent on its natural key.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.cli.ops.sink import Headers, Sink
from shared.db import models
from shared.messages import Article
from shared.topology import ARTICLES, PAGES

logger = logging.getLogger(__name__)

Source = Literal["articles", "pages"]
SOURCES: tuple[Source, ...] = ("articles", "pages")
#: Records read and confirmed per round trip. Pages are up to 5 MB of HTML each.
DEFAULT_CHUNK = {"articles": 500, "pages": 50}
REPLAY_HEADER = "newsflow-replay"

#: articles columns that map 1:1 onto Article fields (the rest are derived below).
_ARTICLE_FIELDS = tuple(
    name
    for name in Article.model_fields
    if name not in {"schema_version", "minhash", "feed_url", "removed", "authors", "captions"}
)


@dataclass(frozen=True, slots=True)
class ReplayCount:
    source: Source
    topic: str
    sent: int
    first: datetime | None
    last: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "topic": self.topic,
            "sent": self.sent,
            "first": self.first.isoformat() if self.first else None,
            "last": self.last.isoformat() if self.last else None,
        }


def article_record(row: Mapping[str, Any]) -> Article:
    """Rebuild the ``news.articles.v1`` record of a stored article row.

    Not stored, so empty on the rebuilt record: ``minhash`` (only the parser's dedup uses
    it) and ``feed_url``. Missing pipeline times fall back to ``stored_at``.
    """
    data = {name: row.get(name) for name in _ARTICLE_FIELDS}
    stored_at = row.get("stored_at") or datetime.now(UTC)
    for name in ("discovered_at", "fetched_at", "parsed_at"):
        data[name] = data[name] or stored_at
    data["authors"] = list(row.get("authors") or [])
    data["captions"] = list(row.get("captions") or [])
    data["removed"] = list(row.get("removed") or [])
    data["word_count"] = data["word_count"] or 0
    data["final_url"] = data["final_url"] or row["url"]
    data["host"] = data["host"] or ""
    return Article.model_validate(data)


def page_record(payload_gz: bytes) -> bytes:
    """The archived ``news.pages.v1`` record, byte for byte."""
    return gzip.decompress(payload_gz)


def _headers(source: str) -> Headers:
    return [(REPLAY_HEADER, source.encode())]


async def replay_from(
    sessions: async_sessionmaker[AsyncSession],
    sink: Sink,
    *,
    source: Source,
    since: datetime,
    until: datetime | None = None,
    prefix: str = "",
    limit: int | None = None,
    chunk: int | None = None,
) -> ReplayCount:
    """Send stored pages or articles (``fetched_at`` / ``stored_at`` in [since, until)) again.

    Oldest first. Returns what was sent; raises whatever the broker or database raised
    (records confirmed before the error stay sent).
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
    chunk = chunk or DEFAULT_CHUNK[source]
    spec = PAGES if source == "pages" else ARTICLES
    topic = spec.full_name(prefix)
    table: Any = models.Page if source == "pages" else models.Article
    time_col = table.fetched_at if source == "pages" else table.stored_at
    tie_col = table.url if source == "pages" else table.id
    sent = 0
    first: datetime | None = None
    last: datetime | None = None
    cursor: tuple[datetime, Any] | None = None
    while limit is None or sent < limit:
        size = chunk if limit is None else min(chunk, limit - sent)
        query = select(table).where(time_col >= since).order_by(time_col, tie_col).limit(size)
        if until is not None:
            query = query.where(time_col < until)
        if cursor is not None:  # keyset pagination: stable under concurrent inserts
            query = query.where(
                or_(time_col > cursor[0], and_(time_col == cursor[0], tie_col > cursor[1]))
            )
        async with sessions() as session:
            rows = (await session.execute(query)).scalars().all()
        if not rows:
            break
        for row in rows:
            if source == "pages":
                value = page_record(row.payload_gz)
                key = row.host.encode()
                when = row.fetched_at
            else:
                record = article_record({c.name: getattr(row, c.name) for c in table.__table__.c})
                value = record.to_bytes()
                key = record.canonical_url.encode()
                when = row.stored_at
            await sink.send(topic, key=key, value=value, headers=_headers(source))
            first = first or when
            last = when
        sent += await sink.flush()
        tail = rows[-1]
        cursor = (tail.fetched_at, tail.url) if source == "pages" else (tail.stored_at, tail.id)
        logger.info("replayed %s %s so far (up to %s)", sent, source, last)
    return ReplayCount(source=source, topic=topic, sent=sent, first=first, last=last)
