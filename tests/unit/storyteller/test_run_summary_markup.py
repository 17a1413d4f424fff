"""The ``run --once`` summary prints story headlines and alert titles literally."""

from __future__ import annotations

import pytest

from services.cli import supervisor as sup
from shared.settings import Settings

HOSTILE = "[/] PKK [bold]attack[/] in Van"


def test_summary_survives_markup_in_headline_and_alert_title(
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = sup.Supervisor(Settings())
    s.progress.top_stories = [{"id": 1, "articles": 2, "sources": ["a"], "headline": HOSTILE}]
    s.progress.recent_alerts = [("[w]", HOSTILE, "matched [x]")]
    s._summary()
    out = capsys.readouterr().out
    assert HOSTILE in out  # once in the stories table, once in the alert line
    assert out.count(HOSTILE) == 2
    assert "matched [x]" in out
