"""``newsflow settings``: every setting with its effective value and meaning."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from services.cli.common import JsonFlag, emit_json, settings

console = Console(stderr=True)
out = Console()


def show_settings(as_json: JsonFlag = False) -> None:
    """Show every setting: variable, effective value and meaning."""
    from shared.settings import describe

    s = settings()
    rows = [
        (var, str(getattr(s, var.removeprefix("NEWSFLOW_").lower())), doc)
        for var, _d, doc in describe()
    ]
    if as_json:
        emit_json({var: value for var, value, _doc in rows})
        return
    table = Table("variable", "value", "meaning")
    for row in rows:
        table.add_row(*row)
    out.print(table)


def register(root: typer.Typer) -> None:
    """Add ``settings`` to the root app."""
    root.command("settings")(show_settings)
