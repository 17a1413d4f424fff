"""``newsflow recover``: re-drive unfinished work from PostgreSQL after the broker lost records
(an embedded broker restarted between runs, a real Kafka that lost its topics)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from services.cli.common import (
    JsonFlag,
    broker_bootstrap,
    broker_errors,
    emit_json,
    settings,
    with_db,
)
from shared.errors import NewsflowError


def _age(value: str) -> timedelta:
    from services.cli.ops.when import parse_since

    if value in ("0", "0s"):
        return timedelta(0)
    try:
        return datetime.now(UTC) - parse_since(value)
    except ValueError as exc:
        raise NewsflowError(f"--older-than: {exc}", kind="usage") from exc


def register(app: typer.Typer) -> None:
    """Add ``recover`` to the root app."""

    @app.command("recover")
    def recover_cmd(
        older_than: Annotated[
            str,
            typer.Option(
                "--older-than",
                help="Only links first seen at least this long ago (10m, 2h; 0 = all). Use it "
                "while the pipeline runs, so work still in flight is not sent twice.",
            ),
        ] = "0",
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Count what would be re-driven; send nothing.")
        ] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """Re-create missing topics and re-send every link without an outcome (or its page).

        Safe to run any time and twice: every stage is idempotent on its natural key.
        ``newsflow run`` does this by itself when it had to create topics at start.
        """
        from services.cli.ops.recover import redrive
        from services.cli.ops.sink import KafkaSink
        from shared import kafka

        s = settings()
        before = datetime.now(UTC) - _age(older_than)
        bootstrap = broker_bootstrap()
        created: dict[str, str] = {}
        if not dry_run:
            with broker_errors(bootstrap):
                created = asyncio.run(
                    kafka.create_topics(
                        bootstrap,
                        partitions=s.topic_partitions,
                        replication=s.topic_replication,
                        prefix=s.topic_prefix,
                    )
                )

        async def run(sessions: Any) -> Any:
            if dry_run:
                return await redrive(sessions, None, before=before, dry_run=True)  # type: ignore[arg-type]
            async with KafkaSink(bootstrap) as sink:
                return await redrive(sessions, sink, before=before, prefix=s.topic_prefix)

        with broker_errors(bootstrap):
            done = with_db(run, sessions=True)
        result = {
            **done.to_json(),
            "before": before.isoformat(),
            "topics_created": sorted(t for t, what in created.items() if what == "created"),
        }
        if as_json:
            emit_json(result)
            return
        verb = "would re-drive" if dry_run else "re-drove"
        typer.echo(
            f"{verb} {done.links} link(s) to be fetched and {done.pages} archived page(s) to be "
            f"parsed again (first seen before {before:%Y-%m-%d %H:%M:%S} UTC; oldest "
            f"{done.oldest:%Y-%m-%d %H:%M:%S} UTC), and {done.articles} stored article(s) "
            "the alerter had not matched"
            if done.total and done.oldest
            else f"{verb} {done.articles} stored article(s) the alerter had not matched"
            if done.articles
            else f"nothing to re-drive: every link first seen before "
            f"{before:%Y-%m-%d %H:%M:%S} UTC has an outcome",
            err=True,
        )
        if result["topics_created"]:
            typer.echo(f"created missing topics: {', '.join(result['topics_created'])}", err=True)
