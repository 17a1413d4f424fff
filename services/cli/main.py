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
from rich.markup import escape

from shared.errors import NewsflowError

#: Exit code of a command that failed for a reason the user can fix (settings, DB, broker).
USAGE_EXIT = 2
#: Exit code after Ctrl-C (128 + SIGINT), as shells report it.
INTERRUPTED_EXIT = 130
#: Libraries whose log lines repeat a failure a one-shot command already reports.
QUIET_LIBRARIES = ("aiokafka", "asyncio", "kafka", "sqlalchemy", "alembic", "httpx", "httpcore")

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
        recover,
        replay,
        run,
        schemas,
        stack,
        stories,
        topics,
        watch,
    )

    if not app.registered_commands and not app.registered_groups:
        for module in (stack, db, topics, schemas, run, config, feeds, entities, articles, stories):
            module.register(app)
        for module in (dlq, replay, lag, recover, watch):
            module.register(app)
    return app


def _origin(exc: BaseException) -> str | None:
    """ "db" or "broker": which client library raised *exc* (a bare OSError or TimeoutError
    does not say), from the modules in its traceback and its causes'."""
    seen: set[int] = set()
    current: BaseException | None = exc
    found: str | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        tb = current.__traceback__
        while tb is not None:
            name = tb.tb_frame.f_globals.get("__name__", "")
            if name.startswith(("asyncpg", "sqlalchemy", "alembic")):
                found = "db"
            elif name.startswith("aiokafka"):
                found = "broker"
            tb = tb.tb_next
        current = current.__cause__ or current.__context__
    return found


def _mapped(exc: BaseException) -> NewsflowError | None:
    """An infrastructure failure that escaped a command, as one actionable error (or None)."""
    import asyncpg
    from aiokafka.errors import KafkaError
    from pydantic import ValidationError
    from sqlalchemy.exc import DBAPIError

    from services.cli.common import broker_failure, db_failure
    from shared.db.errors import is_unreachable
    from shared.settings import explain_validation_error

    if isinstance(exc, ValidationError):
        return NewsflowError(f"invalid settings: {explain_validation_error(exc)}", kind="config")
    if isinstance(exc, KafkaError):
        return broker_failure(exc, None)
    if isinstance(exc, DBAPIError | asyncpg.PostgresError | asyncpg.exceptions.InterfaceError):
        return db_failure(exc, None)
    if is_unreachable(exc):  # OSError, ConnectionError, TimeoutError: whose?
        origin = _origin(exc)
        if origin == "db":
            return db_failure(exc, None)
        if origin == "broker":
            return broker_failure(exc, None)
    return None


def _print_error(detail: str) -> None:
    """One ``error:`` line on stderr, *detail* printed as written: escaped, because details
    quote user input (``published:[2026-11-01 TO *]``, ``http://[::1]/``) that rich would
    otherwise eat as markup, and unwrapped, so a query's caret stays under its character."""
    console.print(f"[red]error:[/] {escape(detail)}", soft_wrap=True)


def _warn_unknown_variables() -> None:
    from shared.settings import unknown_variables

    for warning in unknown_variables():
        console.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True, highlight=False)


def _quiet_libraries() -> None:
    """One-shot commands report failures themselves (one ``error:`` line); library log lines
    about the same failure (aiokafka's "Unable connect", an unclosed client) would repeat it.
    ``run`` and ``worker`` configure logging again for their long-running output."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def main() -> None:
    """Entry point: run the command; map what escapes it to one line and an exit code."""
    build()
    _warn_unknown_variables()
    _quiet_libraries()
    try:
        app()
    except NewsflowError as exc:
        _print_error(exc.detail)
        sys.exit(USAGE_EXIT)
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED_EXIT)
    except Exception as exc:
        mapped = _mapped(exc)
        if mapped is None:
            raise
        _print_error(mapped.detail)
        sys.exit(USAGE_EXIT)


if __name__ == "__main__":
    main()
