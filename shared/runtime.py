"""Resolve where the broker and database are: settings first, then the embedded stack."""

from __future__ import annotations

from shared import stack
from shared.errors import StackError
from shared.settings import Settings


def resolve_database_url(settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    state = stack.read_state(settings.state_dir)
    if (
        state.postgres
        and state.postgres.endpoint
        and stack.pid_alive(state.postgres.pid, expect="postgres")
    ):
        return state.postgres.endpoint
    raise StackError(
        "No database: NEWSFLOW_DATABASE_URL is unset and the embedded PostgreSQL is not running "
        f"in NEWSFLOW_HOME={settings.state_dir}. Run 'newsflow stack up' (or 'make run'), "
        "check NEWSFLOW_HOME, or set NEWSFLOW_DATABASE_URL."
    )


def resolve_kafka_bootstrap(settings: Settings) -> str:
    if settings.kafka_bootstrap:
        return settings.kafka_bootstrap
    state = stack.read_state(settings.state_dir)
    if state.kafka and state.kafka.endpoint and stack.pid_alive(state.kafka.pid, expect="tansu"):
        return state.kafka.endpoint
    raise StackError(
        "No broker: NEWSFLOW_KAFKA_BOOTSTRAP is unset and the embedded broker is not running "
        f"in NEWSFLOW_HOME={settings.state_dir}. Run 'newsflow stack up' (or 'make run'), "
        "check NEWSFLOW_HOME, or set NEWSFLOW_KAFKA_BOOTSTRAP."
    )
