"""``newsflow stack up|down|status``: the embedded local stack."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from services.cli.common import JsonFlag, emit_json, settings

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
    """Start the embedded broker and/or PostgreSQL (whatever is not configured externally)."""
    from shared import stack

    s = settings()
    result = stack.up(
        s.state_dir, want_kafka=s.kafka_bootstrap is None, want_postgres=s.database_url is None
    )
    status = stack.status(s.state_dir)
    if as_json:
        emit_json(
            {
                "started": result.started,
                "reused": result.reused,
                "external": result.external,
                "seconds": result.seconds,
                "status": status,
            }
        )
        return
    for name in result.started:
        console.print(
            f"[green]started[/] {name} in {result.seconds[name]:.2f}s: {status[name]['endpoint']}"
        )
    for name in result.reused:
        console.print(f"[cyan]already running[/] {name}: {status[name]['endpoint']}")
    for name in result.external:
        console.print(f"[yellow]external[/] {name} (configured by NEWSFLOW_*), not started")


@stack_app.command("down")
def stack_down(as_json: JsonFlag = False) -> None:
    """Stop what 'stack up' started (by recorded pid); never touches anything else."""
    from shared import stack

    stopped = stack.down(settings().state_dir)
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
