"""``newsflow stories list|show``: incidents grouped across outlets and languages."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

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

#: stories.id is a bigint (same bound as services.storyteller.read.MAX_STORY_ID, not
#: imported so the CLI does not load SQLAlchemy to parse arguments)
MAX_STORY_ID = 2**63 - 1


def register(app: typer.Typer) -> None:
    """Add ``stories`` to the root app."""

    stories_app = typer.Typer(help="Stories: one per incident.", no_args_is_help=True)
    app.add_typer(stories_app, name="stories")

    @stories_app.command("list")
    def stories_list(
        since: SinceOption = None,
        entity: Annotated[
            str | None,
            typer.Option(help="Entity key, name or alias: 'ORG:kurdistan workers party', PKK."),
        ] = None,
        min_sources: Annotated[
            int, typer.Option(min=1, help="Only stories carried by at least N outlets.")
        ] = 1,
        limit: LimitOption = DEFAULT_LIMIT,
        as_json: JsonFlag = False,
    ) -> None:
        """Most recently updated stories first: headline, articles, outlets, languages."""
        from services.cli.watch import curated_key
        from services.storyteller.read import list_stories

        rows = with_db(
            lambda s: list_stories(
                s,
                since=since_option(since),
                entity=entity,
                min_sources=min_sources,
                limit=limit,
                curated=curated_key,
            )
        )
        if as_json:
            emit_json(rows)
            return
        show(list_table(rows))
        if not rows:
            typer.echo("no stories match", err=True)

    @stories_app.command("show")
    def stories_show(
        story_id: Annotated[
            int,
            typer.Argument(min=1, max=MAX_STORY_ID, help="Story id (a merged id is followed)."),
        ],
        as_json: JsonFlag = False,
    ) -> None:
        """The story's timeline: time, source, role, title (JSON: article ids and URLs)."""
        from services.storyteller.read import show_story

        story = with_db(lambda s: show_story(s, story_id))
        if story is None:
            raise NewsflowError(
                f"no story {story_id}; try 'newsflow stories list'", kind="not_found"
            )
        if as_json:
            emit_json(story)
            return
        show(story_header(story))
        show(timeline_table(story))


# Titles, headlines and sources come from the web: a title like "[/] attack" is rich markup
# and raised MarkupError, so every such cell is escaped.


def list_table(rows: list[dict[str, Any]]) -> Any:
    """The ``stories list`` table for :func:`services.storyteller.read.list_stories` rows."""
    table = new_table("id", "updated", "articles", "sources", "langs", "first", "headline")
    for r in rows:
        first = r["first_report"] or {}
        table.add_row(
            str(r["id"]),
            when(r["last_updated"]),
            str(r["article_count"]),
            str(len(r["sources"])),
            escape(",".join(r["languages"])),
            escape(first.get("source") or ""),
            escape(r["headline"] or ""),
        )
    return table


def story_header(story: dict[str, Any]) -> str:
    """The ``stories show`` header (rich markup): headline, counts, span, top entities, and
    which asked-for id was merged into this story (the text view said nothing of it)."""
    entities = ", ".join(f"{e['key']} ({e['count']})" for e in story["top_entities"][:8])
    lines = []
    if story.get("redirected_from"):
        asked = ", ".join(f"#{i}" for i in story["redirected_from"])
        lines.append(f"(story {asked} was merged into #{story['id']})")
    lines += [
        f"[bold]{escape(story['headline'] or '')}[/]",
        f"story #{story['id']} · {story['article_count']} articles · "
        f"{len(story['sources'])} sources · {escape(', '.join(story['languages']))} · "
        f"{when(story['first_seen'])} – {when(story['last_updated'])}",
        escape(entities),
    ]
    return "\n".join(lines)


def timeline_table(story: dict[str, Any]) -> Any:
    """The ``stories show`` timeline table for a :func:`show_story` dict."""
    table = new_table("time", "source", "role", "title")
    for m in story["timeline"]:
        table.add_row(
            when(m["published_at"]), escape(m["source"] or ""), m["role"], escape(m["title"] or "")
        )
    return table
