"""``newsflow replay`` and ``newsflow reenrich``: re-run later stages from stored data."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from services.cli.common import (
    JsonFlag,
    broker_bootstrap,
    broker_errors,
    emit_json,
    settings,
    since_option,
    when,
    with_db,
)
from shared.errors import NewsflowError


def register(app: typer.Typer) -> None:
    """Add ``replay`` and ``reenrich`` to the root app."""

    @app.command("replay")
    def replay_cmd(
        source: Annotated[
            str,
            typer.Option(
                "--from",
                help="articles: re-enrich and re-store; pages: re-parse, re-enrich, re-store.",
            ),
        ],
        since: Annotated[
            str,
            typer.Option(
                "--stored-since",
                "--since",
                help="Articles newsflow stored (pages: fetched) at or after this time: ISO "
                "date/time or an age (7d).",
            ),
        ],
        until: Annotated[
            str | None,
            typer.Option("--stored-until", "--until", help="...and before this time."),
        ] = None,
        limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Re-run later stages from stored data (also the backfill path)."""
        from services.cli.ops.replay import SOURCES, replay_from
        from services.cli.ops.sink import KafkaSink
        from shared.topology import ARTICLES, PAGES

        if source not in SOURCES:
            raise NewsflowError(
                f"--from must be one of {', '.join(SOURCES)}, not {source!r}", kind="usage"
            )
        start = since_option(since)
        assert start is not None
        prefix = settings().topic_prefix
        bootstrap = broker_bootstrap()
        topic = (PAGES if source == "pages" else ARTICLES).full_name(prefix)

        async def action(sessions: Any) -> Any:
            with broker_errors(bootstrap):
                async with KafkaSink(bootstrap, topics=[topic]) as sink:
                    return await replay_from(
                        sessions,
                        sink,
                        source=source,  # checked against SOURCES above
                        since=start,
                        until=since_option(until),
                        prefix=prefix,
                        limit=limit,
                    )

        count = with_db(action, sessions=True)
        if as_json:
            emit_json(count.to_json())
            return
        typer.echo(
            f"sent {count.sent} {source} to {count.topic}"
            + (f" ({when(count.first)} .. {when(count.last)})" if count.sent else "")
        )

    @app.command("reenrich")
    def reenrich(
        since: Annotated[
            str,
            typer.Option(
                "--stored-since",
                "--since",
                help="Articles newsflow stored at or after this time: ISO date/time or age.",
            ),
        ],
        until: Annotated[
            str | None,
            typer.Option("--stored-until", "--until", help="...and before this time."),
        ] = None,
        limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Re-enrich stored articles, e.g. after a model or rules upgrade (the enrichment
        version is in articles.enrichment); same path as 'replay --from articles'."""
        replay_cmd(source="articles", since=since, until=until, limit=limit, as_json=as_json)
