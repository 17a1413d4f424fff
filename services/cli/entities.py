"""``newsflow entities ...``: read the stored entities (:mod:`services.cli.ops.read`) and
curate them (:mod:`services.enricher.admin`).

Running enrichers read aliases and merges at start; restart them (or send the reload the
service supports) for a change to reach articles enriched from then on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

import typer

from services.cli.common import (
    DEFAULT_LIMIT,
    JsonFlag,
    LimitOption,
    PublishedSinceOption,
    emit_json,
    new_table,
    show,
    since_option,
    when,
    with_db,
)
from shared.errors import NewsflowError

T = TypeVar("T")

RELOAD_HINT = "Enrichers pick this up at their next start or overrides reload."


def _run(action: Callable[..., Awaitable[T]], *args: object, **kwargs: object) -> T:
    from shared.db.session import create_engine, session_factory
    from shared.runtime import resolve_database_url
    from shared.settings import get_settings

    async def main() -> T:
        engine = create_engine(resolve_database_url(get_settings()), pool_size=1)
        try:
            async with session_factory(engine)() as session, session.begin():
                return await action(session, *args, **kwargs)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def register(root: typer.Typer) -> None:
    """Add the ``entities`` group to the root app: read (list, show, find, explain) and
    curate (alias add, merge, split)."""
    from services.enricher import admin
    from services.enricher.overrides import load_overrides

    app = typer.Typer(help="Canonical entities, aliases, merges.", no_args_is_help=True)
    root.add_typer(app, name="entities")

    alias_app = typer.Typer(help="Extra spellings that resolve to an entity.", no_args_is_help=True)

    @alias_app.command("add")
    def alias_add(
        entity: Annotated[str, typer.Argument(help="Entity key (GPE:turkiye) or exact name.")],
        alias: Annotated[str, typer.Argument(help="Surface form to resolve to it.")],
        name: Annotated[
            str | None, typer.Option(help="Display name if the key is created now.")
        ] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Make ALIAS resolve to ENTITY in every article enriched from now on."""
        change = _run(admin.add_alias, entity, alias, name=name)
        if as_json:
            emit_json({"alias": change.alias, "entity": asdict(change.entity)})
            return
        created = " (created)" if change.entity.created else ""
        typer.echo(f"alias {change.alias!r} -> {change.entity.key}{created}. {RELOAD_HINT}")

    app.add_typer(alias_app, name="alias")

    @app.command("merge")
    def merge(
        source: Annotated[str, typer.Argument(help="Entity that becomes a redirect (A).")],
        target: Annotated[str, typer.Argument(help="Entity it is merged into (B).")],
        force: Annotated[bool, typer.Option(help="Allow merging different kinds.")] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """Merge entity A into B: A's mentions resolve to B from now on (reversible)."""
        change = _run(admin.merge_entities, source, target, allow_kind_change=force)
        if as_json:
            emit_json({"merged": asdict(change.source), "into": asdict(change.target)})
            return
        typer.echo(f"merged {change.source.key} into {change.target.key}. {RELOAD_HINT}")

    @app.command("find")
    def find(
        query: Annotated[str, typer.Argument(help="Entity key, or part of a name or alias.")],
        limit: Annotated[int, typer.Option(help="At most this many entities.")] = 20,
        as_json: JsonFlag = False,
    ) -> None:
        """Find entities by key, name or alias: kind, links, redirect and aliases."""
        found = _run(admin.find_entities, query, limit=limit)
        if as_json:
            typer.echo(json.dumps([asdict(item) for item in found], ensure_ascii=False, indent=2))
            if not found:
                raise typer.Exit(1)
            return
        if not found:
            typer.echo(f"no entity matches {query!r}")
            raise typer.Exit(1)
        for item in found:
            redirect = f" -> merged into {item.merged_into}" if item.merged_into else ""
            typer.echo(f"{item.key}\t{item.name}\t{item.articles} articles{redirect}")
            for alias, source in item.aliases:
                typer.echo(f"    {alias}\t({source})")

    @app.command("explain")
    def explain(
        text: Annotated[str, typer.Argument(help="Article text ('-' reads standard input).")],
        title: Annotated[str | None, typer.Option(help="Headline.")] = None,
        with_db: Annotated[
            bool, typer.Option(help="Apply user aliases and merges from the database.")
        ] = False,
        language: Annotated[
            str | None,
            typer.Option(help="Language of a text too short to identify (tr, ar, ckb, kmr, fa)."),
        ] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Show each mention's entity key and the rules that produced it (no DB writes).

        --json: ``{"language": str | null, "mentions": [{field, start, end, text, label, key,
        recognized_by, resolved_by}]}``, offsets in characters of the field."""
        import sys
        from dataclasses import asdict
        from datetime import UTC, datetime

        from services.enricher.pipeline import Enricher, article_language
        from shared.messages import Article

        body = sys.stdin.read() if text == "-" else text
        overrides = _run(load_overrides) if with_db else None
        now = datetime.now(UTC)
        article = Article(
            url="cli:explain",
            final_url="cli:explain",
            canonical_url="cli:explain",
            host="cli",
            title=title,
            body_text=body,
            content_hash="",
            language=language,
            discovered_at=now,
            fetched_at=now,
            parsed_at=now,
        )
        explained = Enricher(overrides=overrides).explain(article)
        if as_json:
            mentions = [{**asdict(item), "end": item.start + len(item.text)} for item in explained]
            emit_json({"language": article_language(article), "mentions": mentions})
            return
        for item in explained:
            typer.echo(
                f"{item.field}:{item.start}\t{item.text}\t{item.key}\t"
                f"{item.recognized_by} -> {item.resolved_by}"
            )

    @app.command("split")
    def split(
        entity: Annotated[str, typer.Argument(help="Entity key or exact name.")],
        alias: Annotated[
            list[str] | None, typer.Option("--alias", help="Surface form to move (repeatable).")
        ] = None,
        into: Annotated[
            str | None, typer.Option(help="Entity that receives the moved aliases.")
        ] = None,
        name: Annotated[str | None, typer.Option(help="Display name if --into is created.")] = None,
        as_json: JsonFlag = False,
    ) -> None:
        """Undo a merge of ENTITY, or move --alias forms from ENTITY to --into."""
        change = _run(admin.split_entity, entity, aliases=tuple(alias or ()), into=into, name=name)
        if as_json:
            emit_json(
                {
                    "entity": asdict(change.source),
                    "unmerged": change.unmerged,
                    "moved": list(change.moved),
                    "into": asdict(change.target) if change.target is not None else None,
                }
            )
            return
        if change.unmerged:
            typer.echo(f"{change.source.key} is its own entity again. {RELOAD_HINT}")
        else:
            assert change.target is not None
            moved = ", ".join(repr(a) for a in change.moved)
            typer.echo(
                f"moved {moved} from {change.source.key} to {change.target.key}. {RELOAD_HINT}"
            )

    @app.command("list")
    def entities_list(
        kind: Annotated[str | None, typer.Option(help="PERSON, ORG, GPE, LOC, NORP, …")] = None,
        since: PublishedSinceOption = None,
        limit: LimitOption = DEFAULT_LIMIT,
        as_json: JsonFlag = False,
    ) -> None:
        """Top entities by articles mentioning them (merged entities folded in)."""
        from services.cli.ops import read

        rows = with_db(
            lambda s: read.list_entities(s, kind=kind, since=since_option(since), limit=limit)
        )
        if as_json:
            emit_json(rows)
            return
        table = new_table("id", "key", "name", "articles", "mentions", "last seen", "aliases")
        for r in rows:
            table.add_row(
                str(r["id"]),
                r["key"],
                r["name"],
                str(r["articles"]),
                str(r["mentions"]),
                when(r["last_seen"]),
                ", ".join(r["aliases"][:8]),
            )
        show(table)

    @app.command("show")
    def entities_show(
        ref: Annotated[str, typer.Argument(help="Entity key (GPE:iraq), id, name or alias.")],
        as_json: JsonFlag = False,
    ) -> None:
        """One entity: aliases, merges, counts, recent articles, co-occurring entities."""
        from services.cli.ops import read

        entity = with_db(lambda s: read.show_entity(s, ref))
        if entity is None:
            raise NewsflowError(
                f"no entity with key, id, name or alias {ref!r}; try 'newsflow entities list'",
                kind="not_found",
            )
        if as_json:
            emit_json(entity)
            return
        _print_entity(entity)


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
    show("\n".join(lines))
    table = new_table("id", "published", "title", "mentions", "salience")
    for r in e["recent_articles"]:
        table.add_row(
            str(r["id"]),
            when(r["published_at"]),
            r["title"] or "",
            str(r["mentions"]),
            f"{r['salience']:.2f}",
        )
    show(table)
