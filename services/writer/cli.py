"""Read-side and operator commands: ``articles``, ``search``, ``entities list|show``, ``dlq``,
``replay`` and ``lag``. Every command has ``--json`` (stdout, ISO 8601 times).

Logic lives in :mod:`services.writer.read` and :mod:`shared.ops`; this module parses
options, opens the database or broker, prints, and turns infrastructure failures into one
error line that says what to do (``shared.cli.main`` prints ``NewsflowError`` and exits 2).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

import typer

from shared.errors import NewsflowError

T = TypeVar("T")

JsonFlag = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
SinceOption = Annotated[
    str | None,
    typer.Option(help="Only since this time: ISO date/time (UTC if no offset) or an age (2h, 7d)."),
]
LimitOption = Annotated[int, typer.Option(min=1, help="At most this many rows.")]
DEFAULT_LIMIT = 20
BODY_PREVIEW_CHARS = 4000


# --- plumbing --------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON-ready: ISO times, lists for tuples/sets, recursively."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    return value


def _emit(data: Any) -> None:
    sys.stdout.write(json.dumps(_plain(data), indent=2, ensure_ascii=False) + "\n")


def _since(value: str | None) -> datetime | None:
    from shared.ops.when import parse_since

    if value is None:
        return None
    try:
        return parse_since(value)
    except ValueError as exc:
        raise NewsflowError(str(exc), kind="usage") from exc


def _settings() -> Any:
    from shared.cli import settings

    return settings()


def _db_failure(exc: BaseException, url: str) -> NewsflowError | None:
    import asyncpg
    from sqlalchemy.exc import DBAPIError

    shown = url.split("@")[-1]  # never print a password
    state = getattr(getattr(exc, "orig", exc), "sqlstate", None)
    if state == "42P01" or isinstance(exc, asyncpg.exceptions.UndefinedTableError):
        return NewsflowError(
            f"the database at {shown} has no newsflow tables; run 'newsflow db upgrade'",
            kind="config",
        )
    if isinstance(exc, OSError | asyncpg.exceptions.InterfaceError | ConnectionError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    ):
        return NewsflowError(
            f"cannot reach the database at {shown} ({exc}). Start it with 'newsflow stack up' "
            "or check NEWSFLOW_DATABASE_URL.",
            kind="config",
        )
    return None


def _with_db(action: Callable[[Any], Awaitable[T]], *, sessions: bool = False) -> T:
    """Run *action* with a session (or the session factory) on the configured database."""
    from shared.db.session import create_engine, session_factory
    from shared.runtime import resolve_database_url

    url = resolve_database_url(_settings())

    async def main() -> T:
        engine = create_engine(url, pool_size=1)
        factory = session_factory(engine)
        try:
            if sessions:
                return await action(factory)
            async with factory() as session:
                return await action(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except NewsflowError:
        raise
    except Exception as exc:
        mapped = _db_failure(exc, url)
        if mapped is None:
            raise
        raise mapped from exc


def _bootstrap() -> str:
    from shared.runtime import resolve_kafka_bootstrap

    return resolve_kafka_bootstrap(_settings())


def _broker_failure(exc: BaseException, bootstrap: str) -> NewsflowError | None:
    from aiokafka.errors import KafkaConnectionError, KafkaError

    if isinstance(exc, KafkaConnectionError | OSError | ConnectionError):
        return NewsflowError(
            f"cannot reach the broker at {bootstrap} ({exc}). Start it with 'newsflow stack up' "
            "or check NEWSFLOW_KAFKA_BOOTSTRAP.",
            kind="config",
        )
    if isinstance(exc, KafkaError):
        return NewsflowError(f"broker error from {bootstrap}: {exc!r}", kind="broker")
    return None


@contextmanager
def _broker_errors(bootstrap: str) -> Iterator[None]:
    """Map broker failures inside the block to one actionable message (see _broker_failure)."""
    try:
        yield
    except NewsflowError:
        raise
    except Exception as exc:
        mapped = _broker_failure(exc, bootstrap)
        if mapped is None:
            raise
        raise mapped from exc


def _table(*columns: str) -> Any:
    from rich.table import Table

    return Table(*columns, show_lines=False, header_style="bold")


def _print(renderable: Any) -> None:
    from rich.console import Console

    Console().print(renderable)


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


# --- commands --------------------------------------------------------------------------------


def _group(app: typer.Typer, name: str) -> typer.Typer:
    """The sub-app *name* of *app* (``entities`` is shared with the enricher's commands).

    Looked up on the app we were given rather than imported from ``shared.cli``: under
    ``python -m shared.cli`` that module is ``__main__`` and an import would be a copy.
    """
    for group in app.registered_groups:
        if group.name == name and group.typer_instance is not None:
            return group.typer_instance
    sub = typer.Typer(no_args_is_help=True)
    app.add_typer(sub, name=name)
    return sub


def register(app: typer.Typer) -> None:
    """Add the writer's read-side and operator commands to the root ``newsflow`` app."""
    entities_app = _group(app, "entities")

    articles_app = typer.Typer(help="Stored articles.", no_args_is_help=True)
    dlq_app = typer.Typer(help="Dead letters: list and replay.", no_args_is_help=True)
    app.add_typer(articles_app, name="articles")
    app.add_typer(dlq_app, name="dlq")

    @articles_app.command("list")
    def articles_list(
        since: SinceOption = None,
        feed: Annotated[str | None, typer.Option(help="Feed id or feed URL.")] = None,
        entity: Annotated[
            str | None, typer.Option(help="Entity key (GPE:iraq), id, name or alias.")
        ] = None,
        limit: LimitOption = DEFAULT_LIMIT,
        as_json: JsonFlag = False,
    ) -> None:
        """Newest articles first, with their top entities."""
        from services.writer import read

        rows = _with_db(
            lambda s: read.list_articles(
                s, since=_since(since), feed=feed, entity=entity, limit=limit
            )
        )
        if as_json:
            _emit(rows)
            return
        table = _table("id", "published", "src", "host", "title", "entities")
        for r in rows:
            table.add_row(
                str(r["id"]),
                _when(r["published_at"]),
                r["published_source"] or "",
                r["host"] or "",
                r["title"] or "",
                ", ".join(r["top_entities"]),
            )
        _print(table)
        if not rows:
            typer.echo("no articles match", err=True)

    @articles_app.command("show")
    def articles_show(
        ref: Annotated[
            str, typer.Argument(help="Article id or URL (canonical, fetched or final).")
        ],
        full: Annotated[bool, typer.Option(help="Print the whole body text.")] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """Clean text, metadata with provenance, removed spans, captions and entities."""
        from services.writer import read

        article = _with_db(lambda s: read.show_article(s, ref))
        if article is None:
            raise NewsflowError(
                f"no stored article with id or URL {ref!r}; try 'newsflow articles list' or "
                "'newsflow search'",
                kind="not_found",
            )
        if as_json:
            _emit(article)
            return
        _print_article(article, full=full)

    @app.command("search")
    def search_cmd(
        query: Annotated[
            str, typer.Argument(help='Web-search syntax: words, "a phrase", -not, or.')
        ],
        limit: LimitOption = DEFAULT_LIMIT,
        as_json: JsonFlag = False,
    ) -> None:
        """Full-text search over titles and bodies, best match first."""
        from services.writer import read

        rows = _with_db(lambda s: read.search(s, query, limit=limit))
        if as_json:
            _emit(rows)
            return
        table = _table("id", "rank", "published", "title", "snippet")
        for r in rows:
            table.add_row(
                str(r["id"]),
                f"{r['rank']:.3f}",
                _when(r["published_at"]),
                r["title"] or "",
                r["snippet"] or "",
            )
        _print(table)
        if not rows:
            typer.echo("no matches", err=True)

    @entities_app.command("list")
    def entities_list(
        kind: Annotated[str | None, typer.Option(help="PERSON, ORG, GPE, LOC, NORP, …")] = None,
        since: SinceOption = None,
        limit: LimitOption = DEFAULT_LIMIT,
        as_json: JsonFlag = False,
    ) -> None:
        """Top entities by articles mentioning them (merged entities folded in)."""
        from services.writer import read

        rows = _with_db(
            lambda s: read.list_entities(s, kind=kind, since=_since(since), limit=limit)
        )
        if as_json:
            _emit(rows)
            return
        table = _table("id", "key", "name", "articles", "mentions", "last seen", "aliases")
        for r in rows:
            table.add_row(
                str(r["id"]),
                r["key"],
                r["name"],
                str(r["articles"]),
                str(r["mentions"]),
                _when(r["last_seen"]),
                ", ".join(r["aliases"][:8]),
            )
        _print(table)

    @entities_app.command("show")
    def entities_show(
        ref: Annotated[str, typer.Argument(help="Entity key (GPE:iraq), id, name or alias.")],
        as_json: JsonFlag = False,
    ) -> None:
        """One entity: aliases, merges, counts, recent articles, co-occurring entities."""
        from services.writer import read

        entity = _with_db(lambda s: read.show_entity(s, ref))
        if entity is None:
            raise NewsflowError(
                f"no entity with key, id, name or alias {ref!r}; try 'newsflow entities list'",
                kind="not_found",
            )
        if as_json:
            _emit(entity)
            return
        _print_entity(entity)

    @dlq_app.command("list")
    def dlq_list(
        stage: Annotated[
            str | None, typer.Option(help="fetch | parse | enrich | store | feed")
        ] = None,
        since: SinceOption = None,
        pending: Annotated[
            bool, typer.Option("--pending", help="Only letters not replayed yet.")
        ] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """Failures grouped by stage and error kind, with counts and the latest example."""
        from shared.ops.dlq import dlq_summary

        groups = _with_db(
            lambda s: dlq_summary(s, stage=stage, since=_since(since), include_replayed=not pending)
        )
        if as_json:
            _emit([g.to_json() for g in groups])
            return
        table = _table("stage", "kind", "count", "pending", "last failed", "latest example")
        for g in groups:
            example = g.latest
            table.add_row(
                g.stage,
                g.error_kind,
                str(g.count),
                str(g.pending),
                _when(g.last_failed_at),
                f"#{example['id']} {example['url'] or ''}\n{(example['detail'] or '')[:160]}",
            )
        _print(table)
        if not groups:
            typer.echo("no dead letters", err=True)

    @dlq_app.command("show")
    def dlq_show(
        letter_id: Annotated[int, typer.Argument(help="Dead letter id (from 'dlq list').")],
        as_json: JsonFlag = False,
    ) -> None:
        """One dead letter: full detail, where it came from, and its payload."""
        from shared.ops.dlq import dead_letter

        letter = _with_db(lambda s: dead_letter(s, letter_id))
        if letter is None:
            raise NewsflowError(
                f"no dead letter #{letter_id}; 'newsflow dlq list' shows the latest of each kind",
                kind="not_found",
            )
        if as_json:
            _emit(letter)
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
            typer.echo(f"{name}: {_plain(letter[name]) if letter[name] is not None else '-'}")
        typer.echo(f"detail:\n{letter['detail']}")
        payload = letter["payload"]
        typer.echo(
            f"payload ({len(payload)} chars):\n{payload[:2000]}" if payload else "payload: -"
        )

    @dlq_app.command("replay")
    def dlq_replay(
        stage: Annotated[str | None, typer.Option(help="Only this stage's letters.")] = None,
        since: SinceOption = None,
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
        from shared.ops.dlq import replay_dead_letters
        from shared.ops.sink import KafkaSink
        from shared.topics import ALL_TOPICS

        prefix = _settings().topic_prefix
        bootstrap = None if dry_run else _bootstrap()

        async def action(sessions: Any) -> Any:
            kwargs: dict[str, Any] = {
                "prefix": prefix,
                "stage": stage,
                "since": _since(since),
                "limit": limit,
                "ids": letter_id,
            }
            if bootstrap is None:
                return await replay_dead_letters(sessions, None, **kwargs)
            topics = [prefix + spec.name for spec in ALL_TOPICS]
            with _broker_errors(bootstrap):
                async with KafkaSink(bootstrap, topics=topics) as sink:
                    return await replay_dead_letters(sessions, sink, **kwargs)

        results = _with_db(action, sessions=True)
        if as_json:
            _emit([r.to_json() for r in results])
            return
        table = _table("id", "stage", "kind", "status", "topic / reason", "url")
        for r in results:
            table.add_row(
                str(r.id),
                r.stage,
                r.error_kind,
                r.status,
                r.topic or r.reason or "",
                r.url or "",
            )
        _print(table)
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
        from shared.ops.dlq import prune_dead_letters

        cutoff = _since(before)
        assert cutoff is not None
        groups = _with_db(
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
            _emit([g.to_json() for g in groups])
            return
        table = _table("stage", "kind", "deleted" if not dry_run else "would delete", "pending")
        for g in groups:
            table.add_row(g.stage, g.error_kind, str(g.count), str(g.pending))
        _print(table)
        verb = "would delete" if dry_run else "deleted"
        typer.echo(f"{verb} {sum(g.count for g in groups)} dead letters", err=True)

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
            str, typer.Option(help="Stored (articles) or fetched (pages) at or after this time.")
        ],
        until: Annotated[str | None, typer.Option(help="...and before this time.")] = None,
        limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Re-run later stages from stored data (also the backfill path)."""
        from shared.ops.replay import SOURCES, replay_from
        from shared.ops.sink import KafkaSink
        from shared.topics import ARTICLES, PAGES

        if source not in SOURCES:
            raise NewsflowError(
                f"--from must be one of {', '.join(SOURCES)}, not {source!r}", kind="usage"
            )
        start = _since(since)
        assert start is not None
        prefix = _settings().topic_prefix
        bootstrap = _bootstrap()
        topic = prefix + (PAGES.name if source == "pages" else ARTICLES.name)

        async def action(sessions: Any) -> Any:
            with _broker_errors(bootstrap):
                async with KafkaSink(bootstrap, topics=[topic]) as sink:
                    return await replay_from(
                        sessions,
                        sink,
                        source=source,  # checked against SOURCES above
                        since=start,
                        until=_since(until),
                        prefix=prefix,
                        limit=limit,
                    )

        count = _with_db(action, sessions=True)
        if as_json:
            _emit(count.to_json())
            return
        typer.echo(
            f"sent {count.sent} {source} to {count.topic}"
            + (f" ({_when(count.first)} .. {_when(count.last)})" if count.sent else "")
        )

    @app.command("reenrich")
    def reenrich(
        since: Annotated[str, typer.Option(help="Articles stored at or after this time.")],
        until: Annotated[str | None, typer.Option(help="...and before this time.")] = None,
        limit: Annotated[int | None, typer.Option(min=1, help="At most this many.")] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Re-enrich stored articles, e.g. after a model or rules upgrade (the enrichment
        version is in articles.enrichment); same path as 'replay --from articles'."""
        replay_cmd(source="articles", since=since, until=until, limit=limit, as_json=as_json)

    @app.command("lag")
    def lag_cmd(as_json: JsonFlag = False) -> None:
        """Consumer-group lag per topic and partition (committed vs last stored offset)."""
        from shared.ops.lag import consumer_lag, totals

        bootstrap = _bootstrap()
        prefix = _settings().topic_prefix
        with _broker_errors(bootstrap):
            rows = asyncio.run(consumer_lag(bootstrap, prefix=prefix, group_prefix=prefix))
        if as_json:
            _emit({"partitions": [r.to_json() for r in rows], "totals": totals(rows)})
            return
        table = _table("group", "topic", "partition", "committed", "end", "lag")
        for r in rows:
            table.add_row(
                r.group,
                r.topic,
                str(r.partition),
                "-" if r.committed is None else str(r.committed),
                str(r.end) + ("" if r.exact else "+"),
                str(r.lag),
            )
        _print(table)
        for group, per_topic in totals(rows).items():
            typer.echo(f"{group}: " + ", ".join(f"{t} {n}" for t, n in per_topic.items()), err=True)


def _print_article(a: dict[str, Any], *, full: bool) -> None:
    from rich.markup import escape

    meta = a["metadata"]
    lines = [
        f"[bold]{escape(a['title'] or '(no title)')}[/]",
        f"#{a['id']} {a['canonical_url']}  status={a['status']}",
        f"published {_when(meta['published_at'])} (from {meta['published_source'] or '?'})"
        + (
            f", modified {_when(meta['modified_at'])} (from {meta['modified_source'] or '?'})"
            if meta["modified_at"]
            else ""
        ),
        f"by {', '.join(meta['authors']) or '?'} · {meta['site_name'] or a['host']} · "
        f"lang {meta['language'] or '?'} · {meta['word_count']} words · "
        f"extractor {meta['extraction'] or '?'}",
    ]
    if meta["duplicate_of"]:
        lines.append(f"near-duplicate of {meta['duplicate_of']} (similarity {meta['similarity']})")
    _print("\n".join(lines))
    body = a["body_text"] or ""
    if not full and len(body) > BODY_PREVIEW_CHARS:
        body = body[:BODY_PREVIEW_CHARS] + " … (--full for the rest)"
    _print("\n" + escape(body) + "\n")
    if a["captions"]:
        _print("[bold]captions[/]\n" + "\n".join(f"- {escape(c)}" for c in a["captions"]))
    if a["removed"]:
        _print(
            "[bold]removed by cleaning[/]\n"
            + "\n".join(
                f"- [{r.get('reason')}] {escape(str(r.get('text'))[:160])}" for r in a["removed"]
            )
        )
    table = _table("entity", "kind", "mentions", "salience", "as written")
    for e in a["entities"]:
        table.add_row(
            f"{e['name']} ({e['key']})",
            e["kind"],
            str(e["mentions"]),
            f"{e['salience']:.2f}",
            ", ".join(e["aliases"]),
        )
    _print(table)


def _print_entity(e: dict[str, Any]) -> None:
    lines = [f"[bold]{e['name']}[/] {e['key']} (#{e['id']}, {e['kind']})"]
    if e["merged_into"]:
        lines.append(f"merged into {e['merged_into']['key']} (#{e['merged_into']['id']})")
    if e["merged_from"]:
        lines.append("merged from: " + ", ".join(m["key"] for m in e["merged_from"]))
    lines.append(f"{e['articles']} articles, {e['mentions']} mentions")
    lines.append("aliases: " + ", ".join(f"{a['alias']} ({a['source']})" for a in e["aliases"]))
    if e["related"]:
        lines.append(
            "appears with: " + ", ".join(f"{r['name']} ({r['articles']})" for r in e["related"])
        )
    _print("\n".join(lines))
    table = _table("id", "published", "title", "mentions", "salience")
    for r in e["recent_articles"]:
        table.add_row(
            str(r["id"]),
            _when(r["published_at"]),
            r["title"] or "",
            str(r["mentions"]),
            f"{r['salience']:.2f}",
        )
    _print(table)
