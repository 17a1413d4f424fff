"""The ``newsflow`` command line: the root app, and errors mapped once, here, to one line.

Every command group is one module of this package (``stack``, ``db``, ``topics``, ``schemas``,
``run`` (worker, run, demo), ``config`` (settings), ``feeds``, ``entities``, ``articles``
(articles, search), ``dlq``, ``replay`` (replay, reenrich), ``lag``); the shared plumbing is
:mod:`services.cli.common`. A ``NewsflowError``, an unreachable database or broker, or invalid
settings end as one ``error:`` line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from shared.errors import NewsflowError

#: Exit code of a command that failed for a reason the user can fix (settings, DB, broker).
USAGE_EXIT = 2

console = Console(stderr=True)

app = typer.Typer(
    name="newsflow",
    help="Streaming news ingestion: feeds -> pages -> clean articles -> entities -> PostgreSQL + Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def build() -> typer.Typer:
    """The root app with every command group registered (idempotent)."""
    from services.cli import (
        articles,
        config,
        db,
        dlq,
        entities,
        feeds,
        lag,
        replay,
        run,
        schemas,
        stack,
        topics,
    )

    if not app.registered_commands and not app.registered_groups:
        for module in (stack, db, topics, schemas, run, config, feeds, entities, articles):
            module.register(app)
        for module in (dlq, replay, lag):
            module.register(app)
    return app


def _mapped(exc: BaseException) -> NewsflowError | None:
    """An infrastructure failure that escaped a command, as one actionable error (or None)."""
    import asyncpg
    from aiokafka.errors import KafkaError
    from sqlalchemy.exc import DBAPIError

    from services.cli.common import broker_failure, db_failure

    if isinstance(exc, KafkaError):
        return broker_failure(exc, None)
    if isinstance(exc, DBAPIError | asyncpg.PostgresError | asyncpg.exceptions.InterfaceError):
        return db_failure(exc, None)
    return None


def main() -> None:
    build()
    try:
        app()
    except NewsflowError as exc:
        console.print(f"[red]error:[/] {exc.detail}")
        sys.exit(USAGE_EXIT)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        mapped = _mapped(exc)
        if mapped is None:
            raise
        console.print(f"[red]error:[/] {mapped.detail}")
        sys.exit(USAGE_EXIT)


if __name__ == "__main__":
    main()
