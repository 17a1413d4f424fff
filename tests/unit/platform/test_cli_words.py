"""Options say which date they filter on; `settings` prints names whole and typed JSON; a
misspelt NEWSFLOW_ variable is reported (issue 18, findings 11 and 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli.main import build
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["articles", "list"], "--published-since"),
        (["entities", "list"], "--published-since"),
        (["replay"], "--stored-since"),
        (["reenrich"], "--stored-since"),
        (["dlq", "list"], "--failed-since"),
        (["dlq", "replay"], "--failed-since"),
    ],
)
def test_time_filters_name_their_date(command: list[str], option: str) -> None:
    result = CliRunner().invoke(build(), [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert option in result.output


def test_settings_table_keeps_variable_names_whole_and_json_typed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NEWSFLOW_DATABASE_URL", raising=False)
    runner = CliRunner()
    table = runner.invoke(build(), ["settings"], env={"COLUMNS": "80"})
    assert table.exit_code == 0, table.output
    for name in Settings.model_fields:
        assert f"NEWSFLOW_{name.upper()}" in table.output  # not cut to NEWSFLOW_WRITER_PARA…
    typed = json.loads(runner.invoke(build(), ["settings", "--json"]).output)
    assert typed["NEWSFLOW_RESPECT_ROBOTS"] is True and typed["NEWSFLOW_DATABASE_URL"] is None
    assert typed["NEWSFLOW_TOPIC_PARTITIONS"] == 8


def test_misspelt_variable_is_a_warning_and_bad_value_names_the_variable(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    env.update({"NEWSFLOW_HOME": str(tmp_path), "NEWSFLOW_HOSTINTERVAL_S": "3"})
    ok = subprocess.run(
        [sys.executable, "-m", "services.cli", "settings", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert ok.returncode == 0
    assert "NEWSFLOW_HOSTINTERVAL_S" in ok.stderr and "NEWSFLOW_HOST_INTERVAL_S" in ok.stderr
    env["NEWSFLOW_TOPIC_PARTITIONS"] = "eight"
    bad = subprocess.run(
        [sys.executable, "-m", "services.cli", "settings"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
    )
    assert bad.returncode == 2
    errors = [line for line in bad.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "NEWSFLOW_TOPIC_PARTITIONS='eight'" in errors[0], bad.stderr
    assert "topic_partitions" not in bad.stderr
