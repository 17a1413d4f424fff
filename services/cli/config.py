"""``newsflow settings``: every setting with its effective value and meaning."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from services.cli.common import JsonFlag, emit_json, settings

console = Console(stderr=True)
out = Console()


def show_settings(as_json: JsonFlag = False) -> None:
    """Show every setting: variable, effective value and meaning (--json: typed values)."""
    from shared.settings import as_json as typed_values
    from shared.settings import describe
    from shared.stack import redact_url

    values = typed_values(settings())
    # a database URL may carry a password: never print it
    if values["NEWSFLOW_DATABASE_URL"] is not None:
        values["NEWSFLOW_DATABASE_URL"] = str(redact_url(values["NEWSFLOW_DATABASE_URL"]))
    if as_json:
        emit_json(values)
        return
    # The variable column never wraps or truncates: users copy these names.
    table = Table()
    table.add_column("variable", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_column("meaning")
    for var, _default, doc in describe():
        value = values[var]
        if value is None:
            shown = "(unset)"
        elif isinstance(value, bool):
            shown = str(value).lower()
        else:
            shown = str(value)
        table.add_row(var, shown, doc)
    out.print(table)


def register(root: typer.Typer) -> None:
    """Add ``settings`` to the root app."""
    root.command("settings")(show_settings)
