"""``newsflow watch ...``: saved queries that alert on matching stored articles
(:mod:`services.alerter.store`; entity aliases resolved with the enricher's curated table).

Running alerters pick up added, edited, paused, resumed and removed watches at their next
batch; no restart is needed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from services.cli.common import JsonFlag, emit_json, settings, with_db
from shared.errors import NewsflowError

T = TypeVar("T")

DEFAULT_TEST_SINCE = "7d"
DEFAULT_TEST_LIMIT = 50


def curated_key(surface: str) -> str | None:
    """The enricher's curated key for *surface* (``PKK`` -> ``ORG:kurdistan workers party``),
    so ``entity:PKK`` resolves before any stored article mentions it."""
    from services.enricher.canonical import load_curated

    entry = load_curated().lookup(surface)
    return entry.entity.key if entry is not None else None


def _usage(exc: Exception) -> NewsflowError:
    """One place mapping the alerter's errors to a CLI message (exit code 2)."""
    from services.alerter.query import QueryError

    if isinstance(exc, QueryError):
        pointer = "\n".join("  " + line for line in exc.pointer().splitlines())
        return NewsflowError(f"{exc}\n{pointer}", kind="usage")
    return NewsflowError(str(exc), kind="usage")


def _run(action: Callable[[Any], Awaitable[T]]) -> T:
    """Run *action(session)* in one transaction on the configured database."""
    from services.alerter.query import QueryError
    from services.alerter.store import WatchError
    from services.alerter.webhooks import WebhookError

    async def in_transaction(session: Any) -> T:
        async with session.begin():
            return await action(session)

    try:
        return with_db(in_transaction)
    except (QueryError, WatchError, WebhookError) as exc:
        raise _usage(exc) from exc


def _webhook(url: str | None) -> str | None:
    from services.alerter.webhooks import WebhookError, check_url

    if url is None:
        return None
    try:
        return asyncio.run(check_url(url, allow_private=settings().allow_private_networks))
    except WebhookError as exc:
        raise _usage(exc) from exc


def _secret(path: Path | None) -> str | None:
    from services.alerter.webhooks import WebhookError, check_secret

    if path is None:
        return None
    try:
        return check_secret(path.read_text())
    except OSError as exc:
        raise NewsflowError(f"cannot read --secret-file {path}: {exc}", kind="usage") from exc
    except WebhookError as exc:
        raise _usage(exc) from exc


def _describe(info: Any) -> str:
    lines = [
        f"watch {info.name} (id {info.id}){' [paused]' if info.paused else ''}",
        f"  query:    {info.query}",
    ]
    if info.query_input != info.query:
        lines.append(f"  typed:    {info.query_input}")
    lines.append(f"  alerts:   {info.alerts}")
    if info.webhook_url:
        signed = "signed" if info.has_secret else "unsigned"
        lines.append(f"  webhook:  {info.webhook_url} ({signed})")
        if info.consecutive_failures or info.last_error:
            lines.append(
                f"  failing:  {info.consecutive_failures} in a row; last error "
                f"{info.last_error!r} at {info.last_error_at}; next attempt {info.next_attempt_at}"
            )
        if info.last_delivered_at:
            lines.append(f"  delivered: last at {info.last_delivered_at}")
    return "\n".join(lines)


def _as_json(info: Any) -> dict[str, Any]:
    data: dict[str, Any] = info.as_dict()
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in data.items()}


def register(root: typer.Typer) -> None:
    """Add the ``watch`` group to the root app."""
    from services.alerter import store

    watch_app = typer.Typer(
        help="Watchlists: saved queries that alert on matching articles.", no_args_is_help=True
    )
    root.add_typer(watch_app, name="watch")

    @watch_app.command("add")
    def add(
        name: Annotated[str, typer.Argument(help="A unique name for the watch.")],
        query: Annotated[str, typer.Option("--query", "-q", help="Lucene-style query.")],
        webhook: Annotated[
            str | None, typer.Option(help="POST each alert here (Standard Webhooks).")
        ] = None,
        secret_file: Annotated[
            Path | None,
            typer.Option(help="File holding the signing secret (whsec_...); default: generated."),
        ] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Save a watch. Entity aliases (entity:PKK) are resolved to keys now."""
        from services.alerter.webhooks import new_secret

        url = _webhook(webhook)
        secret = _secret(secret_file)
        generated = url is not None and secret is None
        if generated:
            secret = new_secret()
        info = _run(
            lambda s: store.add_watch(
                s, name, query, webhook_url=url, webhook_secret=secret, curated=curated_key
            )
        )
        if as_json:
            emit_json({**_as_json(info), **({"secret": secret} if generated else {})})
            return
        typer.echo(_describe(info))
        if generated:
            typer.echo(f"  secret:   {secret}  (shown once: configure your receiver with it)")

    @watch_app.command("list")
    def list_(as_json: JsonFlag = False) -> None:
        """Every watch: state, alerts, webhook health."""
        watches = _run(store.list_watches)
        if as_json:
            emit_json([_as_json(w) for w in watches])
            return
        if not watches:
            typer.echo("no watches yet: newsflow watch add NAME --query '...'")
        for w in watches:
            state = "paused" if w.paused else "active"
            failing = (
                f", webhook failing x{w.consecutive_failures}" if w.consecutive_failures else ""
            )
            typer.echo(f"{w.name:<24} {state:<7} {w.alerts:>6} alerts{failing}  {w.query}")

    @watch_app.command("show")
    def show(
        name: Annotated[str, typer.Argument(help="Watch name or id.")], as_json: JsonFlag = False
    ) -> None:
        """One watch: saved query, alert count, webhook status (last error, next attempt)."""
        info = _run(lambda s: store.get_watch(s, name))
        if as_json:
            emit_json(_as_json(info))
        else:
            typer.echo(_describe(info))

    @watch_app.command("edit")
    def edit(
        name: Annotated[str, typer.Argument(help="Watch name or id.")],
        query: Annotated[str | None, typer.Option("--query", "-q", help="New query.")] = None,
        webhook: Annotated[str | None, typer.Option(help="New webhook URL.")] = None,
        no_webhook: Annotated[bool, typer.Option(help="Stop sending webhooks.")] = False,
        secret_file: Annotated[Path | None, typer.Option(help="New signing secret file.")] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Change a watch's query or webhook (applies to articles stored from now on)."""
        if no_webhook and (webhook is not None or secret_file is not None):
            # Checked before anything is opened: silently letting one flag win would leave
            # the watch in a state the user did not ask for.
            raise NewsflowError(
                "--no-webhook removes the webhook: give it alone, or --webhook/--secret-file "
                "without it",
                kind="usage",
            )
        changes: dict[str, Any] = {}
        if query is not None:
            changes["query"] = query
        if no_webhook:
            changes.update(webhook_url=None, webhook_secret=None)
        elif webhook is not None:
            changes["webhook_url"] = _webhook(webhook)
        if secret_file is not None:
            changes["webhook_secret"] = _secret(secret_file)
        if not changes:
            raise NewsflowError("nothing to change: give --query, --webhook or --secret-file")
        info = _run(lambda s: store.edit_watch(s, name, curated=curated_key, **changes))
        emit_json(_as_json(info)) if as_json else typer.echo(_describe(info))

    def _pause(name: str, paused: bool, as_json: bool) -> None:
        info = _run(lambda s: store.edit_watch(s, name, paused=paused))
        emit_json(_as_json(info)) if as_json else typer.echo(_describe(info))

    @watch_app.command("pause")
    def pause(
        name: Annotated[str, typer.Argument(help="Watch name or id.")], as_json: JsonFlag = False
    ) -> None:
        """Stop matching this watch (its alerts are kept)."""
        _pause(name, True, as_json)

    @watch_app.command("resume")
    def resume(
        name: Annotated[str, typer.Argument(help="Watch name or id.")], as_json: JsonFlag = False
    ) -> None:
        """Match this watch again, from articles stored from now on."""
        _pause(name, False, as_json)

    @watch_app.command("remove")
    def remove(
        name: Annotated[str, typer.Argument(help="Watch name or id.")], as_json: JsonFlag = False
    ) -> None:
        """Delete a watch and its alerts."""
        info = _run(lambda s: store.remove_watch(s, name))
        if as_json:
            emit_json(_as_json(info))
        else:
            typer.echo(f"removed watch {info.name} ({info.alerts} alerts)")

    @watch_app.command("test")
    def test(
        query: Annotated[str, typer.Option("--query", "-q", help="Lucene-style query.")],
        since: Annotated[
            str, typer.Option(help="Articles stored since: 7d, 12h, 2026-11-01, ...")
        ] = DEFAULT_TEST_SINCE,
        limit: Annotated[int, typer.Option(help="Show at most this many matches.")] = (
            DEFAULT_TEST_LIMIT
        ),
        as_json: JsonFlag = False,
    ) -> None:
        """What QUERY would have matched among stored articles, without saving a watch.

        Uses the stream's matcher on the same stored data, so a watch with this query alerts
        on the same articles.
        """
        from services.cli.ops.when import parse_since

        try:
            start = parse_since(since)
        except ValueError as exc:
            raise NewsflowError(str(exc), kind="usage") from exc
        saved, found = _run(
            lambda s: store.try_query(s, query, since=start, limit=limit, curated=curated_key)
        )
        rows = [
            {
                "article_id": art.doc.article_id,
                "url": art.doc.url,
                "title": art.doc.title,
                "published_at": art.doc.published_at.isoformat() if art.doc.published_at else None,
                "matched_terms": list(match.terms),
                "matched_entities": list(match.entity_keys),
                "reason": match.reason,
            }
            for art, match in found
        ]
        if as_json:
            emit_json({"query": saved, "since": start.isoformat(), "matches": rows})
            return
        typer.echo(f"query: {saved}\n{len(rows)} match(es) since {start:%Y-%m-%d %H:%M} UTC")
        for row in rows:
            typer.echo(
                f"  {row['article_id']:>7}  {row['title'] or row['url']}\n           {row['reason']}"
            )
