"""Message contracts: the versioned JSON records on every topic.

Plain pydantic models serialised as plain JSON: no class paths on the wire, every record
carries ``schema_version``. Consumers must ignore unknown fields, so adding an optional field
is a compatible change; removing or retyping a field needs a new topic version (``.v2``).
The JSON Schemas under ``docs/schemas/`` are generated from these models
(``newsflow schemas write``) and checked by ``tests/unit/test_contracts.py``.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    model_validator,
)

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1

#: Raw HTML above this is refused by the fetcher (``too_large``) and never put on a topic.
#: The producer compresses batches (gzip), and topics are created with a matching
#: ``max.message.bytes``; see README "Topics".
MAX_HTML_CHARS = 5 * 1024 * 1024
MAX_MESSAGE_BYTES = 8 * 1024 * 1024

Stage = Literal["fetch", "parse", "enrich", "store", "feed", "alert", "tell"]

# --- text that the topics and PostgreSQL can carry -----------------------------------------
#: PostgreSQL text refuses NUL; UTF-8 (JSON on the topics, asyncpg) cannot encode a lone
#: surrogate (json.loads turns "\ud800" into one); other C0 controls are invisible garbage
#: that XML 1.0 forbids and that breaks terminals and CSV exports. Tab, LF and CR stay.
_UNSAFE_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Shown for a lone surrogate, as a decoder shows an undecodable byte.
REPLACEMENT = "\ufffd"


def clean_text(value: str) -> tuple[str, str | None]:
    """``(clean, note)``: NUL and other C0 controls dropped, lone surrogates replaced by
    U+FFFD. ``note`` says what was removed (``"2 NUL, 1 surrogate"``), None if nothing."""
    if _UNSAFE_TEXT.search(value) is None:  # the common case: one scan, no copy
        return value, None
    nul = value.count("\x00")
    surrogates = len(_SURROGATE.findall(value))
    cleaned, total = _UNSAFE_TEXT.subn(
        lambda m: REPLACEMENT if "\ud800" <= m.group() <= "\udfff" else "", value
    )
    parts = [
        f"{n} {what}"
        for n, what in (
            (nul, "NUL"),
            (total - nul - surrogates, "control"),
            (surrogates, "surrogate"),
        )
        if n
    ]
    return cleaned, ", ".join(parts)


def clean_optional(value: str | None) -> str | None:
    """:func:`clean_text` for optional text, dropping the note (callers that log their own)."""
    return None if value is None else clean_text(value)[0]


def _clean_tree(value: Any, path: str, notes: list[str]) -> Any:
    if isinstance(value, str):
        cleaned, note = clean_text(value)
        if note:
            notes.append(f"{path or 'value'}: {note}")
        return cleaned
    if isinstance(value, dict):
        return {
            k: _clean_tree(v, f"{path}.{k}" if path else str(k), notes) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        if value and isinstance(value[0], int | float):  # minhash signatures, offsets
            return value
        return [_clean_tree(v, f"{path}[{i}]", notes) for i, v in enumerate(value)]
    if isinstance(value, _Clean):  # cleaned when it was built; carry its notes up
        notes.extend(f"{path}.{note}" for note in value._text_cleaned)
    return value


class _Clean(BaseModel):
    """Every message model: text is cleaned where it enters (see :func:`clean_text`).

    What was cleaned is kept: in ``text_cleaned`` on a topic record (with field paths, so a
    consumer sees that ``entry.title`` lost a NUL), and logged once per record.
    """

    _text_cleaned: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="wrap")
    @classmethod
    def _clean_text_fields(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        notes: list[str] = []
        cleaned = _clean_tree({k: v for k, v in data.items() if k != "text_cleaned"}, "", notes)
        if notes and "text_cleaned" in cls.model_fields:
            earlier = data.get("text_cleaned") or []
            cleaned["text_cleaned"] = [*earlier, *(n for n in notes if n not in earlier)]
        elif data.get("text_cleaned") is not None:  # None: a stored row without the column
            cleaned["text_cleaned"] = data["text_cleaned"]
        model = handler(cleaned)
        if notes:
            model._text_cleaned = notes
            # Records log it; nested models are logged by the record that carries them.
            level = logging.WARNING if "text_cleaned" in cls.model_fields else logging.DEBUG
            logger.log(level, "text cleaned model=%s fields=%s", cls.__name__, "; ".join(notes))
        return model


class _Record(_Clean):
    # extra="ignore": a newer producer may add optional fields; old consumers keep working.
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1  # == SCHEMA_VERSION; a Literal so other versions fail to decode
    text_cleaned: list[str] = Field(
        default_factory=list,
        description="Characters removed from this record's text (NUL, C0 controls, lone "
        "surrogates), as 'field.path: N kind'; empty when none were.",
    )

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"))

    @classmethod
    def from_bytes(cls, data: bytes | str) -> Any:
        """Decode one record; raises :class:`ContractError` for bad JSON or schema."""
        try:
            return cls.model_validate_json(data)
        except ValidationError as exc:
            raise ContractError(
                f"{cls.__name__}: {exc.error_count()} invalid field(s): {exc}"
            ) from exc
        except ValueError as exc:  # pragma: no cover - pydantic wraps JSON errors itself
            raise ContractError(f"{cls.__name__}: not JSON: {exc}") from exc


class ContractError(ValueError):
    """A record that does not decode into its topic's contract (poison message)."""


# --- news.links.v1 -------------------------------------------------------------------------


class FeedEntry(_Clean):
    """What the feed said about an item; the parser uses it as a fallback for metadata."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    title: str | None = None
    published_at: datetime | None = None
    summary: str | None = None
    authors: list[str] = Field(default_factory=list)
    guid: str | None = None


class Link(_Record):
    """``news.links.v1``: an article URL to fetch. Key: the URL's host (per-host ordering)."""

    url: str = Field(description="Normalised article URL (tracking parameters removed).")
    host: str
    feed_id: int | None = None
    feed_url: str | None = None
    entry: FeedEntry = Field(default_factory=FeedEntry)
    discovered_at: datetime
    attempt: int = Field(default=1, ge=1, description="1 for a first try; replays increment it.")


# --- news.pages.v1 -------------------------------------------------------------------------


class Page(_Record):
    """``news.pages.v1``: a fetched HTML page, decoded to text. Key: the host."""

    url: str = Field(description="The link's URL, as it was requested.")
    final_url: str = Field(description="URL after redirects.")
    host: str
    status_code: int
    content_type: str | None = None
    charset: str | None = Field(default=None, description="Charset the body was decoded with.")
    charset_source: str | None = Field(
        default=None, description="header | meta | sniffed | default"
    )
    html: str = Field(max_length=MAX_HTML_CHARS)
    etag: str | None = None
    last_modified: str | None = None
    redirects: list[str] = Field(default_factory=list)
    feed_id: int | None = None
    feed_url: str | None = None
    entry: FeedEntry = Field(default_factory=FeedEntry)
    discovered_at: datetime
    fetched_at: datetime
    elapsed_ms: float | None = None


# --- news.articles.v1 ----------------------------------------------------------------------


class RemovedSpan(_Clean):
    """Text the cleaner cut, with why: users audit cleaning with these."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    text: str
    reason: str = Field(description="e.g. duplicate_paragraph, caption, advertisement, share_bar")


class Article(_Record):
    """``news.articles.v1``: a clean article. Key: ``canonical_url``."""

    url: str = Field(description="URL as fetched (the link's URL).")
    final_url: str
    canonical_url: str = Field(description="Natural key of the article.")
    host: str
    status: Literal["ok", "paywalled", "teaser", "duplicate", "near_duplicate"] = "ok"
    title: str | None = None
    authors: list[str] = Field(default_factory=list)
    author_kind: Literal["person", "organization"] | None = Field(
        default=None,
        description="person; organization when no person is named and the authors list holds"
        " the organisation (agency, publisher) credited instead.",
    )
    published_at: datetime | None = None
    published_source: str | None = Field(default=None, description="feed|jsonld|meta|url|htmldate")
    modified_at: datetime | None = None
    modified_source: str | None = None
    language: str | None = Field(default=None, description="ISO 639 code; None if text too short.")
    site_name: str | None = None
    top_image: str | None = None
    lead: str | None = None
    body_text: str
    captions: list[str] = Field(default_factory=list)
    removed: list[RemovedSpan] = Field(default_factory=list)
    paywalled: bool = False
    content_hash: str = Field(description="sha256 hex of the normalised body text.")
    minhash: list[int] = Field(default_factory=list, description="MinHash signature (uint32s).")
    duplicate_of: str | None = Field(
        default=None, description="canonical_url of the original for (near-)duplicates."
    )
    similarity: float | None = Field(default=None, description="Jaccard estimate to duplicate_of.")
    feed_id: int | None = None
    feed_url: str | None = None
    word_count: int = 0
    extraction: str | None = Field(default=None, description="Which extractor produced the body.")
    discovered_at: datetime
    fetched_at: datetime
    parsed_at: datetime


# --- news.enriched.v1 ----------------------------------------------------------------------

EntityKind = Literal[
    "PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "EVENT", "LAW", "PRODUCT", "WORK_OF_ART"
]


class Mention(_Clean):
    model_config = ConfigDict(extra="ignore", frozen=True)

    text: str = Field(description="Surface form as written.")
    start: int = Field(ge=0, description="Character offset into body_text (or title, see field).")
    end: int = Field(ge=0)
    field: Literal["body", "title"] = "body"
    kind: EntityKind
    entity_key: str


class EntityRef(_Clean):
    """One canonical entity mentioned by the article."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    key: str = Field(
        description="Stable canonical id, e.g. 'GPE:turkey' or 'PERSON:mohammed shia al sudani'."
    )
    kind: EntityKind
    name: str = Field(description="Canonical display name.")
    aliases: list[str] = Field(
        default_factory=list, description="Surface forms seen in this article."
    )
    mentions: int = Field(ge=1)
    salience: float = Field(ge=0, le=1)


class Enrichment(_Clean):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["ok", "empty", "unsupported_language", "truncated"] = "ok"
    model: str
    rules_version: str
    note: str | None = None
    enriched_at: datetime
    language: str | None = Field(
        default=None,
        description="Language the enricher identified (authoritative over article.language): "
        "ISO 639-1, or 639-3 for ckb (Sorani) and kmr (Kurmanji); null when too short to tell.",
    )
    method: Literal["ner", "gazetteer"] | None = Field(
        default=None,
        description="ner: spaCy NER + rule layer (English); gazetteer: curated/user names over "
        "folded text with suffix- and clitic-aware boundaries (other languages).",
    )


class EnrichedArticle(_Record):
    """``news.enriched.v1``: an article with its entities. Key: ``article.canonical_url``."""

    article: Article
    entities: list[EntityRef] = Field(default_factory=list)
    mentions: list[Mention] = Field(default_factory=list)
    enrichment: Enrichment


# --- news.stored.v1 ------------------------------------------------------------------------


class StoredArticle(_Record):
    """``news.stored.v1``: an article the writer has committed to PostgreSQL. Key: ``canonical_url``.

    Produced after the batch's transaction commits and before the writer acks its input, so a
    consumer only ever sees ids of stored rows. At least once: a redelivered or older copy of
    an article is confirmed again as ``unchanged`` (with the stored row's enrichment). An exact
    duplicate (``status=duplicate``), which stores no row, produces no record.
    """

    article_id: int = Field(description="articles.id of the stored row.")
    canonical_url: str
    action: Literal["inserted", "updated", "unchanged"] = Field(
        description="inserted: a new row; updated: a newer enrichment replaced the row; "
        "unchanged: the row already held this or a newer enrichment (a redelivery)."
    )
    enriched_at: datetime = Field(
        description="The stored enrichment's time: the row's version (newer wins)."
    )
    enrichment_model: str | None = Field(default=None, description="NER model of that enrichment.")
    rules_version: str | None = Field(
        default=None, description="Enricher rules of that enrichment."
    )
    stored_at: datetime = Field(
        description="When the writer's transaction stored (or found) the row."
    )


# --- news.dlq.v1 ---------------------------------------------------------------------------


class DeadLetter(_Record):
    """``news.dlq.v1``: a record a stage gave up on. Key: the stage."""

    stage: Stage
    error_kind: str = Field(
        description="Machine-readable reason, e.g. http_404, ssrf_blocked, too_large."
    )
    detail: str
    attempt: int = Field(default=1, ge=1)
    source_topic: str | None = Field(default=None, description="Topic to replay the payload into.")
    key: str | None = None
    url: str | None = None
    payload: str | None = Field(
        default=None, description="The original record (JSON text), when it is small enough."
    )
    payload_ref: str | None = Field(
        default=None, description="Where the payload is stored when too large to inline (e.g. url)."
    )
    service: str | None = None
    failed_at: datetime


# --- news.stories.v1 -----------------------------------------------------------------------


class StoryArticle(BaseModel):
    """One article of a story, in publication order, with its role in it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    article_id: int = Field(description="articles.id")
    url: str
    canonical_url: str
    source: str = Field(description="The outlet's host, e.g. rudaw.net.")
    language: str | None = None
    title: str
    published_at: datetime
    role: Literal["first_report", "independent", "copy", "update"] = Field(
        description="first_report: earliest report; copy: a near-duplicate of another member; "
        "update: a later report from a source already in the story, or 18 h after the first; "
        "independent: another outlet's own report."
    )
    copy_of: str | None = Field(default=None, description="canonical_url of the copied article.")


class StoryEntity(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    key: str = Field(description="Canonical entity key, e.g. 'ORG:kurdistan workers party'.")
    count: int = Field(ge=1, description="Articles of the story that mention it.")


class StoryUpdate(_Record):
    """``news.stories.v1``: a story's whole state whenever it changes. Key: ``story_id``.

    ``kind="story"``: the current state (replace what you hold for this id; a higher
    ``version`` is newer). ``kind="merged"``: this story turned out to be the same incident
    as ``merged_into`` and now redirects there (its articles moved; drop it from a board).
    ``kind="split"``: an analyst moved ``moved_article_ids`` out of this story into
    ``split_into`` (``newsflow stories split|move``); a notice, not a state: the
    ``kind="story"`` records of both stories follow it, each with a higher version, so a
    consumer that keeps only story states may ignore it. Added to v1 compatibly: consumers
    skip kinds they do not know.
    """

    kind: Literal["story", "merged", "split"] = "story"
    story_id: int
    version: int = Field(ge=1, description="Grows by one with every change of the story.")
    merged_into: int | None = Field(default=None, description="Set when kind=merged.")
    split_into: int | None = Field(
        default=None,
        description="Set when kind=split: the story the articles moved to (a new one for "
        "'stories split', an existing one for 'stories move').",
    )
    moved_article_ids: list[int] = Field(
        default_factory=list, description="kind=split: the articles that left this story."
    )
    headline: str | None = Field(default=None, description="Title of the most central report.")
    first_seen: datetime
    last_updated: datetime
    article_count: int = Field(ge=0)
    sources: list[str] = Field(default_factory=list)
    languages: list[str] = Field(default_factory=list)
    top_entities: list[StoryEntity] = Field(default_factory=list)
    first_report: StoryArticle | None = None
    articles: list[StoryArticle] = Field(
        default_factory=list, description="Members in publication order (empty when merged)."
    )


# --- news.alerts.v1 ------------------------------------------------------------------------


class Alert(_Record):
    """``news.alerts.v1``: a watch matched a stored article. Key: the watch id.

    Exactly one per (watch, article) is created (``alerts`` table); after a crash between
    producing it and recording that it was produced, the same alert (same ``alert_id``) can be
    produced again, so consumers deduplicate on ``alert_id``.
    """

    alert_id: int = Field(description="Stable id: the webhook-id is alert_<alert_id>.")
    watch_id: int
    watch_name: str
    query: str = Field(description="The watch's saved query (entity aliases resolved to keys).")
    article_id: int = Field(description="The stored article (articles.id).")
    url: str
    canonical_url: str
    title: str | None = None
    source: str | None = Field(default=None, description="The article's host.")
    language: str | None = None
    published_at: datetime | None = None
    matched_terms: list[str] = Field(
        default_factory=list, description="Folded words/phrases that matched (never under NOT)."
    )
    matched_entities: list[str] = Field(
        default_factory=list, description="Canonical entity keys that matched."
    )
    reason: str = Field(description="Why it matched, one line.")
    alerted_at: datetime
