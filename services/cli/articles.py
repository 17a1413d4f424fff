"""``newsflow articles list|show`` and ``newsflow search``: the stored articles."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from services.cli.common import (
    BODY_PREVIEW_CHARS,
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


def register(app: typer.Typer) -> None:
    """Add ``articles`` and ``search`` to the root app."""

    articles_app = typer.Typer(help="Stored articles.", no_args_is_help=True)
    app.add_typer(articles_app, name="articles")

    @articles_app.command("list")
    def articles_list(
        since: PublishedSinceOption = None,
        feed: Annotated[str | None, typer.Option(help="Feed id or feed URL.")] = None,
        entity: Annotated[
            str | None, typer.Option(help="Entity key (GPE:iraq), id, name or alias.")
        ] = None,
        limit: LimitOption = DEFAULT_LIMIT,
        as_json: JsonFlag = False,
    ) -> None:
        """Newest articles first, with their top entities."""
        from services.cli.ops import read

        rows = with_db(
            lambda s: read.list_articles(
                s, since=since_option(since), feed=feed, entity=entity, limit=limit
            )
        )
        if as_json:
            emit_json(rows)
            return
        table = new_table("id", "published", "src", "host", "title", "entities")
        for r in rows:
            table.add_row(
                str(r["id"]),
                when(r["published_at"]),
                r["published_source"] or "",
                r["host"] or "",
                r["title"] or "",
                ", ".join(r["top_entities"]),
            )
        show(table)
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
        from services.cli.ops import read

        article = with_db(lambda s: read.show_article(s, ref))
        if article is None:
            raise NewsflowError(
                f"no stored article with id or URL {ref!r}; try 'newsflow articles list' or "
                "'newsflow search'",
                kind="not_found",
            )
        if as_json:
            emit_json(article)
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
        from services.cli.ops import read

        if not query.strip():
            # An empty query matches nothing; saying "no matches" would suggest there is no data.
            raise NewsflowError(
                "give words to search for, e.g. newsflow search 'PKK Duhok'", kind="usage"
            )
        rows = with_db(lambda s: read.search(s, query, limit=limit))
        if as_json:
            emit_json(rows)
            return
        table = new_table("id", "rank", "published", "title", "snippet")
        for r in rows:
            table.add_row(
                str(r["id"]),
                f"{r['rank']:.3f}",
                when(r["published_at"]),
                r["title"] or "",
                r["snippet"] or "",
            )
        show(table)
        if not rows:
            typer.echo("no matches", err=True)


def _print_article(a: dict[str, Any], *, full: bool) -> None:
    from rich.markup import escape

    meta = a["metadata"]
    lines = [
        f"[bold]{escape(a['title'] or '(no title)')}[/]",
        f"#{a['id']} {a['canonical_url']}  status={a['status']}",
        f"published {when(meta['published_at'])} (from {meta['published_source'] or '?'})"
        + (
            f", modified {when(meta['modified_at'])} (from {meta['modified_source'] or '?'})"
            if meta["modified_at"]
            else ""
        ),
        f"by {', '.join(meta['authors']) or '?'} · {meta['site_name'] or a['host']} · "
        f"lang {meta['language'] or '?'} · {meta['word_count']} words · "
        f"extractor {meta['extraction'] or '?'}",
    ]
    if meta["duplicate_of"]:
        lines.append(f"near-duplicate of {meta['duplicate_of']} (similarity {meta['similarity']})")
    show("\n".join(lines))
    body = a["body_text"] or ""
    if not full and len(body) > BODY_PREVIEW_CHARS:
        body = body[:BODY_PREVIEW_CHARS] + " … (--full for the rest)"
    show("\n" + escape(body) + "\n")
    if a["captions"]:
        show("[bold]captions[/]\n" + "\n".join(f"- {escape(c)}" for c in a["captions"]))
    if a["removed"]:
        show(
            "[bold]removed by cleaning[/]\n"
            + "\n".join(
                f"- [{r.get('reason')}] {escape(str(r.get('text'))[:160])}" for r in a["removed"]
            )
        )
    table = new_table("entity", "kind", "mentions", "salience", "as written")
    for e in a["entities"]:
        table.add_row(
            f"{e['name']} ({e['key']})",
            e["kind"],
            str(e["mentions"]),
            f"{e['salience']:.2f}",
            ", ".join(e["aliases"]),
        )
    show(table)
