"""``newsflow topics create|list``: the Kafka topics declared in the topology."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from services.cli.common import JsonFlag, emit_json, settings

console = Console(stderr=True)
out = Console()


topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Add the ``topics`` group to the root app."""
    root.add_typer(topics_app, name="topics")


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
