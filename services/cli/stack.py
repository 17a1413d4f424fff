"""``newsflow stack up|down|status``: the embedded local stack."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from services.cli.common import (
    JsonFlag,
    broker_errors,
    db_failure,
    emit_json,
    settings,
    with_db,
)
from shared.errors import NewsflowError

console = Console(stderr=True)
out = Console()


stack_app = typer.Typer(
    help="The embedded local stack (Tansu broker + PostgreSQL).", no_args_is_help=True
)


def register(root: typer.Typer) -> None:
    """Add the ``stack`` group to the root app."""
    root.add_typer(stack_app, name="stack")


@stack_app.command("up")
def stack_up(as_json: JsonFlag = False) -> None:
    """Start the embedded broker and/or PostgreSQL (whatever is not configured externally),
    then apply the migrations and create the topics, so every command works after it."""
    import asyncio

    from shared import kafka, stack
    from shared.db.migrate import upgrade
    from shared.runtime import resolve_database_url, resolve_kafka_bootstrap

    s = settings()
    result = stack.up(
        s.state_dir, want_kafka=s.kafka_bootstrap is None, want_postgres=s.database_url is None
    )
    status = stack.status(s.state_dir)
    db_url = resolve_database_url(s)
    try:
        upgrade(db_url)
    except Exception as exc:
        mapped = db_failure(exc, db_url)
        if mapped is None:
            raise
        raise mapped from exc
    bootstrap = resolve_kafka_bootstrap(s)
    with broker_errors(bootstrap):
        topics = asyncio.run(
            kafka.create_topics(
                bootstrap,
                partitions=s.topic_partitions,
                replication=s.topic_replication,
                prefix=s.topic_prefix,
            )
        )
    # A topic that had to be created means the broker lost its records (Tansu keeps them in
    # memory): re-send the unfinished work now, as `newsflow run` and `newsflow recover` do,
    # or a later run would find the topics present and never re-drive it.
    redriven = None
    if any(what == "created" for what in topics.values()):
        redriven = _redrive_after_lost_topics(bootstrap, s.topic_prefix)
    if as_json:
        emit_json(
            {
                "started": result.started,
                "reused": result.reused,
                "external": result.external,
                "seconds": result.seconds,
                "status": status,
                "migrations": "head",
                "topics": topics,
                "redriven": redriven.to_json() if redriven is not None else None,
            }
        )
        return
    for name in result.started:
        console.print(
            f"[green]started[/] {name} in {result.seconds[name]:.2f}s: {status[name]['endpoint']}",
            soft_wrap=True,
        )
    for name in result.reused:
        console.print(
            f"[cyan]already running[/] {name}: {status[name]['endpoint']}", soft_wrap=True
        )
    for name in result.external:
        console.print(f"[yellow]external[/] {name} (configured by NEWSFLOW_*), not started")
    console.print(f"database migrated to head; {len(topics)} topics ready")
    if redriven is not None and (redriven.total or redriven.articles):
        console.print(
            f"topics were (re)created: re-drove {redriven.links} link(s), {redriven.pages} "
            f"archived page(s) and {redriven.articles} unmatched article(s) from PostgreSQL"
        )


def _redrive_after_lost_topics(bootstrap: str, prefix: str) -> Any:
    """Re-send every unfinished item from PostgreSQL (``newsflow recover``'s path)."""
    from datetime import UTC, datetime

    from services.cli.ops.recover import redrive
    from services.cli.ops.sink import KafkaSink

    async def run(sessions: Any) -> Any:
        async with KafkaSink(bootstrap) as sink:
            return await redrive(sessions, sink, before=datetime.now(UTC), prefix=prefix)

    with broker_errors(bootstrap):
        return with_db(run, sessions=True)


@stack_app.command("down")
def stack_down(
    force: Annotated[
        bool, typer.Option("--force", help="Stop it even while a 'newsflow run' uses it.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Stop what 'stack up' started (by recorded pid); never touches anything else. Refuses
    while a 'newsflow run' on this home uses the stack, unless --force."""
    from shared import stack
    from shared.run_lock import holder

    home = settings().state_dir
    pid = holder(home)
    if pid is not None and not force:
        raise NewsflowError(
            f"a newsflow run (pid {pid}) is using the stack in NEWSFLOW_HOME={home}; stopping "
            f"it would leave the run failing. Stop the run first (Ctrl-C in its terminal, or "
            f"'kill {pid}'), or use 'newsflow stack down --force'.",
            kind="busy",
        )
    stopped = stack.down(home)
    if as_json:
        emit_json({"stopped": stopped})
    else:
        console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")


@stack_app.command("status")
def stack_status(as_json: JsonFlag = False) -> None:
    """Show endpoints, pids and health of the embedded stack."""
    from shared import stack

    status = stack.status(settings().state_dir)
    if as_json:
        emit_json(status)
        return
    table = Table("component", "running", "pid", "endpoint", "uptime s")
    for name in ("kafka", "postgres"):
        info = status[name]
        running = "yes" if info.get("running") else ("stale pid" if info.get("stale") else "no")
        table.add_row(
            name,
            running,
            str(info.get("pid") or ""),
            info.get("endpoint") or "",
            str(info.get("uptime_s") or ""),
        )
    out.print(table)
