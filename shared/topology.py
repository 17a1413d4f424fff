"""The pipeline's shape, declared once: topics, stages, their services and consumer groups.

Everything that needs to know "who reads what" (the faust apps, the supervisor, ``newsflow
lag``, metrics ports, the CLI, the benches) reads it from here; no topic or group name is
spelled anywhere else in ``shared/`` or ``services/``.

Adding a stage is adding one :class:`StageSpec` to :data:`STAGES` (and its output topic, if
new, to :data:`ALL_TOPICS`)::

    StageSpec("alert", "alerter", STORED, (ALERTS, DLQ))
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.messages import (
    MAX_MESSAGE_BYTES,
    Alert,
    Article,
    DeadLetter,
    EnrichedArticle,
    Link,
    Page,
    StoredArticle,
    StoryUpdate,
    _Record,
)

DAY_MS = 24 * 3600 * 1000
#: A consumer group (and faust app id) is this plus the service name, after the topic prefix.
GROUP_PREFIX = "newsflow-"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic: its unprefixed *name*, the contract *model*, the record field used as the
    key, retention in milliseconds and a one-line description."""

    name: str
    model: type[_Record]
    key: str
    retention_ms: int
    description: str

    @property
    def configs(self) -> dict[str, str]:
        return {
            "cleanup.policy": "delete",
            "retention.ms": str(self.retention_ms),
            "max.message.bytes": str(MAX_MESSAGE_BYTES),
        }

    def full_name(self, prefix: str = "") -> str:
        """The topic's name on the broker: *prefix* (``settings.topic_prefix``) + name."""
        return prefix + self.name


LINKS = TopicSpec("news.links.v1", Link, "host", 7 * DAY_MS, "article URLs to fetch")
PAGES = TopicSpec("news.pages.v1", Page, "host", 3 * DAY_MS, "fetched HTML pages")
ARTICLES = TopicSpec("news.articles.v1", Article, "canonical_url", 14 * DAY_MS, "clean articles")
ENRICHED = TopicSpec(
    "news.enriched.v1", EnrichedArticle, "canonical_url", 14 * DAY_MS, "articles with entities"
)
STORED = TopicSpec(
    "news.stored.v1",
    StoredArticle,
    "canonical_url",
    14 * DAY_MS,
    "articles committed to PostgreSQL",
)
STORIES = TopicSpec(
    "news.stories.v1",
    StoryUpdate,
    "story_id",
    30 * DAY_MS,
    "stories (incidents) whenever they change; merges",
)
ALERTS = TopicSpec(
    "news.alerts.v1", Alert, "watch_id", 30 * DAY_MS, "watch matches on stored articles"
)
DLQ = TopicSpec("news.dlq.v1", DeadLetter, "stage", 30 * DAY_MS, "failures with stage and reason")

ALL_TOPICS: tuple[TopicSpec, ...] = (
    LINKS,
    PAGES,
    ARTICLES,
    ENRICHED,
    STORED,
    ALERTS,
    STORIES,
    DLQ,
)
BY_NAME = {spec.name: spec for spec in ALL_TOPICS}


@dataclass(frozen=True, slots=True)
class StageSpec:
    """One pipeline stage: its ``stage`` label (dead letters, metrics), the service that runs
    it (``newsflow worker <service>``), the topic it reads records from (``main_input``, whose
    lag is the stage's backlog), any further inputs, and what it produces.

    ``optional_inputs`` maps a boolean setting to a topic the service reads only when that
    setting is on (the writer's page archive), so lag never counts a topic nobody reads.
    """

    stage: str
    service: str
    main_input: TopicSpec | None
    outputs: tuple[TopicSpec, ...]
    side_inputs: tuple[TopicSpec, ...] = ()
    optional_inputs: dict[str, TopicSpec] = field(default_factory=dict)

    def group(self, prefix: str = "") -> str:
        """The consumer group (and faust app id), namespaced by the topic prefix so a tenant
        or a test with its own topics also has its own groups."""
        return prefix + GROUP_PREFIX + self.service

    def inputs(self, settings: object | None = None) -> tuple[TopicSpec, ...]:
        """Every topic the service consumes; optional ones only when *settings* enables them
        (all of them when *settings* is None)."""
        main = () if self.main_input is None else (self.main_input,)
        optional = tuple(
            topic
            for flag, topic in self.optional_inputs.items()
            if settings is None or getattr(settings, flag)
        )
        return main + self.side_inputs + optional


#: Pipeline order. The fetcher's links come from feeds it polls itself (PostgreSQL).
STAGES: tuple[StageSpec, ...] = (
    StageSpec("fetch", "fetcher", LINKS, (LINKS, PAGES, DLQ)),
    StageSpec("parse", "parser", PAGES, (ARTICLES, DLQ)),
    StageSpec("enrich", "enricher", ARTICLES, (ENRICHED, DLQ)),
    StageSpec(
        "store",
        "writer",
        ENRICHED,
        (STORED, DLQ),
        side_inputs=(DLQ,),
        optional_inputs={"writer_archive_pages": PAGES},
    ),
    StageSpec("alert", "alerter", STORED, (ALERTS, DLQ)),
    StageSpec("tell", "storyteller", STORED, (STORIES, DLQ)),
)
SERVICES: tuple[str, ...] = tuple(spec.service for spec in STAGES)
BY_SERVICE = {spec.service: spec for spec in STAGES}
BY_STAGE = {spec.stage: spec for spec in STAGES}


def group_id(service: str, *, prefix: str = "") -> str:
    """The consumer group of *service* (see :meth:`StageSpec.group`)."""
    return (
        BY_SERVICE[service].group(prefix)
        if service in BY_SERVICE
        else (prefix + GROUP_PREFIX + service)
    )
