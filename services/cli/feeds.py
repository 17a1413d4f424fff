"""``newsflow feeds …`` commands: add (with discovery), import, list, remove, discover."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.cli.common import JsonFlag, db_failure, emit_json, settings
from services.fetcher import admin
from services.fetcher.service import running_fetcher
from shared.db.session import open_sessions
from shared.errors import NewsflowError
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
    """Run *work*; an unreachable database is one actionable line (see db_failure)."""
    from shared.errors import NewsflowError

    try:
        return asyncio.run(work(settings()))
    except NewsflowError:
        raise
    except Exception as exc:
        mapped = db_failure(exc, None)
        if mapped is None:
            raise
        raise mapped from exc


def _relative(at: datetime | None) -> str:
    """``in 9m``, ``in 3h``, ``due now``: when a feed is polled next, as a person reads it."""
    if at is None:
        return "-"
    seconds = (at - datetime.now(UTC)).total_seconds()
    if seconds <= 0:
        return "due now"
    if seconds < 90:
        return f"in {seconds:.0f}s"
    if seconds < 90 * 60:
        return f"in {seconds / 60:.0f}m"
    return f"in {seconds / 3600:.1f}h"


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
            _err().print(f"[red]✗[/red] {r.requested}: {r.error}", soft_wrap=True)
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
                    valid, invalid = admin.check_feed_urls(
                        urls, allow_private=settings.allow_private_networks
                    )
                    stored = await admin.add_feeds(sessions, valid)
                    added = [admin.AddResult(u, (u,), (u,) if new else ()) for u, new in stored]
                    return added + [admin.AddResult(url, (), (), error=why) for url, why in invalid]
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
        file: Annotated[Path, typer.Argument(help="OPML or text file (one URL a line).")],
        as_json: JsonFlag = False,
    ) -> None:
        """Import feed URLs from an OPML file or a text file (one URL a line). The file lists
        feeds, so nothing is fetched; URLs the SSRF guard will refuse are refused now."""
        try:
            listed = admin.read_feed_file(file)
        except ValueError as exc:
            raise NewsflowError(str(exc), kind="usage") from exc
        if not listed:
            _err().print(
                f"[yellow]warning:[/] {file} lists no feed URLs (one URL a line, or OPML "
                "<outline xmlUrl=...>)",
                soft_wrap=True,
            )

        async def work(settings: Settings) -> admin.ImportReport:
            async with _sessions(settings) as sessions:
                return await admin.import_feeds_file(
                    sessions, file, allow_private=settings.allow_private_networks
                )

        try:
            report = _run(work)
        except ValueError as exc:
            _err().print(f"[red]✗[/red] {exc}")
            raise typer.Exit(2) from exc
        if as_json:
            emit_json(
                {
                    "added": report.added,
                    "existing": report.existing,
                    "invalid": [url for url, _why in report.invalid],
                    "refused": [{"url": url, "reason": why} for url, why in report.invalid],
                    "feeds": report.urls,
                }
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
            upcoming = _relative(f.next_poll_at)
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
        if feeds:
            soonest = min((f.next_poll_at for f in feeds if f.next_poll_at), default=None)
            _err().print(
                f"{len(feeds)} feed(s); next poll {_relative(soonest)}. "
                "'newsflow feeds poll ID|URL|--all' polls now (a running pipeline picks it up "
                "within NEWSFLOW_POLL_TICK_S).",
                soft_wrap=True,
            )

    @app.command("poll")
    def poll_cmd(
        refs: Annotated[
            list[str] | None, typer.Argument(help="Feed ids or URLs (see 'feeds list').")
        ] = None,
        every: Annotated[bool, typer.Option("--all", help="Every registered feed.")] = False,
        as_json: JsonFlag = False,
    ) -> None:
        """Poll feeds now instead of at their scheduled time: a running pipeline picks them up
        within NEWSFLOW_POLL_TICK_S; otherwise the next 'newsflow run' polls them first."""
        from shared.run_lock import holder

        if not refs and not every:
            raise NewsflowError("name feeds to poll (ids or URLs), or use --all", kind="usage")
        if refs and every:
            raise NewsflowError("give feed ids/URLs or --all, not both", kind="usage")

        async def work(settings: Settings) -> list[tuple[int, str]]:
            async with _sessions(settings) as sessions:
                return await admin.poll_now(sessions, refs or (), every=every)

        marked = _run(work)
        missing = admin.unmatched_refs(refs or (), marked)
        s = settings()
        pid = holder(s.state_dir)
        if as_json:
            emit_json(
                {
                    "feeds": [{"id": i, "url": u} for i, u in marked],
                    "unmatched": missing,
                    "run_pid": pid,
                }
            )
        else:
            for feed_id, url in marked:
                _out().print(f"{feed_id} {url}: due now", soft_wrap=True)
            if pid is not None:
                _err().print(
                    f"the running pipeline (pid {pid}) polls them within "
                    f"{s.poll_tick_s:.0f}s; watch its panel or 'newsflow feeds list'",
                    soft_wrap=True,
                )
            elif marked:
                _err().print(
                    "no 'newsflow run' is active on this home: they are polled first when one "
                    "starts ('newsflow run --once' to poll and exit)",
                    soft_wrap=True,
                )
        if every and not marked:
            _err().print("no feed is registered yet: add one with 'newsflow feeds add URL'")
            raise typer.Exit(1)
        if missing or not marked:
            # A typo in one id must not pass silently beside the ones that matched.
            _err().print(
                f"no feed matches {', '.join(missing)}; 'newsflow feeds list' shows ids and URLs",
                soft_wrap=True,
                markup=False,
            )
            raise typer.Exit(1)

    @app.command("remove")
    def remove(
        refs: Annotated[list[str], typer.Argument(help="Feed ids or URLs.")],
        as_json: JsonFlag = False,
    ) -> None:
        """Remove feeds (their seen links are kept, so re-adding does not re-send old items)."""

        async def work(settings: Settings) -> list[str]:
            async with _sessions(settings) as sessions:
                return await admin.remove_feeds(sessions, refs)

        removed = _run(work)
        if as_json:
            emit_json({"removed": removed})
        else:
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
