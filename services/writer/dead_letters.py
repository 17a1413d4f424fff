"""Dead letters from every stage into the ``dead_letters`` table (idempotent on a fingerprint),
and their links marked ``dead_letter`` in ``seen_links``."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.writer.articles import mark_links
from shared.db import models
from shared.db.session import in_transaction
from shared.messages import DeadLetter

logger = logging.getLogger(__name__)


def dead_letter_fingerprint(letter: DeadLetter) -> str:
    basis = "|".join(
        str(x)
        for x in (
            letter.stage,
            letter.error_kind,
            letter.source_topic,
            letter.key,
            letter.url,
            letter.attempt,
            letter.payload or letter.payload_ref,
            letter.failed_at.isoformat(),
        )
    )
    return hashlib.sha256(basis.encode()).hexdigest()


async def store_dead_letters(session: AsyncSession, letters: list[DeadLetter]) -> int:
    if not letters:
        return 0
    rows = {}
    for letter in letters:
        fp = dead_letter_fingerprint(letter)
        rows[fp] = {
            "fingerprint": fp,
            "stage": letter.stage,
            "error_kind": letter.error_kind,
            "detail": letter.detail,
            "attempt": letter.attempt,
            "source_topic": letter.source_topic,
            "key": letter.key,
            "url": letter.url,
            "payload": letter.payload,
            "payload_ref": letter.payload_ref,
            "service": letter.service,
            "failed_at": letter.failed_at,
        }
    await session.execute(
        insert(models.DeadLetter).on_conflict_do_nothing(index_elements=["fingerprint"]),
        [rows[k] for k in sorted(rows)],
    )
    urls = sorted({letter.url for letter in letters if letter.url})
    await mark_links(session, urls, outcome="dead_letter", now=datetime.now(UTC))
    return len(rows)


#: Column widths of ``dead_letters`` (shared/db/models.py) and what a refused letter keeps.
ERROR_KIND_CHARS = 64
TRIMMED_TEXT_CHARS = 2000


def trimmed_letter(letter: DeadLetter, *, why: str) -> DeadLetter:
    """A letter the table can hold: no payload (``payload_ref`` says why), short fields."""
    return letter.model_copy(
        update={
            "error_kind": letter.error_kind[:ERROR_KIND_CHARS],
            "detail": letter.detail[:TRIMMED_TEXT_CHARS],
            "url": letter.url[:TRIMMED_TEXT_CHARS] if letter.url else None,
            "key": letter.key[:TRIMMED_TEXT_CHARS] if letter.key else None,
            "payload": None,
            "payload_ref": f"payload refused by the database ({why})"[:TRIMMED_TEXT_CHARS],
        }
    )


async def write_dead_letters(
    sessions: async_sessionmaker[AsyncSession], letters: list[DeadLetter]
) -> int:
    return await in_transaction(sessions, lambda session: store_dead_letters(session, letters))


async def store_letter_events(
    sessions: async_sessionmaker[AsyncSession], events: Sequence[Any], *, source_topic: str
) -> int:
    """Persist a batch of ``news.dlq.v1`` events (retrying outages forever); a record that is
    not a readable dead letter is kept as a dead letter about itself. Returns rows stored."""
    from services.writer.metrics import DEAD_LETTERS_STORED, ROWS_WRITTEN
    from services.writer.poison import isolate_rows
    from shared.db.errors import db_error_kind
    from shared.stage import StageInput, decode_events

    decoded, undecodable = decode_events(
        events, DeadLetter, StageInput("store", source_topic, "writer")
    )
    for letter in undecodable:  # a DLQ record we cannot read is kept verbatim
        logger.error("undecodable dead letter dropped into the table as-is: %s", letter.detail)
    letters = [record.item for record in decoded] + undecodable
    stored, refused = await isolate_rows(
        letters, write_all=partial(write_dead_letters, sessions), what="dead letters"
    )
    for letter, exc in refused:
        # Keep what the table can hold: the letter without its payload, fields trimmed to
        # their columns, and why the full letter was refused.
        kind = db_error_kind(exc)
        logger.error(
            "dead letter refused kind=%s stage=%s error_kind=%.64s: %s",
            kind,
            letter.stage,
            letter.error_kind,
            exc,
        )
        trimmed = trimmed_letter(letter, why=f"{kind}: {exc}")
        more, still = await isolate_rows(
            [trimmed], write_all=partial(write_dead_letters, sessions), what="dead letter"
        )
        stored += more
        for _letter, exc2 in still:
            logger.error("dead letter lost kind=%s: %s", db_error_kind(exc2), exc2)
    ROWS_WRITTEN.labels("dead_letters").inc(stored)
    for letter in letters:
        DEAD_LETTERS_STORED.labels(letter.stage, letter.error_kind).inc()
    return stored
