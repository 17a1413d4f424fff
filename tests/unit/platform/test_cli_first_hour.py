"""A new user's first hour (issue 18, helper i18): contradictory or invalid arguments are
refused with one line and exit 2 before any database or broker is opened."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from services.cli.main import build
from shared.errors import NewsflowError
from shared.topology import SERVICES

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


def test_worker_with_unreachable_broker_is_one_error_line() -> None:
    """Before: faust logged a traceback and the worker exited 1."""
    env = {"NEWSFLOW_KAFKA_BOOTSTRAP": "127.0.0.1:1", "NEWSFLOW_METRICS_PORT_BASE": "0"}
    result = CliRunner().invoke(build(), ["worker", "writer"], env=env)
    assert isinstance(result.exception, NewsflowError), (result.exception, result.output)
    assert result.exception.kind == "config"
    assert "cannot reach the broker at 127.0.0.1:1" in str(result.exception)


def test_worker_help_lists_every_stage() -> None:
    result = CliRunner().invoke(build(), ["worker", "--help"], env={"COLUMNS": "200"})
    for service in SERVICES:
        assert service in result.output


def test_feeds_poll_reports_the_refs_that_matched_nothing() -> None:
    """Before: 'feeds poll 1 999' marked feed 1, ignored 999 and exited 0."""
    from services.fetcher.admin import unmatched_refs

    marked = [(1, "http://a.example/rss"), (12, "https://b.example/feed")]
    refs = ["1", "999", " 012 ", "http://a.example/rss", "https://c.example/x", "nope[x]"]
    assert unmatched_refs(refs, marked) == ["999", "https://c.example/x", "nope[x]"]
    assert unmatched_refs([], marked) == []


def test_search_refuses_an_empty_query() -> None:
    """Before: 'newsflow search ""' answered "no matches" (exit 0), as if nothing was stored."""
    for query in ("", "   "):
        error = _refusal(["search", query])
        assert "words to search for" in str(error)


def test_feeds_add_hint_names_the_assumed_scheme() -> None:
    """Before: 'feeds add 127.0.0.1:8000/rss.xml' against a plain-HTTP site failed with an SSL
    error and only suggested --no-discover, not that https:// had been assumed."""
    from services.fetcher.admin import NO_DISCOVER_HINT, no_discover_hint

    hint = no_discover_hint(" 127.0.0.1:8000/rss.xml ")
    assert "https:// was assumed" in hint and "http://127.0.0.1:8000/rss.xml" in hint
    assert NO_DISCOVER_HINT in hint
    assert no_discover_hint("https://example.org/rss") == NO_DISCOVER_HINT


def test_strict_once_run_fails_when_a_listed_feed_was_refused() -> None:
    """Before: 'run --once --strict --feeds F' whose only feed was refused (a private address
    without NEWSFLOW_ALLOW_PRIVATE_NETWORKS) polled nothing and exited 0."""
    from services.cli.supervisor import STRICT_FAILURE_EXIT, Supervisor
    from shared.settings import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    strict = Supervisor(settings, once=True, strict=True)
    assert strict._once_exit_code() == 0
    strict.feeds_refused = 1
    assert strict._once_exit_code() == STRICT_FAILURE_EXIT
    lenient = Supervisor(settings, once=True)
    lenient.feeds_refused = 1
    assert lenient._once_exit_code() == 0


def test_unknown_variable_suggestion_ignores_the_shared_prefix() -> None:
    """Before: NEWSFLOW_FOO was told "did you mean NEWSFLOW_HOME?" (the prefix made them close)."""
    from shared.settings import unknown_variables

    (foo,) = unknown_variables({"NEWSFLOW_FOO": "1"})
    assert "did you mean" not in foo
    (typo,) = unknown_variables({"NEWSFLOW_POL_TICK_S": "1"})
    assert "did you mean NEWSFLOW_POLL_TICK_S?" in typo
