"""A new user's first hour (issue 18, helper i18): contradictory or invalid arguments are
refused with one line and exit 2 before any database or broker is opened."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from services.cli.main import build
from shared.errors import NewsflowError

# Unreachable on purpose: a command that got past argument checks would report the database.
UNREACHABLE_DB = "postgresql+asyncpg://u:p@127.0.0.1:1/x"


def _refusal(args: list[str]) -> NewsflowError:
    """The usage error *args* end with (``main`` prints it as one line, exit 2)."""
    env = {"NEWSFLOW_DATABASE_URL": UNREACHABLE_DB, "COLUMNS": "200"}
    result = CliRunner().invoke(build(), args, env=env)
    assert isinstance(result.exception, NewsflowError), (result.exception, result.output)
    assert result.exception.kind == "usage", result.exception
    return result.exception


def test_watch_edit_refuses_no_webhook_with_webhook() -> None:
    error = _refusal(["watch", "edit", "w", "--no-webhook", "--webhook", "http://a.example/h"])
    assert "--no-webhook" in str(error)


def test_watch_edit_refuses_no_webhook_with_secret_file(tmp_path: Path) -> None:
    secret = tmp_path / "s"
    secret.write_text("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    error = _refusal(["watch", "edit", "w", "--no-webhook", "--secret-file", str(secret)])
    assert "--no-webhook" in str(error)
