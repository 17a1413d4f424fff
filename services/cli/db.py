"""``newsflow db url|upgrade|check``: the database URL and migrations."""

from __future__ import annotations

import typer
from rich.console import Console

from services.cli.common import JsonFlag, emit_json, settings

console = Console(stderr=True)
out = Console()


db_app = typer.Typer(help="Database URL and migrations.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Add the ``db`` group to the root app."""
    root.add_typer(db_app, name="db")


@db_app.command("url")
def db_url(as_json: JsonFlag = False) -> None:
    """Print the database URL in use (external or embedded; it carries the embedded cluster's
    secret, so it is for its owner's shell, not for logs)."""
    from shared.runtime import resolve_database_url

    url = resolve_database_url(settings())
    if as_json:
        emit_json({"url": url})
    else:
        print(url)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head", as_json: JsonFlag = False) -> None:
    """Run the Alembic migrations up to REVISION."""
    from shared.db.migrate import upgrade
    from shared.runtime import resolve_database_url

    upgrade(resolve_database_url(settings()), revision)
    if as_json:
        emit_json({"revision": revision, "upgraded": True})
    else:
        console.print(f"database at {revision}")


@db_app.command("check")
def db_check(as_json: JsonFlag = False) -> None:
    """Fail when the models and the migrations differ (alembic check)."""
    from shared.db.migrate import check
    from shared.runtime import resolve_database_url

    check(resolve_database_url(settings()))
    if as_json:
        emit_json({"agree": True})
    else:
        console.print("models and migrations agree")
