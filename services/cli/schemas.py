"""``newsflow schemas write|check``: JSON Schemas of the topic contracts."""

from __future__ import annotations

import typer
from rich.console import Console

from shared.errors import NewsflowError

console = Console(stderr=True)
out = Console()


schemas_app = typer.Typer(help="JSON Schemas of the topic contracts.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Add the ``schemas`` group to the root app."""
    root.add_typer(schemas_app, name="schemas")


@schemas_app.command("write")
def schemas_write() -> None:
    """Regenerate docs/schemas/*.json from the message models."""
    from shared.schemas import write_all

    for path in write_all():
        console.print(f"wrote {path}")


@schemas_app.command("check")
def schemas_check() -> None:
    """Fail when a committed schema differs from the models."""
    from shared.schemas import stale

    bad = stale()
    if bad:
        raise NewsflowError(
            f"stale schemas: {', '.join(bad)}; run 'newsflow schemas write'", kind="config"
        )
    console.print("schemas up to date")
