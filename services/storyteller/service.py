"""One batch of ``news.stored.v1`` confirmations through the storyteller, with its outcomes.

The faust agent (:mod:`services.storyteller.app`) stays thin: it decodes, calls
:func:`tell`, publishes the story records and dead letters, and acks. Here:

* the batch is assigned in one transaction (:func:`~services.storyteller.store.assign_articles`);
  outages are retried until the database answers (``until_done``);
* a batch that fails for another reason (a bug, a value PostgreSQL rejects) is retried one
  confirmation at a time, so only the bad record is dead-lettered (stage ``tell``);
* every confirmation that ends in a story is counted ``ok``.

:func:`check_encoder` runs once at start: stored story vectors must come from an encoder of
the configured one's dimension (E5 384, n-grams 4096), or every comparison would fail.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from sqlalchemy import text

from services.storyteller.store import BatchResult, assign_articles
from services.storyteller.text import TextEncoder
from shared.errors import ConfigError, PermanentError
from shared.messages import DeadLetter, StoredArticle, StoryUpdate
from shared.retry import until_done
from shared.stage import Decoded, StageInput, record_failed, record_ok
from shared.topology import STORED

logger = logging.getLogger(__name__)

#: the dimension header of one story's stored representative vectors (``store._pack_many``:
#: 4 bytes little-endian, then the float16 rows)
_STORED_DIM = text(
    "SELECT substring(vectors FROM 1 FOR 4) AS dim FROM stories"
    " WHERE vectors IS NOT NULL AND length(vectors) > 4 LIMIT 1"
)


async def check_encoder(sessions: Any, encoder: TextEncoder) -> None:
    """ConfigError when the stored story vectors were made by an encoder of another
    dimension than *encoder* (``NEWSFLOW_STORY_TEXT_ENCODER`` changed on a filled database);
    nothing stored yet passes."""
    async with sessions() as session:
        blob = await session.scalar(_STORED_DIM)
    if blob is None:
        return
    stored = int.from_bytes(bytes(blob), "little")
    if stored != encoder.dim:
        raise ConfigError(
            f"stored stories carry {stored}-dimension text vectors but "
            f"NEWSFLOW_STORY_TEXT_ENCODER={encoder.name} makes {encoder.dim}: set it back to "
            f"the encoder the stories were built with, or empty the story tables and replay "
            f"{STORED.name}"
        )
    logger.info("storyteller text encoder %s (%s dimensions)", encoder.name, encoder.dim)


#: articles.id is a bigint starting at 1
MAX_ARTICLE_ID = 2**63 - 1


async def tell(
    sessions: Any,
    decoded: list[Decoded[StoredArticle]],
    encoder: TextEncoder,
    source: StageInput,
) -> tuple[list[StoryUpdate], list[DeadLetter]]:
    """Stories for a batch of stored-article confirmations: (records to publish, letters)."""
    decoded, refused = _valid_ids(decoded, source)
    if not decoded:
        return [], refused
    ids = [record.item.article_id for record in decoded]
    try:
        result = await until_done(
            partial(assign_articles, sessions, ids, encoder), what="storyteller batch"
        )
    except Exception:
        logger.warning("storyteller batch of %s failed; retrying one by one", len(ids))
    else:
        for record in decoded:
            record_ok(source, record.item)
        return _latest(result.records), refused
    records: list[StoryUpdate] = []
    letters: list[DeadLetter] = []
    for record in decoded:
        try:
            one: BatchResult = await until_done(
                partial(assign_articles, sessions, [record.item.article_id], encoder),
                what="storyteller record",
            )
        except Exception as exc:
            letters.append(
                record_failed(
                    source, exc, payload=record.raw, item=record.item, attempt=record.attempt
                )
            )
        else:
            records += one.records
            record_ok(source, record.item)
    return _latest(records), refused + letters


def _valid_ids(
    decoded: list[Decoded[StoredArticle]], source: StageInput
) -> tuple[list[Decoded[StoredArticle]], list[DeadLetter]]:
    """Confirmations whose article id a stored row can have, and dead letters for the rest
    (an id outside 1..2^63-1 failed the whole batch in asyncpg, re-ran its neighbours one by
    one, and was dead-lettered as a bug)."""
    valid: list[Decoded[StoredArticle]] = []
    letters: list[DeadLetter] = []
    for record in decoded:
        article_id = record.item.article_id
        if 1 <= article_id <= MAX_ARTICLE_ID:
            valid.append(record)
            continue
        exc = PermanentError(
            f"article_id {article_id} is outside 1..{MAX_ARTICLE_ID}: no stored article has it",
            kind="invalid_message",
        )
        letters.append(
            record_failed(source, exc, payload=record.raw, item=record.item, attempt=record.attempt)
        )
    return valid, letters


def _latest(records: list[StoryUpdate]) -> list[StoryUpdate]:
    """One record per story (its highest version), in story id order."""
    best: dict[int, StoryUpdate] = {}
    for record in records:
        if record.story_id not in best or record.version > best[record.story_id].version:
            best[record.story_id] = record
    return [best[k] for k in sorted(best)]
