"""Every command a script may call answers ``--json``: walked from the real command tree, so a
command added without it fails here rather than in a user's pipeline."""

from __future__ import annotations

import json
from typing import Any

import typer.main
from typer.testing import CliRunner

from services.cli.main import build

#: long-running processes with live output, not answers a script parses
NO_JSON = {("worker",)}


def _leaves(command: Any, path: tuple[str, ...], ctx: Any):
    # duck-typed: typer ships its own click (typer._click), not the ``click`` package's classes
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None
            yield from _leaves(sub, (*path, name), ctx)
    else:
        yield path, command


def test_every_command_takes_json() -> None:
    root = typer.main.get_command(build())
    ctx = root.make_context("newsflow", [], resilient_parsing=True)
    leaves = list(_leaves(root, (), ctx))
    assert len(leaves) > 40, "the walk did not reach the command groups"
    missing = [
        " ".join(path)
        for path, command in leaves
        if path not in NO_JSON
        and "--json" not in {opt for param in command.params for opt in getattr(param, "opts", [])}
    ]
    assert not missing, f"commands without --json: {missing}"


def test_schemas_check_json_is_parseable() -> None:
    result = CliRunner().invoke(build(), ["schemas", "check", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"stale": []}
