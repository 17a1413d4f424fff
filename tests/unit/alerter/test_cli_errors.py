"""The CLI's one-line errors print user input as typed (queries, URLs with brackets)."""

from __future__ import annotations

import pytest

from services.alerter.query import QueryError, parse
from services.cli import main as cli_main
from services.cli.ops.when import parse_since
from services.cli.watch import _usage
from shared.errors import NewsflowError


def _run_main(monkeypatch: pytest.MonkeyPatch, error: NewsflowError) -> None:
    def fail() -> None:
        raise error

    monkeypatch.setattr(cli_main, "build", lambda: None)
    monkeypatch.setattr(cli_main, "app", fail)
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main()
    assert exit_info.value.code == cli_main.USAGE_EXIT


def test_query_error_keeps_brackets_and_caret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # rich used to read "[bad TO *]" as a markup tag and drop it, leaving a caret under nothing
    query = "published:[bad TO *]"
    with pytest.raises(QueryError) as caught:
        parse(query)
    _run_main(monkeypatch, _usage(caught.value))
    err = capsys.readouterr().err
    assert "  published:[bad TO *]\n" in err
    lines = err.splitlines()
    caret = lines[lines.index("  published:[bad TO *]") + 1]
    assert caret.index("^") - 2 == query.index("bad")


def test_long_error_is_not_wrapped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    detail = "webhook URL refused: http://[::ffff:127.0.0.1]:9/" + "x" * 200
    _run_main(monkeypatch, NewsflowError(detail))
    assert capsys.readouterr().err == f"error: {detail}\n"


@pytest.mark.parametrize("since", ["99999999d", "9999999999999w", "99999999999999999999s"])
def test_huge_since_is_a_clear_error(since: str) -> None:
    # 'watch test --since 99999999d' used to end in an OverflowError traceback
    with pytest.raises(ValueError, match="before year 1"):
        parse_since(since)
