"""The ``newsflow`` command line. Errors are mapped once, here, to a message and exit code."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shared.errors import NewsflowError
from shared.logs import configure_logging
from shared.settings import Settings

logger = logging.getLogger("newsflow")
console = Console(stderr=True)
out = Console()

app = typer.Typer(
    name="newsflow",
    help="Streaming news ingestion: feeds -> pages -> clean articles -> entities -> PostgreSQL + Kafka.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack_app = typer.Typer(
    help="The embedded local stack (Tansu broker + PostgreSQL).", no_args_is_help=True
)
db_app = typer.Typer(help="Database URL and migrations.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
schemas_app = typer.Typer(help="JSON Schemas of the topic contracts.", no_args_is_help=True)
feeds_app = typer.Typer(help="Feeds the fetcher monitors.", no_args_is_help=True)
entities_app = typer.Typer(help="Canonical entities, aliases, merges.", no_args_is_help=True)
app.add_typer(stack_app, name="stack")
app.add_typer(db_app, name="db")
app.add_typer(topics_app, name="topics")
app.add_typer(schemas_app, name="schemas")
app.add_typer(feeds_app, name="feeds")
app.add_typer(entities_app, name="entities")

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
SERVICES = ("fetcher", "parser", "enricher", "writer")


def settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic ValidationError: say which variable and what is expected
        raise NewsflowError(f"invalid settings: {exc}", kind="config") from exc


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str, ensure_ascii=False) + "\n")


# --- stack -------------------------------------------------------------------------------------


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


# --- db ----------------------------------------------------------------------------------------


@db_app.command("url")
def db_url() -> None:
    """Print the database URL in use (external or embedded)."""
    from shared.runtime import resolve_database_url

    print(resolve_database_url(settings()))


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Run the Alembic migrations up to REVISION."""
    from shared.db.migrate import upgrade
    from shared.runtime import resolve_database_url

    upgrade(resolve_database_url(settings()), revision)
    console.print(f"database at {revision}")


@db_app.command("check")
def db_check() -> None:
    """Fail when the models and the migrations differ (alembic check)."""
    from shared.db.migrate import check
    from shared.runtime import resolve_database_url

    check(resolve_database_url(settings()))
    console.print("models and migrations agree")


# --- topics ------------------------------------------------------------------------------------


@topics_app.command("create")
def topics_create(as_json: JsonFlag = False) -> None:
    """Create every topic with explicit partitions (idempotent)."""
    from shared import kafka
    from shared.runtime import resolve_kafka_bootstrap

    s = settings()
    outcome = asyncio.run(
        kafka.create_topics(
            resolve_kafka_bootstrap(s),
            partitions=s.topic_partitions,
            replication=s.topic_replication,
            prefix=s.topic_prefix,
        )
    )
    if as_json:
        emit_json(outcome)
    else:
        for name, what in outcome.items():
            console.print(f"{name}: {what}")


@topics_app.command("list")
def topics_list(as_json: JsonFlag = False) -> None:
    """List topics and their partition counts."""
    from shared import kafka
    from shared.runtime import resolve_kafka_bootstrap

    s = settings()
    topics = asyncio.run(kafka.describe_topics(resolve_kafka_bootstrap(s), prefix=s.topic_prefix))
    if as_json:
        emit_json(topics)
        return
    table = Table("topic", "partitions")
    for item in topics:
        table.add_row(item["topic"], str(item["partitions"]))
    out.print(table)


# --- schemas -----------------------------------------------------------------------------------


@schemas_app.command("write")
def schemas_write() -> None:
    """Regenerate docs/schemas/*.json from the message models."""
    from shared.schemas import write_all

    for path in write_all():
        console.print(f"wrote {path}")


@schemas_app.command("check")
def schemas_check() -> None:
    """Fail when a committed schema differs from the models."""
    from shared.schemas import stale

    bad = stale()
    if bad:
        raise NewsflowError(
            f"stale schemas: {', '.join(bad)}; run 'newsflow schemas write'", kind="config"
        )
    console.print("schemas up to date")


# --- services ----------------------------------------------------------------------------------


@app.command("worker")
def worker(
    service: Annotated[str, typer.Argument(help="fetcher | parser | enricher | writer")],
) -> None:
    """Run one service as a faust worker (scale out by starting more: same consumer group)."""
    import importlib

    from shared.faust_app import run_worker
    from shared.metrics import metrics_port, serve_metrics
    from shared.runtime import resolve_kafka_bootstrap

    if service not in SERVICES:
        raise NewsflowError(
            f"unknown service {service!r}; choose one of {', '.join(SERVICES)}", kind="usage"
        )
    s = settings()
    configure_logging(level=s.log_level, fmt=s.log_format, service=service)
    module = importlib.import_module(f"services.{service}.app")
    started = time.monotonic()
    faust_app = module.build(s, bootstrap=resolve_kafka_bootstrap(s))

    def ready() -> None:
        logger.info("service ready: %s in %.2fs", service, time.monotonic() - started)

    serve_metrics(metrics_port(s.metrics_port_base, service), s.metrics_bind)
    run_worker(faust_app, loglevel=s.log_level.lower(), on_ready=ready)


@app.command("run")
def run(
    feeds: Annotated[
        Path | None, typer.Option("--feeds", help="Text file of URLs or an OPML file.")
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Poll every feed once, wait until done, exit.")
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="With --once: give up after this many seconds.")
    ] = 900.0,
    as_json: JsonFlag = False,
) -> None:
    """Run the whole pipeline: stack (if needed), migrations, topics and all four services."""
    from shared.supervisor import Supervisor

    s = settings()
    configure_logging(level=s.log_level, fmt=s.log_format, service="run")
    code = asyncio.run(
        Supervisor(s, feeds_file=feeds, once=once, timeout=timeout, as_json=as_json).run()
    )
    raise typer.Exit(code)


@app.command("demo")
def demo(as_json: JsonFlag = False, timeout: float = 300.0) -> None:
    """Offline demo: serve the bundled sample news site on loopback and run --once against it."""
    import os
    import tempfile

    from shared.demo import DemoSite
    from shared.supervisor import Supervisor

    # the sample site is on loopback, which the SSRF guard blocks by default
    os.environ["NEWSFLOW_ALLOW_PRIVATE_NETWORKS"] = "true"
    os.environ.setdefault("NEWSFLOW_HOST_INTERVAL_S", "0.1")
    s = settings()
    configure_logging(level=s.log_level, fmt=s.log_format, service="demo")
    with DemoSite() as site, tempfile.NamedTemporaryFile("w", suffix=".txt") as feeds:
        feeds.write(site.feed_url + "\n")
        feeds.flush()
        console.print(f"sample site at {site.base} ({len(site.articles)} articles)")
        code = asyncio.run(
            Supervisor(
                s, feeds_file=Path(feeds.name), once=True, timeout=timeout, as_json=as_json
            ).run()
        )
    raise typer.Exit(code)


@app.command("settings")
def show_settings(as_json: JsonFlag = False) -> None:
    """Show every setting: variable, effective value and meaning."""
    from shared.settings import describe
    from shared.stack import redact_url

    s = settings()
    rows = [
        (var, str(getattr(s, var.removeprefix("NEWSFLOW_").lower())), doc)
        for var, _d, doc in describe()
    ]
    # a database URL may carry a password: never print it
    rows = [
        (var, str(redact_url(value)) if var == "NEWSFLOW_DATABASE_URL" else value, doc)
        for var, value, doc in rows
    ]
    if as_json:
        emit_json({var: value for var, value, _doc in rows})
        return
    table = Table("variable", "value", "meaning")
    for row in rows:
        table.add_row(*row)
    out.print(table)


def _register_plugins() -> None:
    """Stage-owned command groups register themselves here (kept optional for partial installs)."""
    import importlib

    for module_name, target in (
        ("services.fetcher.cli", feeds_app),
        ("services.enricher.cli", entities_app),
        ("services.writer.cli", app),
    ):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        module.register(target)


def main() -> None:
    _register_plugins()
    try:
        app()
    except NewsflowError as exc:
        console.print(f"[red]error:[/] {exc.detail}")
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
