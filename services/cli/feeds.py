"""``newsflow feeds …`` commands: add (with discovery), import, list, remove, discover."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.cli.common import JsonFlag, emit_json, settings
from services.fetcher import admin
from services.fetcher.service import running_fetcher
from shared.db.session import open_sessions
from shared.runtime import resolve_database_url
from shared.settings import Settings

T = TypeVar("T")


def _out() -> Console:
    # Made per call, not at import: the console reads the terminal (and COLUMNS) when built.
    return Console()


def _err() -> Console:
    return Console(stderr=True)


def _sessions(settings: Settings) -> AbstractAsyncContextManager[async_sessionmaker[AsyncSession]]:
    return open_sessions(resolve_database_url(settings), pool_size=2)


def _run(work: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(work(settings()))


def _print_add_results(results: list[admin.AddResult], as_json: bool) -> bool:
    if as_json:
        emit_json(
            [
                {"requested": r.requested, "feeds": r.feeds, "added": r.added, "error": r.error}
                for r in results
            ]
        )
    for r in results:
        if as_json:
            break
        if r.error:
            _err().print(f"[red]✗[/red] {r.requested}: {r.error}")
            continue
        for feed in r.feeds:
            state = "added" if feed in r.added else "already present"
            via = "" if feed == r.requested else f" (found from {r.requested})"
            _out().print(f"[green]✓[/green] {feed} {state}{via}")
    return all(r.error is None for r in results)


def register(root: typer.Typer) -> None:
    """Add the ``feeds`` group to the root app."""
    app = typer.Typer(help="Feeds the fetcher monitors.", no_args_is_help=True)
    root.add_typer(app, name="feeds")

    @app.command("add")
    def add(
        urls: Annotated[
            list[str], typer.Argument(help="Feed URLs, or site pages to discover feeds on.")
        ],
        no_discover: Annotated[
            bool, typer.Option("--no-discover", help="Store the URLs as given, without fetching.")
        ] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """Add feeds. A site's home page is searched for its feeds (<link rel=alternate>, common paths)."""

        async def work(settings: Settings) -> list[admin.AddResult]:
            async with _sessions(settings) as sessions:
                if no_discover:
                    stored = await admin.add_feeds(sessions, urls)
                    return [admin.AddResult(u, (u,), (u,) if new else ()) for u, new in stored]
                async with running_fetcher(settings, sessions) as fetcher:
                    return await admin.add_with_discovery(sessions, fetcher, urls)

        try:
            results = _run(work)
        except ValueError as exc:
            _err().print(f"[red]✗[/red] {exc}")
            raise typer.Exit(2) from exc
        if not _print_add_results(results, as_json):
            raise typer.Exit(1)

    @app.command("import")
    def import_(
        file: Annotated[
            Path, typer.Argument(exists=True, dir_okay=False, help="OPML or text file.")
        ],
        as_json: JsonFlag = False,
    ) -> None:
        """Import feed URLs from an OPML file or a text file (one URL a line)."""

        async def work(settings: Settings) -> admin.ImportReport:
            async with _sessions(settings) as sessions:
                return await admin.import_feeds_file(sessions, file)

        try:
            report = _run(work)
        except ValueError as exc:
            _err().print(f"[red]✗[/red] {exc}")
            raise typer.Exit(2) from exc
        if as_json:
            emit_json(
                {"added": report.added, "existing": report.existing, "invalid": report.invalid}
            )
        else:
            _out().print(f"feeds: {report}")

    @app.command("list")
    def list_(as_json: JsonFlag = False) -> None:
        """Feeds and their status: last/next poll, HTTP status, failures, last error, items."""

        async def work(settings: Settings) -> list[admin.FeedStatus]:
            async with _sessions(settings) as sessions:
                return await admin.list_feeds(sessions)

        feeds = _run(work)
        if as_json:
            emit_json([f.to_json() for f in feeds])
            return
        # Few, foldable columns: a narrow terminal must still show whole URLs and errors.
        table = Table("id", "feed", "polled / next", "every", "status", "items", "last error")
        table.columns[1].overflow = "fold"
        table.columns[6].overflow = "fold"
        for f in feeds:
            polled = f.last_polled_at.strftime("%m-%d %H:%M") if f.last_polled_at else "never"
            upcoming = f.next_poll_at.strftime("%m-%d %H:%M") if f.next_poll_at else "-"
            status = f"{f.last_status or '-'} {f.last_outcome or ''}".strip()
            if f.consecutive_failures:
                status += f" ×{f.consecutive_failures}"
            table.add_row(
                str(f.id),
                f.url,
                f"{polled}\n{upcoming}",
                f"{f.poll_interval_s / 60:.0f}m",
                status,
                f"{f.items_seen} / {f.items_new} new",
                (f.last_error or "")[:200],
            )
        _out().print(table)

    @app.command("remove")
    def remove(
        refs: Annotated[list[str], typer.Argument(help="Feed ids or URLs.")],
    ) -> None:
        """Remove feeds (their seen links are kept, so re-adding does not re-send old items)."""

        async def work(settings: Settings) -> list[str]:
            async with _sessions(settings) as sessions:
                return await admin.remove_feeds(sessions, refs)

        removed = _run(work)
        for url in removed:
            _out().print(f"removed {url}")
        if not removed:
            _err().print("no matching feed")
            raise typer.Exit(1)

    @app.command("discover")
    def discover(
        url: Annotated[str, typer.Argument(help="A site's page.")],
        as_json: JsonFlag = False,
    ) -> None:
        """Print the feeds a site offers, without adding them."""

        async def work(settings: Settings) -> list[str]:
            # Discovery only fetches; an unbound session factory keeps the database out of it.
            async with running_fetcher(settings, async_sessionmaker()) as fetcher:
                return await admin.discover_feeds(fetcher, url)

        found = _run(work)
        if as_json:
            emit_json(found)
        else:
            for feed in found:
                _out().print(feed)
        if not found:
            _err().print(f"no feed found at {url}")
            raise typer.Exit(1)
