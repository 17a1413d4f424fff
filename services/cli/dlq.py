"""``newsflow dlq list|show|replay|prune``: dead letters (logic in :mod:`services.cli.ops.dlq`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from services.cli.common import (
    FailedSinceOption,
    JsonFlag,
    broker_bootstrap,
    broker_errors,
    emit_json,
    new_table,
    plain,
    settings,
    show,
    since_option,
    when,
    with_db,
)
from shared.errors import NewsflowError


def register(app: typer.Typer) -> None:
    """Add the ``dlq`` group to the root app."""

    dlq_app = typer.Typer(help="Dead letters: list and replay.", no_args_is_help=True)
    app.add_typer(dlq_app, name="dlq")

    @dlq_app.command("list")
    def dlq_list(
        stage: Annotated[
            str | None, typer.Option(help="fetch | parse | enrich | store | feed")
        ] = None,
        since: FailedSinceOption = None,
        pending: Annotated[
            bool, typer.Option("--pending", help="Only letters not replayed yet.")
        ] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """Failures grouped by stage and error kind, with counts and the latest example."""
        from services.cli.ops.dlq import dlq_summary

        groups = with_db(
            lambda s: dlq_summary(
                s, stage=stage, since=since_option(since), include_replayed=not pending
            )
        )
        if as_json:
            emit_json([g.to_json() for g in groups])
            return
        table = new_table("stage", "kind", "count", "pending", "last failed", "latest example")
        for g in groups:
            example = g.latest
            table.add_row(
                g.stage,
                g.error_kind,
                str(g.count),
                str(g.pending),
                when(g.last_failed_at),
                f"#{example['id']} {example['url'] or ''}\n{(example['detail'] or '')[:160]}",
            )
        show(table)
        if not groups:
            typer.echo("no dead letters", err=True)

    @dlq_app.command("show")
    def dlq_show(
        letter_id: Annotated[int, typer.Argument(help="Dead letter id (from 'dlq list').")],
        as_json: JsonFlag = False,
    ) -> None:
        """One dead letter: full detail, where it came from, and its payload."""
        from services.cli.ops.dlq import load_dead_letter

        letter = with_db(lambda s: load_dead_letter(s, letter_id))
        if letter is None:
            raise NewsflowError(
                f"no dead letter #{letter_id}; 'newsflow dlq list' shows the latest of each kind",
                kind="not_found",
            )
        if as_json:
            emit_json(letter)
            return
        for name in (
            "id",
            "stage",
            "error_kind",
            "attempt",
            "failed_at",
            "replayed_at",
            "url",
            "key",
            "source_topic",
            "service",
            "payload_ref",
        ):
            typer.echo(f"{name}: {plain(letter[name]) if letter[name] is not None else '-'}")
        typer.echo(f"detail:\n{letter['detail']}")
        payload = letter["payload"]
        typer.echo(
            f"payload ({len(payload)} chars):\n{payload[:2000]}" if payload else "payload: -"
        )

    @dlq_app.command("replay")
    def dlq_replay(
        stage: Annotated[str | None, typer.Option(help="Only this stage's letters.")] = None,
        since: FailedSinceOption = None,
        letter_id: Annotated[
            list[int] | None, typer.Option("--id", help="Only this letter (repeatable).")
        ] = None,
        limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
        dry_run: Annotated[
            bool, typer.Option(help="Show what would be sent; send nothing.")
        ] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """Re-send dead letters to the topic they came from (after fixing the cause)."""
        from services.cli.ops.dlq import replay_dead_letters
        from services.cli.ops.sink import KafkaSink
        from shared.topology import ALL_TOPICS

        prefix = settings().topic_prefix
        bootstrap = None if dry_run else broker_bootstrap()

        async def action(sessions: Any) -> Any:
            kwargs: dict[str, Any] = {
                "prefix": prefix,
                "stage": stage,
                "since": since_option(since),
                "limit": limit,
                "ids": letter_id,
            }
            if bootstrap is None:
                return await replay_dead_letters(sessions, None, **kwargs)
            topics = [spec.full_name(prefix) for spec in ALL_TOPICS]
            with broker_errors(bootstrap):
                async with KafkaSink(bootstrap, topics=topics) as sink:
                    return await replay_dead_letters(sessions, sink, **kwargs)

        results = with_db(action, sessions=True)
        if as_json:
            emit_json([r.to_json() for r in results])
            return
        table = new_table("id", "stage", "kind", "status", "topic / reason", "url")
        for r in results:
            table.add_row(
                str(r.id),
                r.stage,
                r.error_kind,
                r.status,
                r.topic or r.reason or "",
                r.url or "",
            )
        show(table)
        sent = sum(r.status == "replayed" for r in results)
        skipped = sum(r.status == "skipped" for r in results)
        typer.echo(f"replayed {sent}, skipped {skipped}", err=True)

    @dlq_app.command("prune")
    def dlq_prune(
        before: Annotated[
            str,
            typer.Option(
                help="Delete letters that failed before this: ISO date/time or an age (30d)."
            ),
        ],
        stage: Annotated[str | None, typer.Option(help="Only this stage's letters.")] = None,
        include_pending: Annotated[
            bool,
            typer.Option(
                "--include-pending", help="Also delete letters never replayed (given up on)."
            ),
        ] = False,
        dry_run: Annotated[
            bool, typer.Option(help="Count what would be deleted; delete nothing.")
        ] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """Delete old dead letters (replayed ones only, unless --include-pending)."""
        from services.cli.ops.dlq import prune_dead_letters

        cutoff = since_option(before)
        assert cutoff is not None
        groups = with_db(
            lambda sessions: prune_dead_letters(
                sessions,
                before=cutoff,
                stage=stage,
                include_pending=include_pending,
                dry_run=dry_run,
            ),
            sessions=True,
        )
        if as_json:
            emit_json([g.to_json() for g in groups])
            return
        table = new_table("stage", "kind", "deleted" if not dry_run else "would delete", "pending")
        for g in groups:
            table.add_row(g.stage, g.error_kind, str(g.count), str(g.pending))
        show(table)
        verb = "would delete" if dry_run else "deleted"
        typer.echo(f"{verb} {sum(g.count for g in groups)} dead letters", err=True)
