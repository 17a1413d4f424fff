"""``newsflow worker|run|demo``: run one service, the whole pipeline, or the offline demo."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from services.cli.common import JsonFlag, broker_errors, settings
from shared.errors import NewsflowError
from shared.home import PRIVATE_UMASK
from shared.logs import configure_logging
from shared.topology import SERVICES

console = Console(stderr=True)
out = Console()

logger = logging.getLogger("newsflow")


def worker(
    service: Annotated[str, typer.Argument(help=" | ".join(SERVICES))],
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
    bootstrap = resolve_kafka_bootstrap(s)
    # Probed before logging is configured for the worker: an unreachable broker is then one
    # 'error:' line and exit 2, instead of faust's logged traceback and exit 1.
    _check_broker(bootstrap)
    configure_logging(level=s.log_level, fmt=s.log_format, service=service)
    os.umask(PRIVATE_UMASK)  # what it writes under NEWSFLOW_HOME is the owner's alone
    module = importlib.import_module(f"services.{service}.app")
    preflight = getattr(module, "preflight", None)  # a stage's own refusal to start, if any
    if preflight is not None:
        preflight(s)
    started = time.monotonic()
    faust_app = module.build(s, bootstrap=bootstrap)

    def ready() -> None:
        logger.info("service ready: %s in %.2fs", service, time.monotonic() - started)

    serve_metrics(metrics_port(s.metrics_port_base, service), s.metrics_bind)
    run_worker(faust_app, loglevel=s.log_level.lower(), on_ready=ready)


def _check_broker(bootstrap: str) -> None:
    """Raise the one-line NewsflowError when no broker answers at *bootstrap*; call it before
    logging is configured for a long-running command (the libraries are quiet until then)."""
    from shared.kafka import check_reachable

    with broker_errors(bootstrap):
        asyncio.run(check_reachable(bootstrap))


def _check_feeds_file(path: Path) -> list[str]:
    """The feed URLs *path* lists, checked before anything starts: a missing, unreadable or
    invalid file is a usage error; an empty one is a warning (nothing new will be added)."""
    from services.fetcher.admin import read_feed_file

    try:
        urls = read_feed_file(path)
    except ValueError as exc:
        raise NewsflowError(str(exc), kind="usage") from exc
    if not urls:
        console.print(
            f"[yellow]warning:[/] {path} lists no feed URLs (one URL a line, or OPML "
            "<outline xmlUrl=...>); no feed is added.",
            soft_wrap=True,
        )
    return urls


def run(
    feeds: Annotated[
        Path | None,
        typer.Option(
            "--feeds",
            help="Text file of feed URLs (one a line) or an OPML file. They are added to the "
            "registered feeds; with --once, exactly these feeds are polled.",
        ),
    ] = None,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Poll the feeds once (those in --feeds, else every registered feed), wait "
            "until every link is stored or dead-lettered, print a summary, exit.",
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option(min=1.0, help="With --once: give up after this many seconds (exit 1)."),
    ] = 900.0,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="With --once: exit 4 when a feed failed or an item was dead-lettered "
            "(default: 0 whenever the run completed).",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Run the whole pipeline: stack (if needed), migrations, topics and every service of
    shared/topology.py.

    Without --once it monitors every registered feed until Ctrl-C (exit 130). Exit codes of
    --once: 0 completed, 1 timed out, 2 usage/settings/database/broker error, 3 a service
    exited, 4 (--strict) feeds failed or were refused, or items were dead-lettered, 130 interrupted."""
    from services.cli.supervisor import Supervisor

    if strict and not once:
        raise NewsflowError("--strict applies to --once runs only", kind="usage")
    listed = _check_feeds_file(feeds) if feeds is not None else None
    s = settings()
    if s.kafka_bootstrap:
        # An external broker is probed while the libraries are still quiet: unreachable, it is
        # one 'error:' line (exit 2), not aiokafka's log line followed by ours.
        _check_broker(s.kafka_bootstrap)
    configure_logging(level=s.log_level, fmt=s.log_format, service="run")
    code = asyncio.run(
        Supervisor(
            s,
            feeds_file=feeds,
            feeds_listed=listed,
            once=once,
            timeout=timeout,
            strict=strict,
            as_json=as_json,
        ).run()
    )
    raise typer.Exit(code)


def demo(
    as_json: JsonFlag = False,
    timeout: Annotated[
        float, typer.Option(min=1.0, help="Give up after this many seconds (exit 1).")
    ] = 300.0,
) -> None:
    """Offline demo in its own home ($NEWSFLOW_HOME/demo, started afresh): serve the bundled
    sample news site on loopback, run the pipeline once against it, show what was stored and
    how to browse it. Your feeds, database and stack are never touched."""
    from services.cli.demo import run_demo

    raise typer.Exit(run_demo(settings(), timeout=timeout, as_json=as_json))


def register(root: typer.Typer) -> None:
    """Add ``worker``, ``run``, ``demo`` to the root app."""
    root.command("worker")(worker)
    root.command("run")(run)
    root.command("demo")(demo)
