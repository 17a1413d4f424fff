"""``newsflow db url|upgrade|check``: the database URL and migrations."""

from __future__ import annotations

import typer
from rich.console import Console

from services.cli.common import settings

console = Console(stderr=True)
out = Console()


db_app = typer.Typer(help="Database URL and migrations.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Add the ``db`` group to the root app."""
    root.add_typer(db_app, name="db")


@db_app.command("url")
def db_url() -> None:
    """Print the database URL in use (external or embedded)."""
    from shared.runtime import resolve_database_url

    print(resolve_database_url(settings()))


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Run the Alembic migrations up to REVISION."""
    from shared.db.migrate import upgrade
    from shared.runtime import resolve_database_url

    upgrade(resolve_database_url(settings()), revision)
    console.print(f"database at {revision}")


@db_app.command("check")
def db_check() -> None:
    """Fail when the models and the migrations differ (alembic check)."""
    from shared.db.migrate import check
    from shared.runtime import resolve_database_url

    check(resolve_database_url(settings()))
    console.print("models and migrations agree")
