"""'not running' errors name the home they looked in (a subfolder or a typo in NEWSFLOW_HOME
otherwise reads as 'PostgreSQL is not running' with no clue why)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import StackError
from shared.runtime import resolve_database_url, resolve_kafka_bootstrap
from shared.settings import Settings


@pytest.mark.parametrize("resolve", [resolve_database_url, resolve_kafka_bootstrap])
def test_not_running_names_the_home(
    resolve: object, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("NEWSFLOW_DATABASE_URL", raising=False)
    monkeypatch.delenv("NEWSFLOW_KAFKA_BOOTSTRAP", raising=False)
    settings = Settings(_env_file=None, home=tmp_path / "elsewhere")
    with pytest.raises(StackError) as info:
        resolve(settings)  # type: ignore[operator]
    assert f"NEWSFLOW_HOME={tmp_path / 'elsewhere'}" in info.value.detail
    assert "newsflow stack up" in info.value.detail
