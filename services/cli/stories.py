"""``newsflow stories list|show|split|move|merge|publish``: incidents grouped across outlets
and languages, and an analyst's corrections of the grouping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import typer
from rich.markup import escape

from services.cli.common import (
    DEFAULT_LIMIT,
    JsonFlag,
    LimitOption,
    SinceOption,
    broker_bootstrap,
    broker_errors,
    emit_json,
    new_table,
    settings,
    show,
    since_option,
    when,
    with_db,
)
from shared.errors import NewsflowError

#: stories.id is a bigint (same bound as services.storyteller.read.MAX_STORY_ID, not
#: imported so the CLI does not load SQLAlchemy to parse arguments)
MAX_STORY_ID = 2**63 - 1
#: --min-sources is compared with cardinality(stories.sources), a PostgreSQL integer: a larger
#: value was a DBAPIError traceback
MAX_MIN_SOURCES = 2**31 - 1


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
            int,
            typer.Option(
                min=1, max=MAX_MIN_SOURCES, help="Only stories carried by at least N outlets."
            ),
        ] = 1,
        limit: LimitOption = DEFAULT_LIMIT,
        as_json: JsonFlag = False,
    ) -> None:
        """Most recently updated stories first: headline, articles, outlets, languages."""
        from services.cli.watch import curated_key
        from services.storyteller.read import list_stories

        if entity is not None and not entity.strip():
            raise typer.BadParameter(
                "needs a key, name or alias (GPE:turkiye, Türkiye, PKK)", param_hint="'--entity'"
            )

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
        limit: Annotated[
            int,
            typer.Option(min=1, max=MAX_PAGE, help="Articles on the page (publication order)."),
        ] = DEFAULT_PAGE,
        offset: Annotated[
            int, typer.Option(min=0, max=MAX_STORY_ID, help="Skip this many articles first.")
        ] = 0,
        show_all: Annotated[
            bool, typer.Option("--all", help="Every article (ignores --limit).")
        ] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """A story's card and a page of its timeline: time, article id, source, role, title.

        JSON: the card, "timeline" (ids, URLs) and "page" (offset, limit, shown, total)."""
        from services.storyteller.read import show_story

        page = None if show_all else limit
        story = with_db(lambda s: show_story(s, story_id, limit=page, offset=offset))
        if story is None:
            raise NewsflowError(
                f"no story {story_id}; try 'newsflow stories list'", kind="not_found"
            )
        if as_json:
            emit_json(story)
            return
        show(story_header(story))
        if story["timeline"]:
            show(timeline_table(story))
        hint = page_hint(story)
        if hint:
            typer.echo(hint, err=True)

    @stories_app.command("split")
    def stories_split(
        story_id: Annotated[
            int, typer.Argument(min=1, max=MAX_STORY_ID, help="The story to split.")
        ],
        article_ids: Annotated[
            list[int],
            typer.Argument(
                min=1,
                max=MAX_STORY_ID,
                help="Articles to move into a new story (the 'article' column of "
                "'newsflow stories show STORY_ID').",
            ),
        ],
        as_json: JsonFlag = False,
    ) -> None:
        """Move articles that report another incident out of a story, into a new one.

        Both stories are rebuilt (roles, headline, first report, counts, entities) and kept
        apart: the storyteller never merges them again, later articles may join either.
        Publishes a split notice and both stories on news.stories.v1."""
        from services.storyteller.correct import split_story

        done = _correct(lambda s: split_story(s, story_id, article_ids))
        _report(
            done,
            as_json,
            f"split story #{done.story_id}: {_articles(len(done.article_ids))} moved to the "
            f"new story #{done.other_id}",
        )

    @stories_app.command("move")
    def stories_move(
        article_id: Annotated[
            int, typer.Argument(min=1, max=MAX_STORY_ID, help="The article to move.")
        ],
        to: Annotated[
            int,
            typer.Option("--to", min=1, max=MAX_STORY_ID, help="The story it belongs to."),
        ],
        as_json: JsonFlag = False,
    ) -> None:
        """Move one article from its story into another story.

        Both stories are rebuilt and kept apart from then on (as after a split)."""
        from services.storyteller.correct import move_article

        done = _correct(lambda s: move_article(s, article_id, to))
        _report(
            done,
            as_json,
            f"moved article {article_id} from story #{done.story_id} to #{done.other_id}",
        )

    @stories_app.command("merge")
    def stories_merge(
        story_a: Annotated[int, typer.Argument(min=1, max=MAX_STORY_ID, help="A story.")],
        story_b: Annotated[
            int, typer.Argument(min=1, max=MAX_STORY_ID, help="Another story, same incident.")
        ],
        as_json: JsonFlag = False,
    ) -> None:
        """Merge two stories that report one incident (also undoes a split).

        As the storyteller merges: the smaller redirects to the larger, nothing is deleted."""
        from services.storyteller.correct import merge_stories

        done = _correct(lambda s: merge_stories(s, story_a, story_b))
        _report(
            done,
            as_json,
            f"merged story #{done.story_id} into #{done.other_id} (the larger story keeps its "
            f"id; #{done.story_id} redirects to it)",
        )

    @stories_app.command("publish")
    def stories_publish(
        story_ids: Annotated[list[int], typer.Argument(min=1, max=MAX_STORY_ID, help="Story ids.")],
        as_json: JsonFlag = False,
    ) -> None:
        """Send stories' current state on news.stories.v1 again.

        For when a correction's records did not reach the broker."""
        from services.storyteller.correct import current_records

        sent = _publish(lambda s: current_records(s, story_ids))
        if as_json:
            emit_json({"published": [{"story_id": r.story_id, "kind": r.kind} for r in sent]})
            return
        typer.echo(f"published {len(sent)} story records")


#: ``stories show`` page size (services.storyteller.read.DEFAULT_PAGE, not imported so the CLI
#: does not load SQLAlchemy to parse arguments) and the largest page one may ask for
DEFAULT_PAGE = 50
MAX_PAGE = 10_000


def _articles(n: int) -> str:
    return f"{n} article" if n == 1 else f"{n} articles"


def _correct(run: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run a correction (a function of the session factory returning a
    :class:`~services.storyteller.correct.Correction`) and publish its records after the
    commit. The broker is reached first: when it is down nothing is changed."""
    done: list[Any] = []

    async def records(sessions: Any) -> list[Any]:
        done.append(await run(sessions))
        return list(done[0].records)

    _publish(records, saved="the change is saved, but its records")
    return done[0]


def _publish(
    produce: Callable[[Any], Awaitable[list[Any]]], *, saved: str = "the records"
) -> list[Any]:
    """Records from *produce* (given the session factory) sent on news.stories.v1, keyed by
    story id, each delivery confirmed. When the broker fails after *produce* committed, the
    error says how to send them again."""
    from services.cli.ops.sink import KafkaSink
    from shared.topology import STORIES

    topic = STORIES.full_name(settings().topic_prefix)
    bootstrap = broker_bootstrap()

    async def action(sessions: Any) -> list[Any]:
        with broker_errors(bootstrap):
            async with KafkaSink(bootstrap, topics=[topic]) as sink:
                records = await produce(sessions)
                try:
                    for r in records:
                        await sink.send(
                            topic, key=str(r.story_id).encode(), value=r.to_bytes(), headers=[]
                        )
                    await sink.flush()
                except Exception as exc:
                    ids = " ".join(str(i) for i in sorted({r.story_id for r in records}))
                    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                    raise NewsflowError(
                        f"{saved} did not reach {topic} at {bootstrap} ({reason}); send "
                        f"them with 'newsflow stories publish {ids}'",
                        kind="broker",
                    ) from exc
                return records

    result: list[Any] = with_db(action, sessions=True)
    return result


def _report(done: Any, as_json: bool, line: str) -> None:
    from services.storyteller.correct import summary

    if as_json:
        emit_json({**done.to_json(), "published": len(done.records)})
        return
    typer.echo(line)
    show(list_table([summary(r) for r in done.records if r.kind == "story"]))
    ids = sorted({r.story_id for r in done.records if r.kind == "story"})
    typer.echo(" · ".join(f"newsflow stories show {i}" for i in ids), err=True)


#: shown for a page stored without a title ('' in the database), instead of a blank cell
NO_TITLE = "(no title)"

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
            escape(r["headline"] or NO_TITLE),
        )
    return table


def story_header(story: dict[str, Any]) -> str:
    """The ``stories show`` header (rich markup): headline, counts, span, top entities, the
    first report, and which asked-for id was merged into this story (the text view said
    nothing of it)."""
    entities = ", ".join(f"{e['key']} ({e['count']})" for e in story["top_entities"][:8])
    lines = []
    if story.get("redirected_from"):
        asked = ", ".join(f"#{i}" for i in story["redirected_from"])
        lines.append(f"(story {asked} was merged into #{story['id']})")
    lines += [
        f"[bold]{escape(story['headline'] or NO_TITLE)}[/]",
        f"story #{story['id']} · {story['article_count']} articles · "
        f"{len(story['sources'])} sources · {escape(', '.join(story['languages']))} · "
        f"{when(story['first_seen'])} – {when(story['last_updated'])}"
        + (" · corrected by hand" if story.get("pinned") else ""),
        escape(entities),
    ]
    first = story.get("first_report")
    if first:
        lines.append(
            f"first report: {when(first['published_at'])} · {escape(first['source'] or '')} "
            f"(article {first['article_id']})"
        )
    return "\n".join(lines)


def timeline_table(story: dict[str, Any]) -> Any:
    """The ``stories show`` timeline table for a :func:`show_story` dict (an article moved
    here by hand is marked ``moved``)."""
    table = new_table("time", "article", "source", "role", "title")
    for m in story["timeline"]:
        role = m["role"] + (" (moved)" if m.get("pinned_at") else "")
        table.add_row(
            when(m["published_at"]),
            str(m.get("article_id") or ""),
            escape(m["source"] or ""),
            role,
            escape(m["title"] or NO_TITLE),
        )
    return table


def page_hint(story: dict[str, Any]) -> str | None:
    """What the page leaves out and the commands to see it; None when it shows everything."""
    page = story.get("page")
    if not page:
        return None
    offset, shown, total = page["offset"], page["shown"], page["total"]
    sid = story["id"]
    if shown == total:
        return None
    if shown == 0:
        return (
            f"no articles after the first {offset}: story #{sid} has {total} "
            f"(first page: 'newsflow stories show {sid}')"
        )
    hidden = total - shown
    span = f"article {offset + 1}" if shown == 1 else f"articles {offset + 1}-{offset + shown}"
    lines = f"{span} of {total}; {hidden} not shown"
    more = []
    if offset + shown < total:
        more.append(f"next page: 'newsflow stories show {sid} --offset {offset + shown}'")
    if offset > 0:
        more.append(f"from the start: 'newsflow stories show {sid}'")
    more.append(f"everything: 'newsflow stories show {sid} --all'")
    return f"{lines} ({'; '.join(more)})"
