"""``newsflow worker|run|demo``: run one service, the whole pipeline, or the offline demo."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from services.cli.common import JsonFlag, settings
from shared.errors import NewsflowError
from shared.logs import configure_logging
from shared.topology import SERVICES

console = Console(stderr=True)
out = Console()

logger = logging.getLogger("newsflow")


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

    serve_metrics(metrics_port(s.metrics_port_base, service))
    run_worker(faust_app, loglevel=s.log_level.lower(), on_ready=ready)


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
    from services.cli.supervisor import Supervisor

    s = settings()
    configure_logging(level=s.log_level, fmt=s.log_format, service="run")
    code = asyncio.run(
        Supervisor(s, feeds_file=feeds, once=once, timeout=timeout, as_json=as_json).run()
    )
    raise typer.Exit(code)


def demo(as_json: JsonFlag = False, timeout: float = 300.0) -> None:
    """Offline demo: serve the bundled sample news site on loopback and run --once against it."""
    import os
    import tempfile

    from services.cli.demo import DemoSite
    from services.cli.supervisor import Supervisor

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


def register(root: typer.Typer) -> None:
    """Add ``worker``, ``run``, ``demo`` to the root app."""
    root.command("worker")(worker)
    root.command("run")(run)
    root.command("demo")(demo)
