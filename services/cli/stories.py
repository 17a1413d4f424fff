"""``newsflow stories list|show``: incidents grouped across outlets and languages."""

from __future__ import annotations

from typing import Annotated

import typer

from services.cli.common import (
    DEFAULT_LIMIT,
    JsonFlag,
    LimitOption,
    SinceOption,
    emit_json,
    new_table,
    show,
    since_option,
    when,
    with_db,
)
from shared.errors import NewsflowError


def register(app: typer.Typer) -> None:
    """Add ``stories`` to the root app."""

    stories_app = typer.Typer(help="Stories: one per incident.", no_args_is_help=True)
    app.add_typer(stories_app, name="stories")

    @stories_app.command("list")
    def stories_list(
        since: SinceOption = None,
        entity: Annotated[
            str | None, typer.Option(help="Entity key, e.g. 'ORG:kurdistan workers party'.")
        ] = None,
        min_sources: Annotated[
            int, typer.Option(min=1, help="Only stories carried by at least N outlets.")
        ] = 1,
        limit: LimitOption = DEFAULT_LIMIT,
        as_json: JsonFlag = False,
    ) -> None:
        """Most recently updated stories first: headline, articles, outlets, languages."""
        from services.storyteller.read import list_stories

        rows = with_db(
            lambda s: list_stories(
                s, since=since_option(since), entity=entity, min_sources=min_sources, limit=limit
            )
        )
        if as_json:
            emit_json(rows)
            return
        table = new_table("id", "updated", "articles", "sources", "langs", "first", "headline")
        for r in rows:
            first = r["first_report"] or {}
            table.add_row(
                str(r["id"]),
                when(r["last_updated"]),
                str(r["article_count"]),
                str(len(r["sources"])),
                ",".join(r["languages"]),
                first.get("source", ""),
                r["headline"] or "",
            )
        show(table)
        if not rows:
            typer.echo("no stories match", err=True)

    @stories_app.command("show")
    def stories_show(
        story_id: Annotated[int, typer.Argument(help="Story id (a merged id is followed).")],
        as_json: JsonFlag = False,
    ) -> None:
        """The story's timeline: time, source, role, title (JSON: article ids and URLs)."""
        from rich.markup import escape

        from services.storyteller.read import show_story

        story = with_db(lambda s: show_story(s, story_id))
        if story is None:
            raise NewsflowError(
                f"no story {story_id}; try 'newsflow stories list'", kind="not_found"
            )
        if as_json:
            emit_json(story)
            return
        entities = ", ".join(f"{e['key']} ({e['count']})" for e in story["top_entities"][:8])
        show(
            f"[bold]{escape(story['headline'] or '')}[/]\n"
            f"story #{story['id']} · {story['article_count']} articles · "
            f"{len(story['sources'])} sources · {', '.join(story['languages'])} · "
            f"{when(story['first_seen'])} – {when(story['last_updated'])}\n{escape(entities)}"
        )
        table = new_table("time", "source", "role", "title")
        for m in story["timeline"]:
            table.add_row(when(m["published_at"]), m["source"], m["role"], m["title"])
        show(table)
