"""Plumbing every ``newsflow`` command module shares: the ``--json`` flag and JSON output,
settings, opening the database, reaching the broker, and turning an unreachable database or
broker into one error line that says what to do (``main`` prints ``NewsflowError``, exit 2).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

import typer

from shared.errors import NewsflowError
from shared.settings import Settings

T = TypeVar("T")

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
#: Every time filter names the date it compares ("since" alone meant published in one command
#: and stored in another); --since stays as a second name for scripts.
WHEN_HELP = "ISO date/time (UTC if no offset) or an age (2h, 7d)"
SinceOption = Annotated[
    str | None,
    typer.Option(help=f"Only since this time: {WHEN_HELP}."),
]
PublishedSinceOption = Annotated[
    str | None,
    typer.Option(
        "--published-since",
        "--since",
        help=f"Only articles published at or after this time (stored time if undated): "
        f"{WHEN_HELP}.",
    ),
]
FailedSinceOption = Annotated[
    str | None,
    typer.Option(
        "--failed-since", "--since", help=f"Only letters that failed at or after: {WHEN_HELP}."
    ),
]
#: the largest --limit: SQL LIMIT takes a bigint, and a larger value reached asyncpg as a
#: DBAPIError traceback instead of a usage error
MAX_LIMIT = 2**63 - 1
LimitOption = Annotated[int, typer.Option(min=1, max=MAX_LIMIT, help="At most this many rows.")]
DEFAULT_LIMIT = 20
BODY_PREVIEW_CHARS = 4000


# --- plumbing --------------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """JSON-ready: ISO times, lists for tuples/sets, recursively."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [plain(v) for v in value]
    return value


def emit_json(data: Any) -> None:
    """*data* as indented JSON on stdout (ISO 8601 times; anything else via ``str``)."""
    sys.stdout.write(json.dumps(plain(data), indent=2, default=str, ensure_ascii=False) + "\n")


def since_option(value: str | None) -> datetime | None:
    from services.cli.ops.when import parse_since

    if value is None:
        return None
    try:
        return parse_since(value)
    except ValueError as exc:
        raise NewsflowError(str(exc), kind="usage") from exc


def settings() -> Settings:
    """The validated settings; an invalid value is one ``invalid settings`` line naming the
    variable (``NEWSFLOW_TOPIC_PARTITIONS='abc': …``), exit 2."""
    from shared.settings import load_settings

    return load_settings()


def _configured(kind: str) -> tuple[str, bool]:
    """(what to show, external?) for the database or broker the settings name, without
    failing: this runs while reporting another error."""
    from shared.settings import load_settings

    try:
        s = load_settings()
    except NewsflowError:
        return f"the configured {kind}", True
    value = s.database_url if kind == "database" else s.kafka_bootstrap
    if value:
        return value.split("@")[-1], True  # never print a password
    return f"the embedded {kind} in NEWSFLOW_HOME={s.state_dir}", False


def db_failure(exc: BaseException, url: str | None) -> NewsflowError | None:
    """*exc* as one actionable line when the database at *url* is unreachable or has no
    schema; None for anything else. ``url=None``: the database the settings name."""
    import asyncpg

    from shared.db.errors import is_unreachable

    shown, external = _configured("database")
    if url is not None:
        shown = url.split("@")[-1]  # never print a password
    state = getattr(getattr(exc, "orig", exc), "sqlstate", None)
    if state == "42P01" or isinstance(exc, asyncpg.exceptions.UndefinedTableError):
        return NewsflowError(
            f"the database ({shown}) has no newsflow tables; run 'newsflow db upgrade'",
            kind="config",
        )
    if is_unreachable(exc):
        fix = (
            "Check that it is running and NEWSFLOW_DATABASE_URL"
            if external
            else "Start it with 'newsflow stack up'"
        )
        return NewsflowError(
            f"cannot reach the database ({shown}): {_reason(exc)}. {fix}.", kind="config"
        )
    return None


def _reason(exc: BaseException) -> str:
    """The innermost useful message of *exc* (SQLAlchemy wraps asyncpg wraps OSError)."""
    inner = getattr(exc, "orig", None) or exc.__cause__ or exc
    text = str(inner).strip() or type(inner).__name__
    return text.splitlines()[0][:200]


def with_db(action: Callable[[Any], Awaitable[T]], *, sessions: bool = False) -> T:
    """Run *action* with a session (or the session factory) on the configured database."""
    from shared.db.session import create_engine, session_factory
    from shared.runtime import resolve_database_url

    url = resolve_database_url(settings())

    async def main() -> T:
        engine = create_engine(url, pool_size=1)
        factory = session_factory(engine)
        try:
            if sessions:
                return await action(factory)
            async with factory() as session:
                return await action(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except NewsflowError:
        raise
    except Exception as exc:
        mapped = db_failure(exc, url)
        if mapped is None:
            raise
        raise mapped from exc


def broker_bootstrap() -> str:
    from shared.runtime import resolve_kafka_bootstrap

    return resolve_kafka_bootstrap(settings())


def broker_failure(exc: BaseException, bootstrap: str | None) -> NewsflowError | None:
    """*exc* as one actionable line when the broker at *bootstrap* is unreachable or fails;
    None for anything else. ``bootstrap=None``: the broker the settings name."""
    from aiokafka.errors import KafkaConnectionError, KafkaError

    shown, external = _configured("broker")
    if bootstrap is not None:
        shown = bootstrap
    if isinstance(exc, KafkaConnectionError | OSError | ConnectionError | TimeoutError):
        fix = (
            "Check that it is running and NEWSFLOW_KAFKA_BOOTSTRAP"
            if external
            else "Start it with 'newsflow stack up'"
        )
        return NewsflowError(
            f"cannot reach the broker at {shown} ({_reason(exc)}). {fix}.", kind="config"
        )
    if isinstance(exc, KafkaError):
        return NewsflowError(f"broker error from {shown}: {exc!r}", kind="broker")
    return None


@contextmanager
def broker_errors(bootstrap: str) -> Iterator[None]:
    """Map broker failures inside the block to one actionable message (see broker_failure)."""
    try:
        yield
    except NewsflowError:
        raise
    except Exception as exc:
        mapped = broker_failure(exc, bootstrap)
        if mapped is None:
            raise
        raise mapped from exc


def new_table(*columns: str) -> Any:
    from rich.table import Table

    return Table(*columns, show_lines=False, header_style="bold")


def show(renderable: Any) -> None:
    from rich.console import Console

    Console().print(renderable)


def when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""
