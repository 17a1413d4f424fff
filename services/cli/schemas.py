"""``newsflow schemas write|check``: JSON Schemas of the topic contracts."""

from __future__ import annotations

import typer
from rich.console import Console

from services.cli.common import JsonFlag, emit_json
from shared.errors import NewsflowError

console = Console(stderr=True)
out = Console()


schemas_app = typer.Typer(help="JSON Schemas of the topic contracts.", no_args_is_help=True)


def register(root: typer.Typer) -> None:
    """Add the ``schemas`` group to the root app."""
    root.add_typer(schemas_app, name="schemas")


@schemas_app.command("write")
def schemas_write(as_json: JsonFlag = False) -> None:
    """Regenerate docs/schemas/*.json from the message models."""
    from shared.schemas import write_all

    written = write_all()
    if as_json:
        emit_json({"written": [str(path) for path in written]})
        return
    for path in written:
        console.print(f"wrote {path}")


@schemas_app.command("check")
def schemas_check(as_json: JsonFlag = False) -> None:
    """Fail when a committed schema differs from the models."""
    from shared.schemas import stale

    bad = stale()
    if bad:
        raise NewsflowError(
            f"stale schemas: {', '.join(bad)}; run 'newsflow schemas write'", kind="config"
        )
    if as_json:
        emit_json({"stale": []})
    else:
        console.print("schemas up to date")
